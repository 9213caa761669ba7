#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Faults during a migration, each checked for: a clear error for the
# copier, nothing defined on the target, rm -r cleaning up, the source
# unchanged, no NBD server left behind.
#   - the ssh carrying the source's or the target's NBD connection is
#     killed mid-copy: EIO within seconds;
#   - unmount is asked for while a copy runs: refused (EBUSY), the copy
#     completes;
#   - the source's libvirtd is down: the copy fails, nothing is created;
#   - a second name for the same host (hosts sharing a pool) and a copy
#     whose new volume names are the source's own volumes: EEXIST, the
#     source untouched; the same guest under a new name is a clone;
#   - the source guest is started during its copy: EBUSY;
#   - the target's libvirtd is down when the guest would be defined;
#   - the source's NBD server stops answering mid-copy: ETIMEDOUT.
# The source is slowed to about 25 MB/s (nbdkit's rate filter on hosta) so
# that the faults land mid-copy.
. "$(dirname "$0")/lib.sh"

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
A=$MNT/hosta
B=$MNT/hostb

cleanup() {
	set +e
	[ -n "${NEWMNT:-}" ] && fusermount3 -u "$NEWMNT" 2>/dev/null
	onhost hosta umount /usr/local/bin </dev/null 2>/dev/null
	onhost hosta "${VIRSH[@]}" destroy flt1 </dev/null >/dev/null 2>&1
	for g in flt1 src15; do
		onhost hosta "${VIRSH[@]}" undefine $g </dev/null >/dev/null 2>&1
	done
	for v in flt1-vda.raw dst15-vda.raw src15b-vda.raw; do
		onhost hosta "${VIRSH[@]}" vol-delete --pool default $v </dev/null >/dev/null 2>&1
	done
	"$TOP/tools/testhosts" startd "$STATE" hosta libvirtd >/dev/null 2>&1
	"$TOP/tools/testhosts" startd "$STATE" hostb libvirtd >/dev/null 2>&1
	clean_host hostb
}
trap cleanup EXIT

# define_guest NAME VOLUME DATA_MIB: a guest on hosta whose one disk is the
# volume VOLUME (256 MiB sparse raw, DATA_MIB of random data).
define_guest() {
	define_raw_guest "$1" "$2" 256 \
		"head -c $3M /dev/urandom | dd of=\$f bs=1M seek=16 conv=notrunc status=none"
}
define_guest flt1 flt1-vda.raw 128
flt1_sum=$(host_sha256 hosta raw $IMG/flt1-vda.raw)
wait_until 10 listed "$A" flt1 # the mount's listing cache

slow_source() {
	nbdkit_with hosta --filter=rate rate=200M
}
fast_source() {
	nbdkit_plain hosta
}

# nothing_left LABEL GUEST: GUEST not defined on hostb, rm -r of its
# staging folder leaves no volume, no NBD server of its disks runs.
nothing_left() {
	local label=$1 g=$2
	defined hostb "$g" && fail "$label: $g defined after the fault"
	if [ -e "$B/$g" ]; then
		rm -r "$B/$g" || fail "$label: rm -r of the staging folder"
	fi
	no_volumes hostb || fail "$label: volumes left on hostb: $VOLS"
	wait_until 5 no_process "$g-vda.raw" # NBD servers and their ssh
	ok "$label: nothing defined, nothing left on hostb, no server left"
}

# 1. The ssh of an NBD connection killed a second into the copy.
for side in hosta hostb; do
	slow_source
	log_mark
	cp -r "$A/flt1" "$B/" >"$WORK/cp.out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		pgrep -f "root@$side.*flt1-vda.raw" >/dev/null && break
		sleep 0.05
	done
	sleep 1
	t0=$(now)
	pkill -f "ssh .*root@$side.*flt1-vda.raw" || fail "ssh to $side: no ssh to kill"
	rc=0
	wait $pid || rc=$?
	secs=$(echo "$(now) - $t0" | bc)
	fast_source
	[ $rc != 0 ] || fail "ssh to $side killed: the copy succeeded"
	grep -q "Input/output error" "$WORK/cp.out" ||
		fail "ssh to $side killed: cp said: $(cat "$WORK/cp.out")"
	[ "$(echo "$secs < 10" | bc)" = 1 ] || fail "ssh to $side killed: cp took $secs s to fail"
	ok "ssh to $side killed mid-copy: cp fails with EIO after $secs s"
	log_grep "flt1/vda.raw: .*connection to the NBD server lost" >/dev/null ||
		fail "ssh to $side killed: no log line saying the connection was lost"
	nothing_left "ssh to $side killed" flt1
