#!/bin/sh
# init.sh: the original's site set-up, as "imip-admin init".
#
#   tools/init.sh [store options] [--user USER] [--group GROUP] [--config-file FILE]
#
# e.g. tools/init.sh --user imip-agent --group lmtp  (as root)
# imip-admin is taken from $IMIP_ADMIN, else from PATH.
exec "${IMIP_ADMIN:-imip-admin}" init "$@"
