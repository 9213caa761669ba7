#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Reading disks: every disk file holds exactly the bytes the guest sees
# (qcow2 on its backing file flattened, loop block device, sparse raw);
# sizes, allocation and block size are the host's.
. "$(dirname "$0")/lib.sh"

# tools/install-deps installs strace; without it the read sizes go unchecked.
command -v strace >/dev/null || fail "strace not found (tools/install-deps installs it)"

# The disks each guest has (mkguests): every one must be checked.
declare -A ndisks=([web1]=2 [blk1]=1 [odd1]=1)
for guest in web1 blk1 odd1; do
	guest_disks hosta "$guest"
	n=0
	while read -r dev fmt path <&3; do
		f=$MNT/hosta/$guest/$dev.$fmt
		want=$(host_sha256 hosta "$fmt" "$path")
		got=$(sha256sum <"$f" | cut -d' ' -f1)
		[ "$got" = "$want" ] || fail "$guest/$dev.$fmt: sha256 $got, host says $want"
		ok "$guest/$dev.$fmt: sha256 equals the host's view ($fmt, $path)"

		vsize=$(onhost hosta qemu-img info -U --output=json -f "$fmt" "$path" |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
		[ "$(stat -c %s "$f")" = "$vsize" ] ||
			fail "$f: st_size $(stat -c %s "$f"), virtual size $vsize"
		[ "$(stat -c %o "$f")" = 1048576 ] ||
			fail "$f: st_blksize $(stat -c %o "$f"), wanted 1 MiB"
		ok "$guest/$dev.$fmt: st_size = virtual size $vsize, st_blksize 1 MiB"
		n=$((n + 1))
	done 3<<<"$DISKS"
	[ "$n" = "${ndisks[$guest]}" ] || fail "$guest: checked $n disks, it has ${ndisks[$guest]}"
done

# st_blocks of a sparse raw file is its allocation on the host.
read -r _ _ path < <(host_disks hosta web1 | grep '^vda ')
host_blocks=$(onhost hosta stat -c %b "$path")
got_blocks=$(stat -c %b "$MNT/hosta/web1/vda.raw")
[ "$got_blocks" = "$host_blocks" ] ||
	fail "vda.raw: st_blocks $got_blocks, host file has $host_blocks"
size=$(stat -c %s "$MNT/hosta/web1/vda.raw")
[ $((got_blocks * 512)) -lt $((size / 2)) ] || fail "web1 vda.raw is not sparse?"
du_k=$(du -k "$MNT/hosta/web1/vda.raw" | cut -f1)
[ "$du_k" = $((got_blocks / 2)) ] || fail "du says $du_k KiB, st_blocks $got_blocks"
ok "vda.raw: st_blocks = host allocation ($got_blocks), du agrees"

# cp uses big buffers (st_blksize) for a dense file: look at its reads.
# (For a sparse source, cp 9.1 keeps the destination's buffer size.)
strace -e trace=openat,read -o "$WORK/strace" cp "$MNT/hosta/blk1/vda.raw" "$WORK/blk1.raw"
fd=$(sed -n 's|.*openat(.*/blk1/vda.raw", O_RDONLY.*) = \([0-9]*\)$|\1|p' "$WORK/strace")
[ -n "$fd" ] || fail "cp did not open blk1/vda.raw?"
big=$(sed -n "/^read($fd, .*= 1048576\$/p" "$WORK/strace" | wc -l)
[ "$big" -gt 0 ] || fail "cp never read 1 MiB at once: $(grep "^read($fd" "$WORK/strace" | head -3)"
ok "cp reads 1 MiB at a time from a dense disk ($big reads)"