done
[ "$(host_sha256 hosta raw $IMG/flt1-vda.raw)" = "$flt1_sum" ] || fail "flt1 changed"

# 2. Unmount while a copy runs (on a mount of its own): refused.
mount_extra
slow_source
cp -r "$NEWMNT/hosta/flt1" "$NEWMNT/hostb/" &
pid=$!
sleep 1
out=$(fusermount3 -u "$NEWMNT" 2>&1) && fail "unmount during a copy succeeded"
case "$out" in
*"busy"*) ok "unmount during a copy refused: $out" ;;
*) fail "unmount during a copy: '$out'" ;;
esac
wait $pid || fail "the copy failed after the refused unmount"
fast_source
defined hostb flt1 || fail "flt1 not defined after the copy"
[ "$(host_sha256 hostb raw $IMG/flt1-vda.raw)" = "$flt1_sum" ] || fail "the copy differs"
ok "the copy completed and is defined once"
fusermount3 -u "$NEWMNT" || fail "unmount after the copy"
NEWMNT=
clean_host hostb

# 3. The source's libvirtd down: the copy fails, nothing on hostb.
"$TOP/tools/testhosts" stopd "$STATE" hosta libvirtd >/dev/null
wait_until 15 fails ls "$A" # the listing cache
rc=0
out=$(cp -r "$A/flt1" "$B/" 2>&1) || rc=$?
"$TOP/tools/testhosts" startd "$STATE" hosta libvirtd >/dev/null
[ $rc != 0 ] || fail "source libvirtd down: the copy succeeded"
case "$out" in
*"Host is down"* | *"timed out"*) ok "source libvirtd down: cp fails: $(echo "$out" | head -1)" ;;
*) fail "source libvirtd down: cp said '$out'" ;;
esac
[ ! -e "$B/flt1" ] || fail "source libvirtd down: a staging folder was made"
nothing_left "source libvirtd down" flt1

# 4. Two names for one host (hostc = hosta).  src15's disk is the volume
#    dst15-vda.raw: copying src15 to hostc/dst15 would make that very
#    volume: EEXIST, the source untouched.  A copy under a new name is a
#    clone with new volumes.
define_guest src15 dst15-vda.raw 8
src15_sum=$(host_sha256 hosta raw $IMG/dst15-vda.raw)
{
	cat "$STATE/hosts.conf"
	sed -n '/^\[hosta\]/,/^$/p' "$STATE/hosts.conf" | sed 's/^\[hosta\]/[hostc]/'
} >"$WORK/hosts-alias.conf"
mount_extra -o hosts="$WORK/hosts-alias.conf"
wait_until 10 listed "$NEWMNT/hostc" src15 # hosta's second name
expect_fail "File exists" mkdir "$NEWMNT/hostc/src15"
rc=0
out=$(cp -r "$NEWMNT/hosta/src15" "$NEWMNT/hostc/dst15" 2>&1) || rc=$?
[ $rc != 0 ] || fail "a copy onto the source's own volume succeeded"
case "$out" in
*"File exists"*) ok "a copy whose volume is the source's own: EEXIST" ;;
*) fail "a copy onto the source's own volume: cp said '$out'" ;;
esac
[ "$(host_sha256 hosta raw $IMG/dst15-vda.raw)" = "$src15_sum" ] || fail "the source's volume changed"
defined hosta dst15 && fail "dst15 defined"
rm -r "$NEWMNT/hostc/dst15" || fail "rm -r of the refused copy"
onhost hosta test -e $IMG/dst15-vda.raw </dev/null || fail "rm -r removed the source's volume"
ok "the source's volume is unchanged and still there after rm -r"
cp -r "$NEWMNT/hosta/src15" "$NEWMNT/hostc/src15b" || fail "clone on the same host"
defined hosta src15b || fail "src15b not defined"
[ "$(host_sha256 hosta raw $IMG/src15b-vda.raw)" = "$src15_sum" ] || fail "the clone differs"
ok "a copy under a new name on the same host is a clone in new volumes"
onhost hosta "${VIRSH[@]}" undefine src15b </dev/null >/dev/null
fusermount3 -u "$NEWMNT"
NEWMNT=

