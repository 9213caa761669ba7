#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Real clients copy a guest folder out of the mount: cp -r, rsync -a,
# python's shutil.copytree and gio copy all get exactly the host's bytes.
. "$(dirname "$0")/lib.sh"

src=$MNT/hosta/web1
declare -A want
want[domain.xml]=$(sha256sum <"$src/domain.xml" | cut -d' ' -f1)
guest_disks hosta web1
while read -r dev fmt path <&3; do
	want[$dev.$fmt]=$(host_sha256 hosta "$fmt" "$path")
done 3<<<"$DISKS"
[ "${#want[@]}" = 3 ] || fail "web1: domain.xml and 2 disks wanted, have ${!want[*]}"

verify() {
	local label=$1 dir=$2 f n=0
	for f in "${!want[@]}"; do
		[ -f "$dir/$f" ] || fail "$label: $f missing in the copy"
		[ "$(sha256sum <"$dir/$f" | cut -d' ' -f1)" = "${want[$f]}" ] ||
			fail "$label: $f differs from the host's"
		n=$((n + 1))
	done
	[ "$(ls "$dir" | wc -l)" = "$n" ] || fail "$label: extra files: $(ls "$dir")"
	ok "$label: all $n files equal the host's"
	rm -rf "$dir"
}

cp -r "$src" "$WORK/cp"
verify "cp -r" "$WORK/cp"

rsync -a "$src/" "$WORK/rsync/"
verify "rsync -a" "$WORK/rsync"

python3 -c 'import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])' "$src" "$WORK/shutil"
verify "shutil.copytree" "$WORK/shutil"

mkdir "$WORK/gio"
for f in "$src"/*; do
	gio copy "$f" "$WORK/gio/" || fail "gio copy $f failed"
done
verify "gio copy" "$WORK/gio"
gio info -a standard::size "$src/vda.raw" | grep_q "standard::size: $(stat -c %s "$src/vda.raw")" ||
	fail "gio info size"
ok "gio info reports the virtual size"
