#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# user.kvmmigfs.crc32 on every disk file: zlib's crc32() of the disk's
# guest-visible bytes (tests/crcref.py over the host's file, flattened for
# qcow2), equal on a source and its copy, new once the disk changes; a
# host without kvmmigfs-crc is checksummed over NBD, with a log line; not
# listed (so cp -a and rsync -X do not compute it); other names: ENODATA.
. "$(dirname "$0")/lib.sh"
trap '[ -z "${NEWMNT:-}" ] || unmount_extra; clean_host hostb' EXIT

IMG=/var/lib/libvirt/images
xattr() { getfattr --absolute-names --only-values -n user.kvmmigfs.crc32 "$1"; }
# ref HOST PATH [FORMAT]: the reference CRC of a disk on a host.
ref() {
	local host=$1 path=$2 fmt=${3:-raw}
	if [ "$fmt" != raw ]; then
		onhost "$host" qemu-img convert -f "$fmt" -O raw "$path" /tmp/xattr-flat.raw </dev/null
		path=/tmp/xattr-flat.raw
	fi
	onhost "$host" python3 "$TOP/tests/crcref.py" "$path" </dev/null | sed -n 's/^total //p'
	onhost "$host" rm -f /tmp/xattr-flat.raw </dev/null
}

a=$(xattr "$MNT/hosta/web1/vda.raw") || fail "getfattr on hosta/web1/vda.raw"
[ "$a" = "$(ref hosta $IMG/web1-vda.raw)" ] || fail "vda.raw: $a, zlib $(ref hosta $IMG/web1-vda.raw)"
b=$(xattr "$MNT/hosta/web1/vdb.qcow2") || fail "getfattr on hosta/web1/vdb.qcow2"
[ "$b" = "$(ref hosta $IMG/web1-vdb.qcow2 qcow2)" ] || fail "vdb.qcow2: $b"
ok "hosta/web1: vda.raw $a, vdb.qcow2 (on its backing file) $b, as zlib over the guest's bytes"

getfattr --absolute-names -d -m - "$MNT/hosta/web1/vda.raw" 2>/dev/null | grep_q kvmmigfs && fail "the CRC is listed"
rc=0
getfattr --absolute-names -n user.other "$MNT/hosta/web1/vda.raw" >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" != 0 ] && grep_q "No such attribute" "$WORK/err" || fail "user.other: $(cat "$WORK/err")"
rc=0
getfattr --absolute-names -n user.kvmmigfs.crc32 "$MNT/hosta/web1/domain.xml" >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" != 0 ] || fail "domain.xml has a CRC"
rc=0
getfattr --absolute-names -n user.kvmmigfs.crc32 "$MNT/hosta/run1/vda.raw" >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" != 0 ] && grep_q "Device or resource busy" "$WORK/err" || fail "a running guest's disk: $(cat "$WORK/err")"
ok "not listed; other names and domain.xml: no attribute; a running guest's disk: EBUSY"

# A copy has the same CRCs, computed on its own host.
cp -r "$MNT/hosta/web1" "$MNT/hostb/xa1" || fail "cp -r web1 to hostb/xa1"
[ "$(xattr "$MNT/hostb/xa1/vda.raw")" = "$a" ] || fail "the copy's vda.raw: $(xattr "$MNT/hostb/xa1/vda.raw"), source $a"
[ "$(xattr "$MNT/hostb/xa1/vdb.qcow2")" = "$b" ] || fail "the copy's vdb.qcow2: $(xattr "$MNT/hostb/xa1/vdb.qcow2"), source $b"
ok "hostb/xa1, copied from hosta/web1: the same CRCs"

# Changed on the host: a new value (the cached one is not served).
vol=$(onhost hostb virsh -q -c qemu:///system domblklist xa1 </dev/null | awk '$1 == "vda" {print $2}')
onhost hostb sh -c "printf Z | dd of=$vol bs=1 seek=5000 conv=notrunc status=none" </dev/null
c=$(xattr "$MNT/hostb/xa1/vda.raw")
[ "$c" != "$a" ] && [ "$c" = "$(ref hostb "$vol")" ] || fail "after a change: $c (before $a, zlib $(ref hostb "$vol"))"
ok "one byte changed on hostb: $c, as zlib says"

# No kvmmigfs-crc on the hosts: read over NBD, logged, same values.
log_mark "$WORK/mount-extra.log"
mount_extra -o crc=/nonexistent/kvmmigfs-crc
[ "$(xattr "$NEWMNT/hosta/web1/vda.raw")" = "$a" ] || fail "over NBD: $(xattr "$NEWMNT/hosta/web1/vda.raw"), not $a"
[ "$(xattr "$NEWMNT/hosta/web1/vdb.qcow2")" = "$b" ] || fail "vdb.qcow2 over NBD"
line=$(log_grep -F "hosta/web1/vda.raw: no kvmmigfs-crc at /nonexistent/kvmmigfs-crc on the host: computing the CRC by reading the disk over NBD") ||
	fail "no log line for the fallback: $(log_since_mark | tail -3)"
ok "no kvmmigfs-crc on the host: the same CRCs over NBD; the log says so"