# 5. The source guest started during its copy: EBUSY, nothing defined.
slow_source
log_mark
cp -r "$A/flt1" "$B/" >"$WORK/cp.out" 2>&1 &
pid=$!
sleep 1
onhost hosta "${VIRSH[@]}" start flt1 </dev/null >/dev/null || fail "could not start flt1"
rc=0
wait $pid || rc=$?
fast_source
onhost hosta "${VIRSH[@]}" destroy flt1 </dev/null >/dev/null
[ $rc != 0 ] || fail "the source was started mid-copy and the copy succeeded"
grep -q "Device or resource busy" "$WORK/cp.out" ||
	fail "source started mid-copy: cp said: $(cat "$WORK/cp.out")"
ok "source started mid-copy: cp fails: $(grep -m1 busy "$WORK/cp.out")"
log_grep "hosta/flt1/vda.raw: read: EBUSY: the guest was started" >/dev/null || fail "no EBUSY log line"
nothing_left "source started mid-copy" flt1

# 6. The target's libvirtd is down when the last file completes the guest:
#    close() fails with EHOSTDOWN, nothing is defined; once libvirtd is
#    back, writing domain.xml again defines the guest exactly once.
mkdir "$B/web1" || fail "mkdir hostb/web1"
cp "$A/web1/vda.raw" "$A/web1/vdb.qcow2" "$B/web1/" || fail "copying web1's disks"
"$TOP/tools/testhosts" stopd "$STATE" hostb libvirtd >/dev/null
log_mark
rc=0
out=$(cp "$A/web1/domain.xml" "$B/web1/" 2>&1) || rc=$?
"$TOP/tools/testhosts" startd "$STATE" hostb libvirtd >/dev/null
[ $rc != 0 ] || fail "define with the target's libvirtd down succeeded"
case "$out" in
*"Host is down"* | *"timed out"*) ok "target libvirtd down at define: cp fails: $out" ;;
*) fail "target libvirtd down at define: cp said '$out'" ;;
esac
log_grep "hostb/web1/domain.xml: close: EHOSTDOWN" >/dev/null || fail "no EHOSTDOWN log line for the define"
defined hostb web1 && fail "web1 defined although libvirtd was down"
cp "$A/web1/domain.xml" "$B/web1/" || fail "writing domain.xml again after libvirtd is back"
ndefined hostb web1
[ "$NDEF" = 1 ] || fail "web1 defined $NDEF times, not exactly once"
ok "libvirtd back: domain.xml written again defines web1 exactly once"
clean_host hostb

# 6b. The target's libvirtd restarts inside the define call: frozen
#     (SIGSTOP) before the last close sends it, killed and started again
#     while the call waits.  The close fails with a clear error instead of
#     hanging, the guest is defined once or not at all, and writing
#     domain.xml again leaves it defined exactly once.
mkdir "$B/web1" || fail "mkdir hostb/web1"
cp "$A/web1/vda.raw" "$A/web1/vdb.qcow2" "$B/web1/" || fail "copying web1's disks"
lpid=$(onhost hostb cat /run/libvirtd.pid </dev/null) || fail "6b: reading hostb's libvirtd pid"
onhost hostb kill -STOP "$lpid" </dev/null || fail "6b: freezing hostb's libvirtd (pid $lpid)"
log_mark
t0=$(now)
cp "$A/web1/domain.xml" "$B/web1/" >"$WORK/cp.out" 2>&1 &
cpid=$!
sleep 2
onhost hostb kill -KILL "$lpid" </dev/null
"$TOP/tools/testhosts" startd "$STATE" hostb libvirtd >/dev/null
rc=0
wait "$cpid" || rc=$?
took=$(echo "$(now) - $t0" | bc)
ndefined hostb web1
n=$NDEF
if [ "$rc" = 0 ]; then
	[ "$n" = 1 ] || fail "close succeeded but web1 is defined $n times"
	ok "libvirtd restarted inside define: the close succeeded and web1 is defined once (${took} s)"
