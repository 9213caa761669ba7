#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The direct path: hosta's "reach" key in the hosts file (how other hosts
# run a command on it: ssh with hostb's own address as its source, so that
# nftables tells the two paths apart) makes copy_file_range and offline
# moves from hosta run kvmmigfs-copy on hostb, which reads hosta over
# that ssh.  The disks arrive byte for byte (raw, and qcow2 on a backing
# file), the guest is verified and defined, and next to nothing of the
# data leaves hosta's sshd for this machine (counted per destination).
# A reach whose host key is not known, or that reaches nothing, fails the
# copy with EHOSTUNREACH and a log line saying why, nothing defined;
# no kvmmigfs-copy on hostb is ENOPKG; with reach_fallback = yes the
# copy goes through this machine, logged.
# bwlimit holds on the direct path too.
. "$(dirname "$0")/lib.sh"
T=kmfdirect
cleanup() {
	nft delete table inet $T 2>/dev/null || :
	[ -z "${NEWMNT:-}" ] || unmount_extra
	clean_host hostb
	for g in mv1; do
		onhost hosta virsh -q -c qemu:///system undefine $g </dev/null >/dev/null 2>&1 || :
		onhost hosta rm -f /var/lib/libvirt/images/$g-vda.raw </dev/null
	done
}
trap cleanup EXIT

A=$(host_addr hosta) B=$(host_addr hostb)
[ -n "$A" ] && [ -n "$B" ] || fail "no addresses for hosta and hostb in $STATE/ssh_config"
REACH="ssh -F $STATE/ssh_config -o BindAddress=$B hosta"

# Bytes hosta's sshd sends to hostb's address (the direct path) and to
# any other (this machine).
nft -f - <<NFT
table inet $T {
	chain out {
		type filter hook output priority 0;
		ip saddr $A tcp sport 22 ip daddr $B counter
		ip saddr $A tcp sport 22 ip daddr != $B counter
	}
}
NFT
counters() {
	nft list chain inet $T out | sed -n 's/.* counter packets [0-9]* bytes \([0-9]*\).*/\1/p' | tr '\n' ' '
	echo
}

