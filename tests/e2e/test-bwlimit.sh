#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# -o bwlimit=RATE and the hosts file's bwlimit key: a copy moves no faster
# than the limit (its data takes at least data / rate, less the first
# request, which has no one to wait for, and the credit of rate.h),
# arrives byte for byte, and the log names each limited host.  A bad rate
# stops the mount with a clear message.  (That the achieved rate is close
# to the limit, not far below, is measured by make bench.)
. "$(dirname "$0")/lib.sh"
trap '[ -z "${NEWMNT:-}" ] || unmount_extra; clean_host hostb; onhost hosta virsh -q -c qemu:///system undefine bw1 </dev/null >/dev/null 2>&1 || true; onhost hosta rm -f /var/lib/libvirt/images/bw1-vda.raw </dev/null' EXIT

IMG=/var/lib/libvirt/images
DATA_MIB=12
define_raw_guest bw1 bw1-vda.raw 64 \
	"head -c ${DATA_MIB}M /dev/urandom | dd of=\$f bs=1M seek=8 conv=notrunc status=none"
SRC=$STATE/hosta/lib/images/bw1-vda.raw

# at_least LABEL SECONDS MIB_PER_S: the copy took at least the time its
# data needs at that rate, less one 2 MiB request and the quarter second
# of credit a host earns while idle.
at_least() {
	local min
	min=$(echo "($DATA_MIB - 2) / $3 - 0.25" | bc -l)
	[ "$(echo "$2 >= $min" | bc)" = 1 ] ||
		fail "$1: $DATA_MIB MiB in $2 s: faster than $3 MiB/s allows (${min} s)"
	ok "$1: $DATA_MIB MiB in $2 s ($(echo "scale=1; $DATA_MIB / $2" | bc) MiB/s; the limit $3 MiB/s)"
}

# 1. -o bwlimit: every host at 4 MiB/s; cp -r (the read/write path).
log_mark "$WORK/mount-extra.log"
mount_extra -o bwlimit=4M
log_grep -F "hosta: transfers limited to 4M bytes/s (bwlimit)" >/dev/null ||
	fail "no log line for hosta's limit"
log_grep -F "hostb: transfers limited to 4M bytes/s (bwlimit)" >/dev/null ||
	fail "no log line for hostb's limit"
t0=$(now)
cp -r "$NEWMNT/hosta/bw1" "$NEWMNT/hostb/" || fail "cp -r with -o bwlimit=4M"
at_least "-o bwlimit=4M, cp -r" "$(echo "$(now) - $t0" | bc)" 4
cmp "$SRC" "$STATE/hostb/lib/images/bw1-vda.raw" || fail "the copy differs"
unmount_extra
NEWMNT=
clean_host hostb

# 2. The hosts file's key, on hostb only, overriding -o bwlimit=0 (none);
#    copy_file_range (the daemon's engine writes to hostb).
awk '{ print } $0 == "[hostb]" { print "bwlimit = 3M" }' "$STATE/hosts.conf" >"$WORK/hosts-bw.conf"
grep_q -x "bwlimit = 3M" "$WORK/hosts-bw.conf" || fail "no [hostb] in hosts.conf"
log_mark "$WORK/mount-extra.log"
mount_extra -o hosts="$WORK/hosts-bw.conf" -o bwlimit=0
log_grep -F "hostb: transfers limited to 3M bytes/s (bwlimit)" >/dev/null ||
	fail "no log line for hostb's limit"
log_grep -F "hosta: transfers limited" >/dev/null && fail "hosta is limited too"
t0=$(now)
copy_cfr "$NEWMNT/hosta/bw1" "$NEWMNT/hostb/bw1" || fail "copy_file_range with hostb's bwlimit = 3M"
at_least "hostb's bwlimit = 3M, copy_file_range" "$(echo "$(now) - $t0" | bc)" 3
cmp "$SRC" "$STATE/hostb/lib/images/bw1-vda.raw" || fail "the copy differs"
defined hostb bw1 || fail "bw1 not defined on hostb"
unmount_extra
NEWMNT=

# 3. A rate that is not one.
rc=0
out=$("$TOP/kvmmigfs" -o hosts="$STATE/hosts.conf" -o bwlimit=10MB "$WORK" 2>&1) || rc=$?
[ "$rc" != 0 ] && [[ "$out" == *'bwlimit: bad rate "10MB": bytes per second, with K, M or G'* ]] ||
	fail "-o bwlimit=10MB: exit $rc: $out"
ok "-o bwlimit=10MB refused: $out"
printf '[hostx]\nlibvirt = qemu:///system\nbwlimit = 1.5M\n' >"$WORK/bad.conf"
rc=0
out=$("$TOP/kvmmigfs" -o hosts="$WORK/bad.conf" "$WORK" 2>&1) || rc=$?
[ "$rc" != 0 ] && [[ "$out" == *'bad.conf:3: bwlimit: bad rate "1.5M"'* ]] ||
	fail "bwlimit = 1.5M: exit $rc: $out"
ok "bwlimit = 1.5M in a hosts file refused: $out"
