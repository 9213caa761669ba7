#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Verify before define: each copied disk's CRC32, computed on the new host,
# equals the source's, computed on its host at the same time, before the
# guest is defined; a byte changed on the new volume after its copy fails
# the close that would define it with EIO, nothing defined, the log naming
# both CRCs and the first block that differs; a host without kvmmigfs-crc
# is verified over NBD (logged); -o verify=no does not verify.
. "$(dirname "$0")/lib.sh"
trap '[ -z "${NEWMNT:-}" ] || unmount_extra; rm -f "$STATE/hosta/lib/kvmmigfs-crc"; clean_host hostb' EXIT

IMG=/var/lib/libvirt/images
xattr() { getfattr --absolute-names --only-values -n user.kvmmigfs.crc32 "$1"; }
a=$(xattr "$MNT/hosta/web1/vda.raw")
b=$(xattr "$MNT/hosta/web1/vdb.qcow2")

# 1. A copy is verified, disk by disk, before the define.
log_mark
cp -r "$MNT/hosta/web1" "$MNT/hostb/ver1" || fail "cp -r web1 to hostb/ver1"
defined hostb ver1 || fail "ver1 not defined"
log_grep -F "hostb/ver1/vda.raw: verified: crc32 $a here and on hosta:$IMG/web1-vda.raw" >/dev/null ||
	fail "no verified line for vda.raw with $a: $(log_since_mark | grep -i verif)"
log_grep -F "hostb/ver1/vdb.qcow2: verified: crc32 $b here and on hosta:$IMG/web1-vdb.qcow2" >/dev/null ||
	fail "no verified line for vdb.qcow2 with $b"
cat "$MNT/hostb/ver1/.status.json" >"$WORK/ver1.json"
[ "$(status_field "$WORK/ver1.json" verify hostb ver1 vda.raw result)" = ok ] &&
	[ "$(status_field "$WORK/ver1.json" verify hostb ver1 vda.raw done)" -gt 0 ] ||
	fail "no verify line ended ok in .status: $(cat "$WORK/ver1.json")"
ok "cp -r: vda.raw ($a) and vdb.qcow2 ($b) verified against hosta, then defined; .status has the verify lines"

# 2. One byte of the new volume changed between its copy and the define.
mkdir "$MNT/hostb/ver2"
cp "$MNT/hosta/web1/vda.raw" "$MNT/hosta/web1/vdb.qcow2" "$MNT/hostb/ver2/" || fail "copying the disks"
onhost hostb sh -c "printf Z | dd of=$IMG/ver2-vda.raw bs=1 seek=$((5 * 1048576 + 17)) conv=notrunc status=none" </dev/null
log_mark
rc=0
cp "$MNT/hosta/web1/domain.xml" "$MNT/hostb/ver2/" 2>"$WORK/cp.err" || rc=$?
[ "$rc" != 0 ] && grep_q "Input/output error" "$WORK/cp.err" || fail "a changed copy: cp exit $rc: $(cat "$WORK/cp.err")"
defined hostb ver2 && fail "ver2 defined although its disk differs"
line=$(log_grep -F "hostb/ver2/domain.xml: close: EIO: ") || fail "no EIO line: $(log_since_mark | tail -3)"
case "$line" in
*"verification failed: crc32 $a on hosta:$IMG/web1-vda.raw, "*" on hostb; the first block that differs is block 5 (bytes 5242880-6291455)") ;;
*) fail "the log line: $line" ;;
esac
ok "a byte changed on hostb: EIO, nothing defined; ${line#*EIO: }"
cat "$MNT/hostb/ver2/.status.json" >"$WORK/ver2.json"
[ "$(status_field "$WORK/ver2.json" write hostb ver2 - result)" = EIO ] ||
	fail "the folder's .status does not say EIO"
[ "$(status_field "$WORK/ver2.json" verify hostb ver2 vda.raw result)" = EIO ] &&
	status_field "$WORK/ver2.json" verify hostb ver2 vda.raw cause | grep_q "first block that differs is block 5" ||
	fail "no verify line with EIO: $(cat "$WORK/ver2.json")"
rm -r "$MNT/hostb/ver2" || fail "rm -r ver2"
volumes hostb
case " $VOLS" in *" ver2-"*) fail "volumes left: $VOLS" ;; esac
ok "rm -r removes the folder and its volumes"

# 3. kvmmigfs-crc on hosta only: hostb's side is read over NBD (logged).
cp "$CRCTOOL" "$STATE/hosta/lib/kvmmigfs-crc" # /var/lib/libvirt on hosta alone
onhost hostb test -e /var/lib/libvirt/kvmmigfs-crc </dev/null && fail "hostb sees hosta's /var/lib/libvirt"
mount_extra -o crc=/var/lib/libvirt/kvmmigfs-crc
log_mark "$WORK/mount-extra.log"
cp -r "$NEWMNT/hosta/web1" "$NEWMNT/hostb/ver3" || fail "cp -r to ver3"
defined hostb ver3 || fail "ver3 not defined"
log_grep -F "hostb/ver3/vda.raw: no kvmmigfs-crc at /var/lib/libvirt/kvmmigfs-crc on the host: computing the CRC by reading the disk over NBD" >/dev/null ||
	fail "no fallback line for hostb: $(log_since_mark | grep -i crc)"
log_grep -F "hostb/ver3/vda.raw: verified: crc32 $a here and on hosta:" >/dev/null || fail "ver3's vda.raw not verified"
log_grep -F "hosta:$IMG/web1-vda.raw: no kvmmigfs-crc" >/dev/null && fail "hosta fell back although it has kvmmigfs-crc"
ok "no kvmmigfs-crc on hostb: its side read over NBD, said in the log, verified all the same"
unmount_extra
NEWMNT=

# 4. -o verify=no: not verified.
mount_extra -o verify=no
log_mark "$WORK/mount-extra.log"
cp -r "$NEWMNT/hosta/web1" "$NEWMNT/hostb/ver4" || fail "cp -r to ver4"
defined hostb ver4 || fail "ver4 not defined"
log_grep -F "hostb/ver4/" | grep_q verified && fail "verified with -o verify=no"
ok "-o verify=no: defined without verification"
