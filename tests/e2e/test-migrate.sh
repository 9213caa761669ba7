#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Offline migration by copying a guest folder onto another host, with every
# kind of writer: cp -r, cp -a, rsync -r, rsync -a, python shutil.copytree,
# tar.
# Each time: the target's disks equal the source's as the guest sees them,
# the raw disk stays sparse (its allocated zeros do not become allocated),
# the guest is defined with the new volumes and the CD-ROM ejected, it
# starts, and the source is unchanged and still defined.
. "$(dirname "$0")/lib.sh"
trap 'clean_host hostb' EXIT

VIRSH=(virsh -q -c qemu:///system)

# The source as it is before any copy.
src_xml=$(onhost hosta "${VIRSH[@]}" dumpxml --inactive web1 | sha256sum)
declare -A src_sha
guest_disks hosta web1
SRC_DISKS=$DISKS
while read -r dev fmt path <&3; do
	src_sha[$dev]=$(host_sha256 hosta "$fmt" "$path")
done 3<<<"$SRC_DISKS"
[ "${#src_sha[@]}" = 2 ] || fail "web1 should have 2 disks: ${!src_sha[*]}"
src_alloc=$(onhost hosta stat -c %b /var/lib/libvirt/images/web1-vda.raw </dev/null)

# Data extents of a file on a host, "start end" lines.
host_map() {
	onhost "$1" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; off = 0
while off < size:
    try: d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError: break
    h = os.lseek(fd, d, os.SEEK_HOLE); print(d, h); off = h' "$2" </dev/null
}

check_target() {
	local label=$1 host=$2 guest=$3 xml
	xml=$(onhost "$host" "${VIRSH[@]}" dumpxml --inactive "$guest" </dev/null) ||
		fail "$label: $guest is not defined on $host"
	[ "$(echo "$xml" | "$TOP/tests/listdisks" | wc -l)" = 2 ] ||
		fail "$label: $guest should have 2 disks: $(echo "$xml" | "$TOP/tests/listdisks")"
	while read -r dev fmt path <&3; do
		case $path in
		/var/lib/libvirt/images/$guest-$dev.$fmt) ;;
		*) fail "$label: $dev points at $path" ;;
		esac
		[ "$(host_sha256 "$host" "$fmt" "$path" </dev/null)" = "${src_sha[$dev]}" ] ||
			fail "$label: $dev differs from the source"
	done 3< <(echo "$xml" | "$TOP/tests/listdisks")
	ok "$label: disks equal the source, in new volumes $guest-vda.raw, $guest-vdb.qcow2"
	echo "$xml" | grep_q "backingStore type=" && fail "$label: a backing chain was kept"
	echo "$xml" | python3 -c '
import sys, xml.etree.ElementTree as E
d = E.parse(sys.stdin).getroot()
cd = [x for x in d.findall("./devices/disk") if x.get("device") == "cdrom"]
assert len(cd) == 1, "no cdrom drive"
assert cd[0].find("source") is None, "cdrom media not ejected"
' || fail "$label: CD-ROM not ejected"
	ok "$label: CD-ROM drive kept, media (absent on $host) ejected"

	# Sparse: allocation no more than the source's, and the source's
	# allocated-zero run (120-124 MiB) is a hole on the target.
	local alloc
	alloc=$(onhost "$host" stat -c %b "/var/lib/libvirt/images/$guest-vda.raw" </dev/null)
	[ "$alloc" -lt "$src_alloc" ] ||
		fail "$label: target allocates $alloc blocks, source $src_alloc"
	host_map "$host" "/var/lib/libvirt/images/$guest-vda.raw" | while read -r d h; do
		if [ "$d" -lt $((124 << 20)) ] && [ "$h" -gt $((120 << 20)) ]; then
			fail "$label: allocated zeros 120-124 MiB became data ($d-$h)"
		fi
	done
	ok "$label: vda.raw sparse ($alloc blocks vs source $src_alloc); allocated zeros stayed holes"
	[ "$(onhost "$host" stat -c %s "/var/lib/libvirt/images/$guest-vda.raw" </dev/null)" = 268435456 ] ||
		fail "$label: target vda.raw size wrong"

	onhost "$host" "${VIRSH[@]}" start "$guest" </dev/null >/dev/null ||
		fail "$label: $guest does not start on $host"
	[ "$(onhost "$host" "${VIRSH[@]}" domstate "$guest" </dev/null)" = running ] ||
		fail "$label: $guest not running"
	onhost "$host" "${VIRSH[@]}" destroy "$guest" </dev/null >/dev/null
	ok "$label: $guest starts on $host"
}

remove_guest() {
	local host=$1 guest=$2
	onhost "$host" "${VIRSH[@]}" undefine "$guest" </dev/null >/dev/null
	for v in "$guest-vda.raw" "$guest-vdb.qcow2"; do
		onhost "$host" "${VIRSH[@]}" vol-delete --pool default "$v" </dev/null >/dev/null
	done
	wait_until 10 unlisted "$MNT/$host" "$guest" # the mount's listing cache
}

check_source() {
	[ "$(onhost hosta "${VIRSH[@]}" dumpxml --inactive web1 </dev/null | sha256sum)" = "$src_xml" ] ||
		fail "$1: the source's XML changed"
	local n=0 now_disks
	now_disks=$(host_disks hosta web1) || fail "$1: listing the source's disks"
	[ "$now_disks" = "$SRC_DISKS" ] || fail "$1: the source's disks changed: $now_disks"
	while read -r dev fmt path <&3; do
		[ "$(host_sha256 hosta "$fmt" "$path" </dev/null)" = "${src_sha[$dev]}" ] ||
			fail "$1: the source's $dev changed"
		n=$((n + 1))
	done 3<<<"$SRC_DISKS"
	[ "$n" = 2 ] || fail "$1: checked $n of the source's 2 disks"
	ok "$1: the source is unchanged and still defined"
}

migrate() {
	local label=$1
	shift
	"$@" || fail "$label: '$*' failed"
	ok "$label: '$*' done"
	check_target "$label" hostb web1
	check_source "$label"
	remove_guest hostb web1
}

migrate "cp -r" cp -r "$MNT/hosta/web1" "$MNT/hostb/"
migrate "cp -a" cp -a "$MNT/hosta/web1" "$MNT/hostb/"
migrate "rsync -r" rsync -r "$MNT/hosta/web1" "$MNT/hostb/"
migrate "rsync -a" rsync -a "$MNT/hosta/web1" "$MNT/hostb/"
migrate "shutil.copytree" python3 -c 'import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])' \
	"$MNT/hosta/web1" "$MNT/hostb/web1"
# tar: domain.xml first, then the disks read in full (no --sparse), files
# created with O_EXCL, owners and times set at the end.
migrate "tar" sh -c 'tar -C "$1" -cf - web1 | tar -C "$2" -xf -' sh \
	"$MNT/hosta" "$MNT/hostb"
