#!/bin/sh
# init_user.sh: the original's name for "imip-admin init-user".
#
#   tools/init_user.sh [store options] USER [--resource] [--pref NAME=VALUE ...]
#
# e.g. tools/init_user.sh room@example.com --resource --pref CN="Room 1.23"
# imip-admin is taken from $IMIP_ADMIN, else from PATH.
exec "${IMIP_ADMIN:-imip-admin}" init-user "$@"
