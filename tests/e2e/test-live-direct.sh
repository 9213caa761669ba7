#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A live move on the direct path: hostb's "reach" key (how other hosts
# run a command on it: ssh with hosta's own address as its source, so that
# nftables tells the paths apart) makes hosta forward the migration's
# memory and disk streams to hostb itself.  The counter guest moves
# (runs on hostb, counts on, every count on hostb's volume), and the
# streams' bytes reach hostb's sshd from hosta's address, next to nothing
# from this machine.  A reach that cannot reach fails the move with
# EHOSTUNREACH, saying why, and the guest runs on hosta as before.
. "$(dirname "$0")/lib.sh"
T=kmflivedirect
VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
SERIAL=$WORK/live1.serial
cleanup() {
	nft delete table inet $T 2>/dev/null || :
	[ -z "${NEWMNT:-}" ] || unmount_extra
	(
		set +e
		for h in hosta hostb; do
			onhost $h "${VIRSH[@]}" destroy live1 </dev/null >/dev/null 2>&1
			onhost $h "${VIRSH[@]}" undefine live1 </dev/null >/dev/null 2>&1
			onhost $h "${VIRSH[@]}" vol-delete --pool default live1-vda.raw </dev/null >/dev/null 2>&1
		done
		exit 0
	)
}
trap cleanup EXIT

A=$(host_addr hosta) B=$(host_addr hostb)
[ -n "$A" ] && [ -n "$B" ] || fail "no addresses for hosta and hostb in $STATE/ssh_config"
# Bytes to hostb's sshd from hosta's address (direct) and from any other.
nft -f - <<NFT
table inet $T {
	chain out {
		type filter hook output priority 0;
		ip daddr $B tcp dport 22 ip saddr $A counter
		ip daddr $B tcp dport 22 ip saddr != $A counter
	}
}
NFT
counters() {
	nft list chain inet $T out | sed -n 's/.* counter packets [0-9]* bytes \([0-9]*\).*/\1/p' | tr '\n' ' '
	echo
}

counter_guest hosta live1 "$IMG/live1-vda.raw"
ok "live1 runs Linux on hosta and counts ($(last_count) so far)"

# 1. A reach that reaches nothing: EHOSTUNREACH, live1 stays on hosta.
hosts_with hostb "$WORK/bad.conf" "reach = ssh -F $STATE/ssh_config -o Port=1 hostb"
mount_extra -o hosts="$WORK/bad.conf"
MNT=$NEWMNT MNTLOG=$WORK/mount-extra.log
wait_until 10 listed "$MNT/hosta" live1
log_mark
rc=0
mv "$MNT/hosta/live1" "$MNT/hostb/" 2>"$WORK/mv.err" || rc=$?
[ "$rc" != 0 ] && grep_q "No route to host" "$WORK/mv.err" || fail "mv with a bad reach: rc $rc: $(cat "$WORK/mv.err")"
line=$(log_grep -E "hosta cannot reach hostb \(hostb's reach\): the source's direct forward \(ssh\) ended: .*Connection refused") ||
	fail "no log line naming the unreachable host: $(log_since_mark | tail -3)"
[ "$(onhost hosta "${VIRSH[@]}" domstate live1 </dev/null)" = running ] || fail "live1 is not running on hosta"
wait_until 10 no_process "Port=1 hostb"
defined hostb live1 && fail "live1 defined on hostb"
no_volumes hostb || fail "hostb keeps volumes: $VOLS"
ok "reach to a closed port: mv fails with EHOSTUNREACH (${line#*EHOSTUNREACH: }); live1 runs on hosta, hostb has nothing"
unmount_extra
NEWMNT=

# 2. The direct path.
hosts_with hostb "$WORK/direct.conf" "reach = ssh -F $STATE/ssh_config -o BindAddress=$A hostb"
mount_extra -o hosts="$WORK/direct.conf"
MNT=$NEWMNT MNTLOG=$WORK/mount-extra.log
wait_until 10 listed "$MNT/hosta" live1
read -r d0 h0 < <(counters)
live_mv hosta hostb live1
read -r d1 h1 < <(counters)
log_grep -F "hosta/live1: its streams go directly from hosta to hostb (hostb's reach)" >/dev/null ||
	fail "no log line for the direct path"
direct=$((d1 - d0)) here=$((h1 - h0))
[ "$direct" -gt $((4 << 20)) ] && [ "$here" -lt $((direct / 10)) ] ||
	fail "hostb's sshd got $direct bytes from hosta and $here from this machine"
ok "the streams went host to host: hostb's sshd got $direct bytes from hosta, $here from this machine"
wait_until 10 no_process "BindAddress=$A hostb"
ok "no forward left running (on hosta or here)"
counted_on hostb live1 "$IMG/live1-vda.raw"