# cfr_guest SRC DST: the guest folder SRC copied to DST, each disk by
# copy_file_range (as cp does for a dense file) in calls of 8 MiB, then
# domain.xml.
cfr_guest() {
	mkdir "$2" || return 1
	python3 - "$1" "$2" <<'PY' || return 1
import os, sys
src, dst = sys.argv[1:3]
for name in sorted(os.listdir(src)):
    if name == "domain.xml":
        continue
    i = os.open(os.path.join(src, name), os.O_RDONLY)
    o = os.open(os.path.join(dst, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while os.copy_file_range(i, o, 8 << 20):
            pass
        os.close(o)
    except OSError as e:
        print("%s: copy_file_range: %s" % (name, os.strerror(e.errno)), file=sys.stderr)
        sys.exit(1)
PY
	cp "$1/domain.xml" "$2/"
}

# 1. copy_file_range of web1 (raw vda, qcow2 vdb on a backing file).
hosts_with hosta "$WORK/direct.conf" "reach = $REACH"
log_mark "$WORK/mount-extra.log"
mount_extra -o hosts="$WORK/direct.conf" -o copytool="$TOP/nbd/kvmmigfs-copy"
read -r d0 h0 < <(counters)
cfr_guest "$NEWMNT/hosta/web1" "$NEWMNT/hostb/web1" 2>"$WORK/err" ||
	fail "copy_file_range of web1 on the direct path: $(cat "$WORK/err")"
read -r d1 h1 < <(counters)
defined hostb web1 || fail "web1 not defined on hostb"
cmp "$STATE/hosta/lib/images/web1-vda.raw" "$STATE/hostb/lib/images/web1-vda.raw" || fail "vda.raw differs"
[ "$(host_sha256 hosta qcow2 /var/lib/libvirt/images/web1-vdb.qcow2)" = \
	"$(host_sha256 hostb qcow2 /var/lib/libvirt/images/web1-vdb.qcow2)" ] || fail "vdb.qcow2 differs"
for d in vda.raw vdb.qcow2; do
	n=$(log_grep -F "hostb/web1/$d: copied by hostb, which reaches hosta directly (reach = $REACH)" | wc -l) ||
		fail "no log line for $d's direct copy"
	[ "$n" = 1 ] || fail "$d: $n copiers started, not one for the whole disk"
	log_grep -F "hostb/web1/$d: verified: crc32" >/dev/null || fail "$d not verified"
done
data=$(du -B1 -c "$STATE/hosta/lib/images/web1-vda.raw" "$STATE/hosta/lib/images/web1-base.raw" "$STATE/hosta/lib/images/web1-vdb.qcow2" | tail -1 | cut -f1)
direct=$((d1 - d0)) here=$((h1 - h0))
[ "$direct" -ge $((data / 2)) ] || fail "only $direct bytes went hosta -> hostb directly ($data bytes of data)"
[ "$here" -lt $((data / 10)) ] || fail "$here bytes went hosta -> this machine ($data bytes of data)"
ok "copy_file_range of web1: byte for byte, verified; hosta sent $direct bytes to hostb and $here to this machine ($data bytes allocated)"
clean_host hostb

# 2. An offline move (mv) takes the same path.
define_raw_guest mv1 mv1-vda.raw 128 \
	"head -c 24M /dev/urandom | dd of=\$f bs=1M seek=16 conv=notrunc status=none"
cp --sparse=always "$STATE/hosta/lib/images/mv1-vda.raw" "$WORK/mv1.ref"
log_mark "$WORK/mount-extra.log"
read -r d0 h0 < <(counters)
mv "$NEWMNT/hosta/mv1" "$NEWMNT/hostb/" || fail "mv of mv1 on the direct path"
read -r d1 h1 < <(counters)
defined hostb mv1 || fail "mv1 not defined on hostb"
defined hosta mv1 && fail "mv1 still defined on hosta"
cmp "$WORK/mv1.ref" "$STATE/hostb/lib/images/mv1-vda.raw" || fail "mv1's disk differs"
log_grep -F "hostb/mv1/vda.raw: copied by hostb, which reaches hosta directly" >/dev/null ||
	fail "no log line for mv1's direct copy"
direct=$((d1 - d0)) here=$((h1 - h0))
[ "$direct" -ge $((24 << 20)) ] && [ "$here" -lt $((4 << 20)) ] ||
	fail "mv: hosta sent $direct bytes to hostb, $here to this machine"
ok "mv of mv1: moved byte for byte; hosta sent $direct bytes to hostb and $here to this machine"
clean_host hostb
unmount_extra
NEWMNT=

# 3. A reach that cannot reach: an unknown host key, then nothing there.
: >"$WORK/empty_known_hosts"
for bad in "ssh -F $STATE/ssh_config -o UserKnownHostsFile=$WORK/empty_known_hosts hosta" \
	"ssh -F $STATE/ssh_config -o Port=1 hosta"; do
	hosts_with hosta "$WORK/bad.conf" "reach = $bad"
	log_mark "$WORK/mount-extra.log"
	mount_extra -o hosts="$WORK/bad.conf" -o copytool="$TOP/nbd/kvmmigfs-copy"
	rc=0
	cfr_guest "$NEWMNT/hosta/web1" "$NEWMNT/hostb/web1" 2>"$WORK/err" || rc=$?
	[ "$rc" != 0 ] && grep_q "No route to host" "$WORK/err" ||
		fail "reach = $bad: rc $rc: $(cat "$WORK/err")"
	line=$(log_grep -E "hostb/web1/vda.raw: copy_file_range: EHOSTUNREACH: hostb cannot reach hosta \(reach = ssh -F [^)]*\): cannot reach the source host: ") ||
		fail "no log line for the unreachable host"
	case $bad in
	*empty_known_hosts*) [[ "$line" == *"Host key verification failed"* ]] || fail "the log does not say why: $line" ;;
	esac
	defined hostb web1 && fail "web1 defined after a failed copy"
	rm -r "$NEWMNT/hostb/web1" || fail "rm -r of the failed copy"
	ok "reach = ${bad#ssh -F "$STATE"/ssh_config }: EHOSTUNREACH; ${line#*EHOSTUNREACH: }"
	unmount_extra
	NEWMNT=
done

# 3b. No copier on hostb: ENOPKG, saying so.
hosts_with hosta "$WORK/direct.conf" "reach = $REACH"
log_mark "$WORK/mount-extra.log"
mount_extra -o hosts="$WORK/direct.conf" -o copytool=/nonexistent/kvmmigfs-copy
rc=0
cfr_guest "$NEWMNT/hosta/web1" "$NEWMNT/hostb/web1" 2>"$WORK/err" || rc=$?
[ "$rc" != 0 ] && grep_q "Package not installed" "$WORK/err" || fail "no copier: rc $rc: $(cat "$WORK/err")"
line=$(log_grep -F "hostb/web1/vda.raw: copy_file_range: ENOPKG: kvmmigfs-copy is not installed on the host: ") ||
	fail "no log line for the missing copier"
defined hostb web1 && fail "web1 defined without its disks"
rm -r "$NEWMNT/hostb/web1" || fail "rm -r of the failed copy"
ok "no kvmmigfs-copy on hostb: ENOPKG; ${line#*ENOPKG: }"
unmount_extra
NEWMNT=

# 4. reach_fallback = yes: through this machine instead, logged.
hosts_with hosta "$WORK/fallback.conf" "reach = ssh -F $STATE/ssh_config -o Port=1 hosta" "reach_fallback = yes"
log_mark "$WORK/mount-extra.log"
mount_extra -o hosts="$WORK/fallback.conf" -o copytool="$TOP/nbd/kvmmigfs-copy"
read -r d0 h0 < <(counters)
cfr_guest "$NEWMNT/hosta/web1" "$NEWMNT/hostb/web1" 2>"$WORK/err" ||
	fail "copy with reach_fallback = yes: $(cat "$WORK/err")"
read -r d1 h1 < <(counters)
defined hostb web1 || fail "web1 not defined on hostb"
cmp "$STATE/hosta/lib/images/web1-vda.raw" "$STATE/hostb/lib/images/web1-vda.raw" || fail "vda.raw differs"
log_grep -F "hostb/web1/vda.raw: copied through this machine: cannot reach the source host:" >/dev/null ||
	fail "no log line for the fallback"
[ $((d1 - d0)) -lt $((1 << 20)) ] && [ $((h1 - h0)) -ge $((data / 2)) ] ||
	fail "fallback: hosta sent $((d1 - d0)) bytes to hostb, $((h1 - h0)) here"
ok "reach_fallback = yes: copied through this machine ($((h1 - h0)) bytes), logged"
clean_host hostb
unmount_extra
NEWMNT=

# 5. bwlimit on the direct path: hostb's copier paces its reads.
hosts_with hosta "$WORK/direct.conf" "reach = $REACH"
mount_extra -o hosts="$WORK/direct.conf" -o copytool="$TOP/nbd/kvmmigfs-copy" -o bwlimit=8M
onhost hosta virsh -q -c qemu:///system undefine mv1 </dev/null >/dev/null 2>&1 || :
define_raw_guest mv1 mv1-vda.raw 128 \
	"head -c 24M /dev/urandom | dd of=\$f bs=1M seek=16 conv=notrunc status=none"
t0=$(now)
cfr_guest "$NEWMNT/hosta/mv1" "$NEWMNT/hostb/mv1" 2>"$WORK/err" || fail "direct copy under bwlimit: $(cat "$WORK/err")"
took=$(echo "$(now) - $t0" | bc)
[ "$(echo "$took >= (24 - 2) / 8" | bc -l)" = 1 ] || fail "24 MiB at bwlimit=8M in $took s"
cmp "$STATE/hosta/lib/images/mv1-vda.raw" "$STATE/hostb/lib/images/mv1-vda.raw" || fail "mv1 differs"
ok "-o bwlimit=8M on the direct path: 24 MiB in $took s"
