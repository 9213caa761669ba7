#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Shared storage stays in place: a directory both hosts mount (one
# directory bind-mounted into both at /var/lib/libvirt/shared).  A shut-off
# and a running guest whose disks are there move with nothing copied and
# nothing deleted; a guest in /var/lib/libvirt/images, a directory of the
# same name on both hosts that is not shared, is still copied.
. "$(dirname "$0")/lib.sh"
SH=$WORK/shared
SHARED=/var/lib/libvirt/shared
IMG=/var/lib/libvirt/images
VIRSH=(virsh -q -c qemu:///system)
cleanup() {
	(
		set +e
		for h in hosta hostb; do
			for g in shr1 shr2 nsh1; do
				onhost $h "${VIRSH[@]}" destroy $g </dev/null >/dev/null 2>&1
				onhost $h "${VIRSH[@]}" undefine $g </dev/null >/dev/null 2>&1
			done
			onhost $h umount "$SHARED" </dev/null 2>/dev/null
		done
		onhost hosta "${VIRSH[@]}" vol-delete --pool default nsh1-x.raw </dev/null >/dev/null 2>&1
		exit 0
	)
	clean_host hostb
}
trap cleanup EXIT

mkdir -p "$SH"
for h in hosta hostb; do
	onhost $h sh -c "mkdir -p $SHARED && mount --bind '$SH' $SHARED" </dev/null
done
truncate -s 16M "$SH/shr1.raw"
head -c 4M /dev/urandom | dd of="$SH/shr1.raw" conv=notrunc status=none
sum1=$(sha256sum <"$SH/shr1.raw")
guest_xml shr1 "$(virt_type)" file "$SHARED/shr1.raw" | onhost hosta "${VIRSH[@]}" define /dev/stdin >/dev/null
define_raw_guest nsh1 nsh1-x.raw 16 'head -c 2M /dev/urandom | dd of=$f conv=notrunc status=none'
nsum=$(host_sha256 hosta raw "$IMG/nsh1-x.raw")
wait_until 10 listed "$MNT/hosta" nsh1

# no_markers: the markers that told shared storage apart are gone.
no_markers() {
	[ -z "$(find "$SH" -name '.kvmmigfs-shared.*')" ] ||
		fail "markers left: $(find "$SH" -name '.kvmmigfs-shared.*')"
}

# 1. A shut-off guest on shared storage: defined and undefined only.
log_mark
mv "$MNT/hosta/shr1" "$MNT/hostb/" || fail "mv hosta/shr1 hostb/"
defined hostb shr1 || fail "shr1 not defined on hostb"
defined hosta shr1 && fail "shr1 is still defined on hosta"
[ "$(host_disks hostb shr1)" = "vda raw $SHARED/shr1.raw" ] ||
	fail "shr1's disk on hostb: $(host_disks hostb shr1)"
[ "$(sha256sum <"$SH/shr1.raw")" = "$sum1" ] || fail "shr1.raw changed"
no_volumes hostb || fail "volumes made on hostb: $VOLS"
log_grep -F "hosta/shr1 -> hostb/shr1: disk vda ($SHARED/shr1.raw) is shared storage" >/dev/null ||
	fail "no 'shared storage' line: $(log_since_mark | tail -3)"
no_markers
ok "a shut-off guest on shared storage moves with nothing copied nor deleted"

# 2. A same-named directory that is not shared: copied.
log_mark
mv "$MNT/hosta/nsh1" "$MNT/hostb/" || fail "mv hosta/nsh1 hostb/"
defined hostb nsh1 || fail "nsh1 not defined on hostb"
[ "$(host_disks hostb nsh1)" = "vda raw $IMG/nsh1-vda.raw" ] ||
	fail "nsh1's disk on hostb: $(host_disks hostb nsh1)"
[ "$(host_sha256 hostb raw "$IMG/nsh1-vda.raw")" = "$nsum" ] || fail "nsh1's copy differs"
volumes hosta
case " $VOLS " in *" nsh1-x.raw "*) fail "nsh1-x.raw stays on hosta: $VOLS" ;; esac
log_grep -F "shared storage" >/dev/null && fail "$IMG was taken for shared storage"
ok "a guest in $IMG, the same path on both hosts but not shared, is copied (and its old volume deleted)"

# 3. A running guest on shared storage: live, with no storage copy.
SERIAL=$WORK/shr2.serial
counter_guest hosta shr2 "$SHARED/shr2.raw"
wait_until 10 listed "$MNT/hosta" shr2
log_mark
mv "$MNT/hosta/shr2" "$MNT/hostb/" || fail "mv hosta/shr2 hostb/: $(log_since_mark | tail -3)"
[ "$(onhost hostb "${VIRSH[@]}" domstate --reason shr2 </dev/null)" = "running (migrated)" ] ||
	fail "shr2 on hostb: $(onhost hostb "${VIRSH[@]}" domstate --reason shr2 </dev/null)"
defined hosta shr2 && fail "shr2 is still defined on hosta"
[ -e "$SH/shr2.raw" ] || fail "shr2.raw was deleted"
volumes hostb
case " $VOLS " in *shr2*) fail "a volume made for shr2 on hostb: $VOLS" ;; esac
log_grep -F "hosta/shr2 -> hostb/shr2: migrating the running guest, 0 disk(s) copied, 1 shared" >/dev/null ||
	fail "no migration line: $(log_since_mark | tail -3)"
n=$(last_count)
wait_until 60 count_reaches $((n + 3))
check_serial "shr2 after the move"
no_markers
ok "a running guest on shared storage moves live with no storage copy, its disk stays; it counts on ($(last_count))"
