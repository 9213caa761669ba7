#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# kvmmigfs-crc, run on a host through its shell (ssh): the CRC32 of a disk
# as its guest sees it equals zlib's over the flattened bytes
# (tests/crcref.py, written independently) for a sparse raw file, a qcow2
# overlay on a raw backing file, a block device (a loop device), a file of
# an odd size, and an 8 TiB sparse file with a few MiB of data, which
# takes well under a second because holes are never read.
. "$(dirname "$0")/lib.sh"

CRC=$TOP/nbd/kvmmigfs-crc
IMG=/var/lib/libvirt/images
trap 'onhost hosta rm -f $IMG/crc-odd.raw $IMG/crc-huge.raw $IMG/crc-flat.raw </dev/null || :' EXIT

# same HOST PATH [FORMAT]: kvmmigfs-crc over ssh and the reference (over
# the flattened bytes for other formats) give the same total; prints it.
same() {
	local host=$1 path=$2 fmt=${3:-raw} got want ref
	ref=$path
	got=$(ssh "$host" "$CRC" -f "$fmt" "$path" </dev/null | sed -n 's/^total //p') ||
		fail "kvmmigfs-crc $path failed"
	if [ "$fmt" != raw ]; then
		onhost "$host" qemu-img convert -f "$fmt" -O raw "$path" $IMG/crc-flat.raw </dev/null
		ref=$IMG/crc-flat.raw
	fi
	want=$(onhost "$host" python3 "$TOP/tests/crcref.py" "$ref" </dev/null | sed -n 's/^total //p')
	[ -n "$got" ] && [ "$got" = "$want" ] || fail "$path ($fmt): kvmmigfs-crc says '$got', zlib '$want'"
	echo "$got"
}

c=$(same hosta $IMG/web1-vda.raw)
ok "sparse raw web1-vda.raw: $c, as zlib over its bytes"
c=$(same hosta $IMG/web1-vdb.qcow2 qcow2)
ok "qcow2 on a raw backing file (web1-vdb.qcow2): $c, as zlib over the flattened bytes"
dev=$(awk '{print $1; exit}' "$STATE/hosta/loops")
[ -b "$dev" ] || fail "no loop device for blk1: $dev"
c=$(same hosta "$dev")
ok "block device $dev (blk1's disk): $c"

# An odd size, data in the first, a middle and the short last block: the
# per-block list too.
onhost hosta sh -c "truncate -s 10000001 $IMG/crc-odd.raw
	head -c 70000 /dev/urandom | dd of=$IMG/crc-odd.raw bs=1 seek=100 conv=notrunc status=none
	head -c 500000 /dev/urandom | dd of=$IMG/crc-odd.raw bs=1 seek=4000000 conv=notrunc status=none
	printf x | dd of=$IMG/crc-odd.raw bs=1 seek=10000000 conv=notrunc status=none" </dev/null
c=$(same hosta $IMG/crc-odd.raw)
ssh hosta "$CRC" -b $IMG/crc-odd.raw </dev/null | sed -n 's/^d //p' |
	awk '{for (i = 2; i <= NF; i++) printf "%d %s\n", $1 + i - 2, $i}' >"$WORK/blocks.got"
onhost hosta python3 "$TOP/tests/crcref.py" -b $IMG/crc-odd.raw </dev/null | grep -v ^total >"$WORK/blocks.want"
[ "$(wc -l <"$WORK/blocks.want")" -ge 3 ] || fail "reference lists $(wc -l <"$WORK/blocks.want") blocks"
diff "$WORK/blocks.want" "$WORK/blocks.got" >/dev/null ||
	fail "per-block CRCs differ: $(diff "$WORK/blocks.want" "$WORK/blocks.got" | head -5)"
ok "10000001 bytes: $c; its $(wc -l <"$WORK/blocks.got") data blocks' CRCs equal zlib's"

# 8 TiB sparse with 4 MiB of data: read only where data is.
onhost hosta sh -c "truncate -s 8T $IMG/crc-huge.raw
	head -c 3M /dev/urandom | dd of=$IMG/crc-huge.raw bs=1M seek=123456 conv=notrunc status=none
	head -c 1M /dev/urandom | dd of=$IMG/crc-huge.raw bs=1M seek=8388607 conv=notrunc status=none" </dev/null
c=$(same hosta $IMG/crc-huge.raw)
t0=$(date +%s%N)
onhost hosta "$CRC" $IMG/crc-huge.raw </dev/null >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1000 ] || fail "8 TiB sparse took $ms ms"
ok "8 TiB sparse, 4 MiB of data: $c in $ms ms"

# Errors: one line naming the path and the cause, exit 1.
rc=0
out=$(ssh hosta "$CRC" $IMG/no-such.raw 2>&1 </dev/null) || rc=$?
[ "$rc" = 1 ] && [ "$out" = "kvmmigfs-crc: $IMG/no-such.raw: No such file or directory" ] ||
	fail "missing file: exit $rc, '$out'"
rc=0
out=$(ssh hosta "$CRC" -f qcow2 $IMG/crc-odd.raw 2>&1 </dev/null) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_q "^kvmmigfs-crc: $IMG/crc-odd.raw: " || fail "raw read as qcow2: exit $rc, '$out'"
ok "errors: exit 1 with the path and the cause ($out)"
