#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Sporadic errors with many requests in flight: nbdkit's error filter fails
# 1% of the reads on hosta and 1% of the writes on hostb.  Over many runs
# (both copy paths) every copy either fails with EIO, defines nothing and
# cleans up with rm -r, or succeeds with a disk equal to the source: never
# a false success.  Both outcomes must occur, or the test proves nothing.
. "$(dirname "$0")/lib.sh"

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
A=$MNT/hosta
B=$MNT/hostb
RUNS=${SPORADIC_RUNS:-12}

cleanup() {
	set +e
	onhost hosta umount /usr/local/bin </dev/null 2>/dev/null
	onhost hostb umount /usr/local/bin </dev/null 2>/dev/null
	onhost hosta "${VIRSH[@]}" undefine spo1 </dev/null >/dev/null 2>&1
	onhost hosta "${VIRSH[@]}" vol-delete --pool default spo1-vda.raw </dev/null >/dev/null 2>&1
	clean_host hostb
}
trap cleanup EXIT

# spo1: 128 MiB sparse raw with 48 MiB of random data in three runs.
define_raw_guest spo1 spo1-vda.raw 128 '
	for i in 0 1 2; do
		head -c 16M /dev/urandom | dd of=$f bs=1M seek=$((i * 40)) conv=notrunc status=none
	done'
src_sum=$(host_sha256 hosta raw $IMG/spo1-vda.raw)
wait_until 10 listed "$A" spo1 # the mount's listing cache

nbdkit_with hosta --filter=error "error-pread-rate=1% error=EIO"
nbdkit_with hostb --filter=error "error-pwrite-rate=1% error=EIO"

copy_cp() {
	cp -r "$1" "$(dirname "$2")/"
}

ok_runs=0 failed_runs=0
for i in $(seq "$RUNS"); do
	how=copy_cp
	[ $((i % 2)) = 0 ] && how=copy_cfr
	rc=0
	out=$("$how" "$A/spo1" "$B/spo1" 2>&1) || rc=$?
	ndefined hostb spo1
	defined=$NDEF
	if [ $rc = 0 ]; then
		[ "$defined" = 1 ] || fail "run $i ($how): success but spo1 not defined"
		[ "$(host_sha256 hostb raw $IMG/spo1-vda.raw)" = "$src_sum" ] ||
			fail "run $i ($how): FALSE SUCCESS: the copy differs from the source"
		ok_runs=$((ok_runs + 1))
		clean_host hostb
	else
		case "$out" in
		*"Input/output error"*) ;;
		*) fail "run $i ($how): failed without EIO: $out" ;;
		esac
		[ "$defined" = 0 ] || fail "run $i ($how): failed but spo1 is defined"
		rm -r "$B/spo1" || fail "run $i ($how): rm -r after the failure"
		no_volumes hostb || fail "run $i ($how): volumes left after rm -r: $VOLS"
		failed_runs=$((failed_runs + 1))
	fi
done
[ "$(host_sha256 hosta raw $IMG/spo1-vda.raw)" = "$src_sum" ] || fail "the source changed"
ok "$RUNS runs with 1% read and write errors: $ok_runs correct copies, $failed_runs clean EIO failures, no false success"
[ $ok_runs -gt 0 ] && [ $failed_runs -gt 0 ] ||
	fail "both outcomes must occur for the test to mean anything ($ok_runs ok, $failed_runs failed)"
wait_until 5 no_process "spo1-vda.raw" # NBD servers and their ssh
ok "no NBD server left"
