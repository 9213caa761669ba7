#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A dead host never hangs the mount: operations on it fail within about
# 10 seconds (EHOSTDOWN or ETIMEDOUT); the other hosts keep working.
. "$(dirname "$0")/lib.sh"

LIMIT=14	# seconds: the 10 s bound plus scheduling slack

others_work() {
	ls "$MNT/hosta" | grep_q -x web1 || fail "hosta stopped working"
	head -c 1M "$MNT/hosta/odd1/vda.raw" | wc -c | grep_q -x 1048576 ||
		fail "reading hosta's disk stopped working"
	ok "hosta keeps working"
}

restore() {
	"$TOP/tools/testhosts" startd "$STATE" hostb sshd || true
	"$TOP/tools/testhosts" startd "$STATE" hostb libvirtd || true
	if [ -n "${FROZEN:-}" ]; then
		kill -CONT $FROZEN 2>/dev/null || true
	fi
}
trap restore EXIT

ls "$MNT/hostb" >/dev/null || fail "hostb should work before the test"
ls "$MNT/hosta" >/dev/null

# 1. libvirtd gone, sshd alive.
"$TOP/tools/testhosts" stopd "$STATE" hostb libvirtd
sleep 3 # let the listing cache expire
timed_fail "libvirtd stopped" ls "$MNT/hostb"
others_work
"$TOP/tools/testhosts" startd "$STATE" hostb libvirtd
ls "$MNT/hostb" >/dev/null || sleep 3
ls "$MNT/hostb" >/dev/null || fail "hostb did not come back after libvirtd restarted"
ok "hostb works again once libvirtd is back"

# 2. sshd and libvirtd gone.
"$TOP/tools/testhosts" stopd "$STATE" hostb libvirtd
"$TOP/tools/testhosts" stopd "$STATE" hostb sshd
sleep 3
timed_fail "sshd and libvirtd stopped" ls "$MNT/hostb"
timed_fail "statfs of a dead host" df "$MNT/hostb"
others_work
restore

# 3. The whole host frozen (every process of its namespace stopped): the
#    TCP connection stays up, nothing answers.
sleep 3
ls "$MNT/hostb" >/dev/null || fail "hostb did not come back"
holder=$(cat "$STATE/hostb/holder.pid")
FROZEN=$(for p in $(ls /proc | grep -E '^[0-9]+$'); do
	if [ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$(readlink /proc/$holder/ns/mnt)" ]; then echo $p; fi
done | tr '\n' ' ')
[ -n "$FROZEN" ] || fail "found no processes of hostb"
kill -STOP $FROZEN
sleep 3
timed_fail "host frozen" ls "$MNT/hostb"
others_work
kill -CONT $FROZEN
FROZEN=
sleep 1
for _ in 1 2 3 4 5; do ls "$MNT/hostb" >/dev/null 2>&1 && break; sleep 2; done
ls "$MNT/hostb" >/dev/null || fail "hostb did not come back after it was thawed"
ok "hostb works again once thawed"
