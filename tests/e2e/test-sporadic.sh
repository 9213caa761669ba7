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
onhost hosta sh -c "
	set -e
	f=$IMG/spo1-vda.raw
	truncate -s 128M \$f
	for i in 0 1 2; do
		head -c 16M /dev/urandom | dd of=\$f bs=1M seek=\$((i * 40)) conv=notrunc status=none
	done
	cat >/tmp/spo1.xml <<EOF
<domain type='kvm'><name>spo1</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='\$f'/><target dev='vda' bus='virtio'/></disk></devices></domain>
EOF
	${VIRSH[*]} define /tmp/spo1.xml >/dev/null
	${VIRSH[*]} pool-refresh default >/dev/null" </dev/null
src_sum=$(host_sha256 hosta raw $IMG/spo1-vda.raw)

for h in hosta hostb; do
	mkdir -p "$WORK/$h-bin"
	[ $h = hosta ] && params="error-pread-rate=1% error=EIO" || params="error-pwrite-rate=1% error=EIO"
	printf '#!/bin/sh\nexec /usr/bin/nbdkit --filter=error "$@" %s\n' "$params" >"$WORK/$h-bin/nbdkit"
	chmod +x "$WORK/$h-bin/nbdkit"
	onhost $h mount --bind "$WORK/$h-bin" /usr/local/bin </dev/null
done
sleep 2.5 # the mount's listing cache

copy_cfr() {
	mkdir "$B/spo1" || return 1
	python3 - "$A/spo1/vda.raw" "$B/spo1/vda.raw" <<'PY' || return 1
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
try:
    while os.copy_file_range(src, dst, 1 << 30):
        pass
    os.close(dst)
except OSError as e:
    print("copy_file_range: " + os.strerror(e.errno), file=sys.stderr)
    sys.exit(1)
PY
	cp "$A/spo1/domain.xml" "$B/spo1/"
}
copy_cp() {
	cp -r "$A/spo1" "$B/"
}

ok_runs=0 failed_runs=0
for i in $(seq "$RUNS"); do
	how=copy_cp
	[ $((i % 2)) = 0 ] && how=copy_cfr
	rc=0
	out=$("$how" 2>&1) || rc=$?
	defined=$(onhost hostb "${VIRSH[@]}" list --all --name </dev/null | grep -cx spo1 || true)
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
		[ -z "$(onhost hostb "${VIRSH[@]}" vol-list default </dev/null)" ] ||
			fail "run $i ($how): volumes left after rm -r"
		failed_runs=$((failed_runs + 1))
	fi
done
[ "$(host_sha256 hosta raw $IMG/spo1-vda.raw)" = "$src_sum" ] || fail "the source changed"
ok "$RUNS runs with 1% read and write errors: $ok_runs correct copies, $failed_runs clean EIO failures, no false success"
[ $ok_runs -gt 0 ] && [ $failed_runs -gt 0 ] ||
	fail "both outcomes must occur for the test to mean anything ($ok_runs ok, $failed_runs failed)"
sleep 1
pgrep -f "spo1-vda.raw" >/dev/null && fail "servers left: $(pgrep -af spo1-vda.raw)"
ok "no NBD server left"
