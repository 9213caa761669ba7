#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Sparse-aware tools keep holes as holes: cp --sparse=auto of a disk file
# to a local file allocates only the source's data, and reads no hole.
. "$(dirname "$0")/lib.sh"

src=$MNT/hosta/web1/vda.raw
read -r _ _ path < <(host_disks hosta web1 | grep '^vda ')

# What is read, at both ends: strace logs cp's reads from the mount, and
# hosta's nbdkit runs with nbdkit's log filter for the copy, which logs
# every read request it serves.
command -v strace >/dev/null || fail "strace not found (tools/install-deps installs it)"
trap 'nbdkit_plain hosta 2>/dev/null || :' EXIT
nbdkit_with hosta --filter=log "logfile=$WORK/nbdkit.log"
strace -e trace=openat,read,copy_file_range -o "$WORK/strace" cp --sparse=auto "$src" "$WORK/vda.raw"
nbdkit_plain hosta
trap - EXIT
want=$(host_sha256 hosta raw "$path")
got=$(sha256sum <"$WORK/vda.raw" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "copy differs from the host's disk"
ok "cp --sparse=auto copy is byte-identical"

src_alloc=$(($(onhost hosta stat -c %b "$path") * 512))
size=$(stat -c %s "$src")
# cp read no hole: what its reads from the mount returned is the
# source's data, at most its allocation, with 1 MiB to spare.
fd=$(sed -n 's|^openat(.*/web1/vda.raw", O_RDONLY.*) = \([0-9]*\)$|\1|p' "$WORK/strace")
[ -n "$fd" ] || fail "cp did not open web1/vda.raw?"
cp_bytes=$(awk -v fd="$fd" 'index($0, "read(" fd ", ") == 1 || index($0, "copy_file_range(" fd ", ") == 1 {
	n = $NF; if (n ~ /^[0-9]+$/) t += n } END { print t + 0 }' "$WORK/strace")
[ "$cp_bytes" -gt 0 ] || fail "cp read nothing from web1/vda.raw"
[ "$cp_bytes" -le $((src_alloc + 1048576)) ] ||
	fail "cp --sparse read $cp_bytes bytes through the mount, the source has $src_alloc allocated of $size: holes were read"
ok "cp reads no hole: $cp_bytes bytes read through the mount (source allocation $src_alloc, size $size)"

# Nor does the daemon: the bytes read from the host's NBD server are the
# source's data, at most its allocation (the zero scan turns allocated
# zeros into holes; readahead goes over data extents only), with 1 MiB to
# spare.
[ -s "$WORK/nbdkit.log" ] || fail "hosta's nbdkit logged nothing: did the copy go through it?"
read -r nreads read_bytes < <(python3 - "$WORK/nbdkit.log" <<'PY'
import re, sys
n = total = 0
for line in open(sys.argv[1]):
    m = re.search(r" Read id=\d+ offset=0x[0-9a-f]+ count=(0x[0-9a-f]+)", line)
    if m:
        n += 1
        total += int(m.group(1), 16)
print(n, total)
PY
)
[ "$nreads" -gt 0 ] || fail "no read reached hosta's nbdkit"
[ "$read_bytes" -le $((src_alloc + 1048576)) ] ||
	fail "$read_bytes bytes were read from the host, the source has $src_alloc allocated of $size: holes were read"
ok "no hole crossed: $read_bytes bytes in $nreads reads from the host (source allocation $src_alloc, size $size)"

copy_alloc=$(($(stat -c %b "$WORK/vda.raw") * 512))
[ "$(stat -c %s "$WORK/vda.raw")" = "$size" ] || fail "copy has size $(stat -c %s "$WORK/vda.raw"), not $size"
# The copy may drop allocated zeros, never add allocation beyond the
# source's (plus one filesystem block per extent for alignment).
[ "$copy_alloc" -le $((src_alloc + 64 * 4096)) ] ||
	fail "copy allocates $copy_alloc bytes, source only $src_alloc"
[ "$copy_alloc" -lt $((size / 2)) ] || fail "copy is not sparse: $copy_alloc of $size"
ok "copy keeps the holes: $copy_alloc bytes allocated of $size (source $src_alloc)"

# The holes are where the source has them.
python3 - "$WORK/vda.raw" <<'PY' >"$WORK/copy.map"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
off = 0
while off < size:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    print(d, h)
    off = h
PY
[ -s "$WORK/copy.map" ] || fail "copy has no data extents"
while read -r d h; do
	cmp -s <(dd if="$src" bs=4096 skip=$((d / 4096)) count=$(((h - d) / 4096)) status=none) \
		<(dd if="$WORK/vda.raw" bs=4096 skip=$((d / 4096)) count=$(((h - d) / 4096)) status=none) ||
		fail "data extent $d-$h differs"
done <"$WORK/copy.map"
ok "copy's data extents: $(wc -l <"$WORK/copy.map"), each equal to the source"
