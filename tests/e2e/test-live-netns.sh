#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Live move between hosts that cannot reach each other: a pair of test
# hosts of its own, each in a network namespace of its own with only lo
# (tools/testhosts with TESTHOSTS_NETNS=1), reached from this machine only
# through their sshd.  hosta cannot connect to hostb's sshd nor to this
# machine's addresses; mv of the running counter guest (tools/mkguest) to
# hostb still migrates it live, with its disk, through the ssh forwards
# kvmmigfs sets up: it runs on hostb, was not rebooted, and every count is
# on hostb's volume.
. "$(dirname "$0")/lib.sh"

NS=$WORK/ns
NSMNT=$WORK/ns-mnt
NSLOG=$WORK/ns-mount.log
NSMNT_PID=
HOSTS_STATE=$STATE

cleanup() {
	if mountpoint -q "$NSMNT" 2>/dev/null; then
		fusermount3 -u "$NSMNT" 2>/dev/null || umount -l "$NSMNT" || :
	fi
	if [ -n "$NSMNT_PID" ]; then
		kill "$NSMNT_PID" 2>/dev/null || :
		wait "$NSMNT_PID" 2>/dev/null || :
	fi
	"$TOP/tools/testhosts" stop "$NS" >/dev/null 2>&1 || :
}
trap cleanup EXIT

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
SERIAL=$WORK/live1.serial

# sshd_addr STATE HOST: the address HOST's sshd listens on.
sshd_addr() {
	awk '$1 == "ListenAddress" { print $2 }' "$1/$2/sshd_config"
}
# connects_from HOST ADDR: from inside this test's HOST (its network
# namespace), a TCP connection to ADDR:22 succeeds within 5 s.
connects_from() {
	"$TOP/tools/testhosts" exec "$NS" "$1" \
		timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/22"' "$2" </dev/null 2>/dev/null
}
connects_here() {
	timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/22"' "$1" 2>/dev/null
}

# The hosts.  Their addresses are private to their network namespaces:
# hostb's may well be the one the runner's hostb listens on here.
TESTHOSTS_NETNS=1 "$TOP/tools/testhosts" start "$NS" 2 >"$WORK/ns-start.log" 2>&1 ||
	fail "netns hosts did not start: $(tail -5 "$WORK/ns-start.log")"
grep_q -x "hosta: up at .* in its own network namespace" "$WORK/ns-start.log" ||
	fail "testhosts start: $(cat "$WORK/ns-start.log")"
ok "two hosts, each in its own network namespace: $(tr '\n' ' ' <"$WORK/ns-start.log")"

# 1. Isolation: hosta reaches its own sshd, not hostb's, nor the runner's
# hostb that this machine reaches (the probe works both ways).
A=$(sshd_addr "$NS" hosta)
B=$(sshd_addr "$NS" hostb)
MAINB=$(sshd_addr "$HOSTS_STATE" hostb)
connects_from hosta "$A" || fail "hosta cannot connect to its own sshd at $A:22"
connects_from hosta "$B" && fail "hosta connects to hostb's sshd at $B:22"
connects_here "$MAINB" || fail "this machine cannot connect to the runner's hostb at $MAINB:22"
connects_from hosta "$MAINB" && fail "hosta connects to $MAINB:22 (the runner's hostb, on this machine)"
ok "from hosta: its own sshd $A:22 answers; hostb's $B:22 and this machine's $MAINB:22 do not"

# The mount: ssh, and libvirt's qemu+ssh://, must go through this test's
# ssh wrapper (its ssh_config has the relay into each host's namespace);
# the runner's wrapper, for hosts of the same names, is in PATH as well.
mkdir -p "$NSMNT"
PATH=$NS/bin:$PATH "$TOP/kvmmigfs" -f -o hosts="$NS/hosts.conf" -o zeroscan="$ZEROSCAN" \
	-o crc="$CRCTOOL" -o state="$WORK/ns-state" "$NSMNT" 2>"$NSLOG" &
NSMNT_PID=$!
for _ in $(seq 100); do
	mountpoint -q "$NSMNT" && break
	sleep 0.1
done
mountpoint -q "$NSMNT" || fail "mount of the netns hosts failed: $(cat "$NSLOG")"

# From here on lib.sh's helpers (onhost, defined, volumes, log_mark...)
# work on this test's hosts and mount.
STATE=$NS MNT=$NSMNT MNTLOG=$NSLOG

# 2. live1: the counter guest on hosta, a 64 MiB disk, under TCG.
counter_guest hosta live1 "$IMG/live1-vda.raw"
ok "live1 runs Linux on hosta and counts ($(last_count) so far)"
wait_until 10 listed "$MNT/hosta" live1

# 3. mv moves it live, although hosta and hostb cannot reach each other.
live_mv hosta hostb live1
# Still apart after the move.
connects_from hosta "$B" && fail "after the move, hosta connects to hostb's sshd at $B:22"
counted_on hostb live1 "$IMG/live1-vda.raw"