else
	grep_q -E "Host is down|timed out|Input/output error" "$WORK/cp.out" ||
		fail "libvirtd restarted inside define: cp said '$(cat "$WORK/cp.out")'"
	log_grep -E "hostb/web1/domain.xml: close: E[A-Z]+: " >/dev/null ||
		fail "no log line for the failed define"
	ok "libvirtd restarted inside define: cp fails after ${took} s: $(cat "$WORK/cp.out"); web1 defined $n times"
	[ "$n" -le 1 ] || fail "web1 defined $n times"
	cp "$A/web1/domain.xml" "$B/web1/" || fail "writing domain.xml again after the restart"
fi
ndefined hostb web1
[ "$NDEF" = 1 ] || fail "web1 defined $NDEF times after the restart, not exactly once"
ok "after the restart web1 is defined exactly once"
clean_host hostb

# 6c. The define call's answer lost after the host did define the guest:
#     as if so, the host defines it behind the staging folder's back.
#     Removing the folder must not delete the volumes the guest now uses.
log_mark
mkdir "$B/lost" || fail "mkdir hostb/lost"
cp "$A/odd1/vda.raw" "$B/lost/" || fail "staging lost's disk"
guest_xml lost "$(virt_type)" file /var/lib/libvirt/images/lost-vda.raw |
	onhost hostb "${VIRSH[@]}" define /dev/stdin >/dev/null
sum=$(host_sha256 hostb raw /var/lib/libvirt/images/lost-vda.raw)
rc=0
out=$(rm -r "$B/lost" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "rm -r deleted a folder whose guest is defined"
case "$out" in *"Operation not permitted"*) ;; *) fail "rm -r said '$out'" ;; esac
log_grep "hostb/lost: a guest of that name exists now: its volumes are kept" >/dev/null || fail "no log line for the kept volumes"
[ "$(host_sha256 hostb raw /var/lib/libvirt/images/lost-vda.raw)" = "$sum" ] || fail "the defined guest's volume changed"
ok "a guest defined although the define's answer was lost: rm -r is refused (EPERM), its volume kept"
clean_host hostb

# 7. The source's NBD server stops answering mid-copy (SIGSTOP: its ssh
#    stays connected, nothing moves): with -o timeout=3 the copy fails with
#    ETIMEDOUT within a few seconds instead of hanging; nothing defined.
log_mark "$WORK/mount-extra.log"
mount_extra -o timeout=3
slow_source
cp -r "$NEWMNT/hosta/flt1" "$NEWMNT/hostb/" >"$WORK/cp.out" 2>&1 &
pid=$!
server=
for _ in $(seq 100); do
	server=$(pgrep -o -f '^/usr/bin/nbdkit .* -r file file=.*flt1-vda.raw') && break
	sleep 0.05
done
[ -n "$server" ] || fail "no NBD server for flt1 on hosta"
sleep 1
kill -STOP "$server"
t0=$(now)
rc=0
wait $pid || rc=$?
secs=$(echo "$(now) - $t0" | bc)
kill -CONT "$server" 2>/dev/null
fast_source
[ $rc != 0 ] || fail "frozen source server: the copy succeeded"
grep -q "Connection timed out" "$WORK/cp.out" ||
	fail "frozen source server: cp said: $(cat "$WORK/cp.out")"
[ "$(echo "$secs < 10" | bc)" = 1 ] || fail "frozen source server: cp took $secs s to fail"
ok "frozen source server: cp fails with ETIMEDOUT after $secs s (timeout 3 s)"
log_grep "hosta/flt1/vda.raw: read: ETIMEDOUT" >/dev/null ||
	fail "no ETIMEDOUT log line: $(grep flt1 "$WORK/mount-extra.log" | tail -3)"
rm -r "$NEWMNT/hostb/flt1" || fail "frozen source server: rm -r of the staging folder"
fusermount3 -u "$NEWMNT"
NEWMNT=
nothing_left "frozen source server" flt1
