#!/bin/sh
# imip-client end to end, from a second language: POSIX shell reading the
# JSON with jq (issue 19). An attendee inspects and accepts a real Outlook
# invitation; the REPLY it is given is applied in the organiser's calendar,
# which then shows the attendee's answer. Every step checks the document's
# format_version, its fields and the exit status.
#
#   tests/client/imip-client.sh IMIP-CLIENT INVITATION.eml WORKDIR
#
# Prints "ok" and exits 0 when every check holds; else names the failed
# check and exits 1. Run by tests/client/test_shell.py.
set -eu
client=$1
invitation=$2
work=$3
attendee=oliver@roth.myftp.org
organiser=oliver.roth@mobi.ch
now=2012-11-17T09:00:00Z

fail() { echo "FAILED: $*" >&2; exit 1; }
# check DOCUMENT JQ-FILTER WHAT: the filter must give true
check() { printf '%s' "$1" | jq -e "$2" >/dev/null || fail "$3: $2"; }
as_attendee() { "$client" --calendar "$work/attendee" --identity "$attendee" --now "$now" "$@"; }
as_organiser() { "$client" --calendar "$work/organiser" --identity "$organiser" --now "$now" "$@"; }

# 1. What the invitation is: a REQUEST to answer.
doc=$(as_attendee inspect "$invitation")
check "$doc" '.format_version == 1 and .ok and .command == "inspect"' "inspect document"
check "$doc" '.inspection.method == "REQUEST"' "method"
check "$doc" '.inspection.objects[0] | .state == "new" and .reply_required' "state"
check "$doc" '.inspection.objects[0].actions | index("accept") != null' "actions"
check "$doc" ".inspection.objects[0].organiser.address == \"$organiser\"" "organiser"
as_attendee inspect --text "$invitation" | grep -q "Test von Outlook" || fail "inspect --text"

# 2. The sender is not the organiser: apply refuses, with its own exit status.
status=0
doc=$(as_attendee apply "$invitation") || status=$?
check "$doc" '.ok == false and .error.code == "sender_not_participant"' "apply refused"
check "$doc" ".error.exit_status == $status" "exit status of the error"
[ "$status" -eq 7 ] || fail "sender_not_participant exits 7, not $status"

# 3. A dry run says what would be sent and changes nothing.
doc=$(as_attendee --dry-run respond --partstat accepted "$invitation")
check "$doc" '.result.dry_run and (.result.outgoing | length) == 1' "dry run"
doc=$(as_attendee pending)
check "$doc" '.pending == []' "nothing recorded by the dry run"

# 4. Accept: the REPLY comes back in the document, for the client to send.
doc=$(as_attendee respond --partstat accepted --comment "Gerne" < "$invitation")
check "$doc" '.ok and .result.outgoing[0].method == "REPLY"' "respond"
check "$doc" ".result.outgoing[0].recipients == [\"$organiser\"]" "REPLY to the organiser"
check "$doc" '.result.outgoing[0].calendar | test("PARTSTAT=ACCEPTED")' "PARTSTAT"
check "$doc" '.result.outgoing[0].in_reply_to | startswith("<4CE42E25")' "threading"
printf '%s' "$doc" | jq -r '.result.outgoing[0].message' > "$work/reply.eml"
doc=$(as_attendee inspect "$invitation")
check "$doc" '.inspection.objects[0].state == "answered"' "answered"
doc=$(as_attendee agenda --from 2012-11-18T00:00Z --to 2012-11-19T00:00Z)
check "$doc" '.agenda[0].status == "BUSY" and .agenda[0].summary == "Test von Outlook an Tine20"' "agenda"

# 5. The organiser: their invitation recorded as sent, then the REPLY applied.
doc=$(as_organiser apply --sent "$invitation")
check "$doc" '.ok and (.result.changes | length) > 0' "organiser's own invitation"
doc=$(as_organiser inspect "$work/reply.eml")
check "$doc" '.inspection.method == "REPLY" and .inspection.objects[0].state == "update"' "reply"
check "$doc" '.inspection.sender_is_organiser == false' "the reply's sender"
doc=$(as_organiser apply "$work/reply.eml")
check "$doc" '.ok and (.result.decisions | length) > 0' "reply applied"
doc=$(as_organiser inspect "$work/reply.eml")
check "$doc" '.inspection.objects[0].state == "answered"' "the attendee's answer recorded"
echo ok
