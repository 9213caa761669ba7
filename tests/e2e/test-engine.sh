#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The copy engine's error paths, on both copy paths (copy_file_range, which
# runs the engine in the daemon, and cp's read/write):
#   - the source fails reads mid-copy (nbdkit's error filter on hosta);
#   - the target fails writes (error filter on hostb);
#   - the copier is interrupted (SIGINT) mid-copy.
# Each time: the copier fails with the errno's text, nothing is defined on
# hostb, rm -r leaves no volume, no NBD server or ssh is left running, the
# source is unchanged, and a retry once the fault is gone succeeds.
# The source is slowed to about 50 MB/s (nbdkit's rate filter) so that the
# faults land mid-copy.
. "$(dirname "$0")/lib.sh"

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
A=$MNT/hosta
B=$MNT/hostb
TRIGGER=$WORK/fail

cleanup() {
	set +e
	onhost hosta umount /usr/local/bin </dev/null 2>/dev/null
	onhost hostb umount /usr/local/bin </dev/null 2>/dev/null
	onhost hosta "${VIRSH[@]}" undefine eng1 </dev/null >/dev/null 2>&1
	onhost hosta "${VIRSH[@]}" vol-delete --pool default eng1-vda.raw </dev/null >/dev/null 2>&1
	clean_host hostb
}
trap cleanup EXIT

# eng1 on hosta: 512 MiB sparse raw, 160 MiB random data, 32 MiB of
# allocated zeros.
define_raw_guest eng1 eng1-vda.raw 512 '
	for i in 0 1 2 3; do
		head -c 40M /dev/urandom | dd of=$f bs=1M seek=$((i * 100)) conv=notrunc status=none
	done
	dd if=/dev/zero of=$f bs=1M seek=450 count=32 conv=notrunc status=none'
src_sum=$(host_sha256 hosta raw $IMG/eng1-vda.raw)
wait_until 10 listed "$A" eng1 # the mount's listing cache

copy_cp() {
	cp -r "$1" "$(dirname "$2")/"
}

# After a failed copy: nothing defined, rm -r cleans every volume, no
# server left, the source unchanged.
after_fault() {
	local label=$1
	defined hostb eng1 && fail "$label: eng1 defined after the fault"
	rm -r "$B/eng1" || fail "$label: rm -r of the staging folder"
	no_volumes hostb || fail "$label: volumes left on hostb after rm -r: $VOLS"
	wait_until 5 no_process "eng1-vda.raw" # NBD servers and their ssh
	[ "$(host_sha256 hosta raw $IMG/eng1-vda.raw)" = "$src_sum" ] ||
		fail "$label: the source changed"
	ok "$label: nothing defined, rm -r cleans, no server left, source unchanged"
}

# A retry once the fault is gone: defined, equal to the source.
retry() {
	local label=$1 how=$2
	"$how" "$A/eng1" "$B/eng1" || fail "$label: retry failed"
	defined hostb eng1 || fail "$label: eng1 not defined after the retry"
	[ "$(host_sha256 hostb raw $IMG/eng1-vda.raw)" = "$src_sum" ] ||
		fail "$label: the copy differs from the source"
	ok "$label: the retry is defined and equal to the source"
	clean_host hostb
}

# 1. Source read errors mid-copy: the error filter fails every read once
#    the trigger file exists, which happens a second into the copy.
for how in copy_cfr copy_cp; do
	rm -f "$TRIGGER"
	nbdkit_with hosta "--filter=error --filter=rate" \
		"rate=400M error-pread-rate=100% error=EIO error-pread-file=$TRIGGER"
	log_mark
	(sleep 1; touch "$TRIGGER") &
	rc=0
	out=$("$how" "$A/eng1" "$B/eng1" 2>&1) || rc=$?
	wait
	nbdkit_plain hosta
	[ $rc != 0 ] || fail "$how: source read errors: the copy succeeded"
	case "$out" in
	*"Input/output error"*) ok "$how: source read errors: the copy fails: $(echo "$out" | head -1)" ;;
	*) fail "$how: source read errors: the copy said '$out'" ;;
	esac
	log_grep -E "hosta/eng1/vda.raw: (read|lseek): EIO|hostb/eng1/vda.raw: copy_file_range: EIO" >/dev/null ||
		fail "$how: no log line naming the failing disk"
	after_fault "$how: source read errors"
	retry "$how: source read errors" "$how"
done

# 2. Target write errors from the start.
for how in copy_cfr copy_cp; do
	nbdkit_with hostb "--filter=error" "error-pwrite-rate=100% error=EIO"
	log_mark
	rc=0
	out=$("$how" "$A/eng1" "$B/eng1" 2>&1) || rc=$?
	nbdkit_plain hostb
	[ $rc != 0 ] || fail "$how: target write errors: the copy succeeded"
	case "$out" in
	*"Input/output error"*) ok "$how: target write errors: the copy fails: $(echo "$out" | head -1)" ;;
	*) fail "$how: target write errors: the copy said '$out'" ;;
	esac
	log_grep -E "hostb/eng1/vda.raw: (write|close|copy_file_range): EIO" >/dev/null ||
		fail "$how: no log line naming the target disk"
	after_fault "$how: target write errors"
	retry "$how: target write errors" "$how"
done

# 3. Interrupted (SIGINT, as Ctrl-C) a second into the copy: the copier
#    exits promptly (copy_file_range works in one-second slices).
for how in copy_cfr copy_cp; do
	nbdkit_with hosta "--filter=rate" "rate=400M"
	"$how" "$A/eng1" "$B/eng1" >/dev/null 2>&1 &
	pid=$!
	# The copier itself: python (copy_cfr) or cp, a child of the subshell.
	victim=
	for _ in $(seq 100); do
		# (pgrep fails while there is no child yet)
		victim=$(pgrep -l -P $pid | awk '$2 != "mkdir" {print $1; exit}') &&
			[ -n "$victim" ] && break
		sleep 0.05
	done
	[ -n "$victim" ] || fail "$how: the copier did not start"
	sleep 1
	t0=$(now)
	kill -INT $victim
	rc=0
	wait $pid || rc=$?
	t1=$(now)
	nbdkit_plain hosta
	[ $rc != 0 ] || fail "$how: interrupted: the copy succeeded (finished before the signal?)"
	secs=$(echo "$t1 - $t0" | bc)
	[ "$(echo "$secs < 3" | bc)" = 1 ] ||
		fail "$how: interrupted: the copier took $secs s to stop"
	ok "$how: SIGINT mid-copy: the copier stopped after $secs s"
	after_fault "$how: interrupted"
done
retry "after the interrupts" copy_cfr
