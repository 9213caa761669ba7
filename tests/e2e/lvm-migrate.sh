#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Logical volumes end to end, on two emulated Debian hosts (lvma, lvmb:
# volume group vg0, libvirt logical pool "lvm") and the namespace hosts:
# LV guest -> LVM host, LV guest -> file-pool host, file guest -> LVM host.
# Every disk equal byte for byte as the guest sees it; LVs of the disk's
# size (whole extents, the tail zero); holes read zeros although the free
# space held 0xAA; an existing LV untouched; ENOSPC before any LV.
. "$(dirname "$0")/lib.sh"

onlvm() { "$TOP/tools/lvmhosts" exec "$STATE" "$@" </dev/null; }
# lvm_define HOST: define the guest whose XML comes on stdin.
lvm_define() { "$TOP/tools/lvmhosts" exec "$STATE" "$1" virsh -q -c qemu:///system define /dev/stdin >/dev/null; }
lvs_of() { onlvm "$1" lvs --noheadings -o lv_name vg0 | tr -d ' ' | sort | tr '\n' ' '; }
lvsize() { onlvm "$1" blockdev --getsize64 "/dev/vg0/$2"; }
lvsha() { # lvsha HOST LV [BYTES]: sha256 of the LV's first BYTES (default all)
	if [ -n "${3:-}" ]; then
		onlvm "$1" sh -c 'head -c "$2" "$1" | sha256sum | cut -d" " -f1' sh "/dev/vg0/$2" "$3"
	else
		onlvm "$1" sh -c 'sha256sum <"$1" | cut -d" " -f1' sh "/dev/vg0/$2"
	fi
}
# ldefined HOST NAME: NAME is defined on HOST; virsh failing fails the test.
ldefined() {
	local out
	out=$(onlvm "$1" virsh -q -c qemu:///system list --all --name) || fail "$1: virsh list failed"
	printf '%s\n' "$out" | grep_q -x -- "$2"
}
MiB=$((1024 * 1024))

cleanup() {
	set +e
	for h in lvma lvmb; do
		for g in $(onlvm $h virsh -q -c qemu:///system list --all --name); do
			onlvm $h virsh -q -c qemu:///system undefine "$g" >/dev/null
		done
		for v in $(lvs_of $h); do
			onlvm $h virsh -q -c qemu:///system vol-delete --pool lvm "$v" >/dev/null
		done
	done
	onhost hosta virsh -q -c qemu:///system undefine fil1 </dev/null >/dev/null 2>&1
	onhost hosta virsh -q -c qemu:///system vol-delete --pool default fil1-vda.raw </dev/null >/dev/null 2>&1
	clean_host hostb
}
trap cleanup EXIT

# The source: guest lv1 on lvma, one 64 MiB LV with data in three places
# (one not on a 4 MiB boundary) and zeros elsewhere.
onlvm lvma virsh -q -c qemu:///system vol-create-as lvm lv1-vda 64M >/dev/null
onlvm lvma sh -c '
	set -e
	f=/dev/vg0/lv1-vda
	dd if=/dev/zero of=$f bs=1M count=64 status=none
	head -c 3M /dev/urandom | dd of=$f bs=1M seek=1 conv=notrunc status=none
	head -c 5M /dev/urandom | dd of=$f bs=1M seek=30 conv=notrunc status=none
	head -c 123457 /dev/urandom | dd of=$f bs=1 seek=$((60 * 1048576 + 999)) conv=notrunc status=none'
guest_xml lv1 qemu block /dev/vg0/lv1-vda | lvm_define lvma
src=$(lvsha lvma lv1-vda)
[ "$(cat "$MNT/lvma/lv1/vda.raw" | sha256sum | cut -d' ' -f1)" = "$src" ] ||
	fail "lv1's LV read through the mount differs"
ok "an LV guest reads through the mount, equal to the LV"

# The target's free space holds old data: 0xAA everywhere.
onlvm lvmb sh -c '
	set -e
	lvcreate -q -y -l 100%FREE -n fill vg0 >/dev/null
	tr "\0" "\252" </dev/zero | dd of=/dev/vg0/fill bs=1M iflag=fullblock status=none 2>/dev/null || true
	sync
	lvremove -q -y vg0/fill >/dev/null
	virsh -q -c qemu:///system pool-refresh lvm >/dev/null'
ok "lvmb's free space prefilled with 0xAA"

# 1. LV guest -> LVM host.  The bytes that cross the hosts' forwarded ssh
#    ports are counted (nftables on loopback): the LV is thick (64 MiB
#    allocated, 8 MiB of data), so allocated zeros must not cross (the
#    zero scan on lvma), nor holes (NBD zero requests on lvmb).
ports=$(awk '/^Host lvm/ { h = 1 } h && $1 == "Port" { printf "%s%s", sep, $2; sep = ", "; h = 0 }' "$STATE/ssh_config")
nft -f - <<NFT
table inet kmfcount {
	chain out { type filter hook output priority 0; tcp dport { $ports } counter; tcp sport { $ports } counter; }
}
NFT
trap 'nft delete table inet kmfcount 2>/dev/null || true; cleanup' EXIT
before=$(lvs_of lvmb)
cp -r "$MNT/lvma/lv1" "$MNT/lvmb/" || fail "cp -r lvma/lv1 lvmb/"
wire=$(nft list table inet kmfcount | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "bytes") n += $(i + 1) } END { print n + 0 }')
nft delete table inet kmfcount
data=$((3 * MiB + 5 * MiB + 123457))
[ "$wire" -lt $((2 * data + 8 * MiB)) ] ||
	fail "$wire bytes crossed ssh for $data bytes of data in a 64 MiB LV"
ok "LV -> LVM host: $wire bytes crossed ssh (both hosts, both ways) for $data bytes of data in a thick 64 MiB LV"
ldefined lvmb lv1 || fail "lv1 not defined on lvmb"
[ "$(lvsize lvmb lv1-vda.raw)" = $((64 * MiB)) ] || fail "the new LV is $(lvsize lvmb lv1-vda.raw) bytes, not 64 MiB"
[ "$(lvsha lvmb lv1-vda.raw)" = "$src" ] || fail "lv1 on lvmb differs from the source (holes not zero?)"
onlvm lvmb virsh -q -c qemu:///system dumpxml lv1 | grep_q "<source dev='/dev/vg0/lv1-vda.raw'" ||
	fail "lv1 on lvmb does not use its new LV as a block disk"
[ "$(onlvm lvma virsh -q -c qemu:///system list --all --name | grep -cx lv1)" = 1 ] || fail "source lv1 changed"
[ "$(lvsha lvma lv1-vda)" = "$src" ] || fail "the source LV changed"
ok "LV -> LVM host: LV lv1-vda.raw of exactly 64 MiB, equal to the source, holes zero over 0xAA, defined as a block disk"

# 2. LV guest -> file-pool host.
cp -r "$MNT/lvma/lv1" "$MNT/hostb/" || fail "cp -r lvma/lv1 hostb/"
[ "$(host_sha256 hostb raw /var/lib/libvirt/images/lv1-vda.raw)" = "$src" ] || fail "lv1 on hostb differs"
alloc=$(onhost hostb stat -c %b /var/lib/libvirt/images/lv1-vda.raw </dev/null)
[ "$alloc" -lt $((20 * 2048)) ] || fail "lv1's file on hostb is not sparse: $alloc blocks"
ok "LV -> file pool: a sparse file ($((alloc / 2)) KiB allocated) equal to the LV"

# 3. File guest -> LVM host: an odd size (70 MiB + 5 KiB), so the LV ends
#    on a whole extent past it; that tail reads zeros too.
size=$((70 * MiB + 5120))
onhost hosta sh -c '
	set -e
	f=/var/lib/libvirt/images/fil1-vda.raw
	truncate -s $1 $f
	head -c 2M /dev/urandom | dd of=$f bs=1M seek=10 conv=notrunc status=none
	head -c 5120 /dev/urandom | dd of=$f bs=1 seek=$((70 * 1048576)) conv=notrunc status=none
	virsh -q -c qemu:///system pool-refresh default >/dev/null' sh $size </dev/null
# type qemu: the LVM hosts have no KVM
guest_xml fil1 qemu file /var/lib/libvirt/images/fil1-vda.raw |
	onhost hosta virsh -q -c qemu:///system define /dev/stdin >/dev/null
fsrc=$(host_sha256 hosta raw /var/lib/libvirt/images/fil1-vda.raw)
cp -r "$MNT/hosta/fil1" "$MNT/lvmb/" || fail "cp -r hosta/fil1 lvmb/"
ldefined lvmb fil1 || fail "fil1 not defined on lvmb"
lsz=$(lvsize lvmb fil1-vda.raw)
[ "$lsz" -ge "$size" ] && [ "$lsz" -lt $((size + 4 * MiB)) ] || fail "fil1's LV is $lsz bytes for a $size-byte disk"
[ "$(lvsha lvmb fil1-vda.raw $size)" = "$fsrc" ] || fail "fil1 on lvmb differs from the source"
tail=$(onlvm lvmb sh -c 'tail -c +$(($2 + 1)) "$1" | tr -d "\0" | wc -c' sh /dev/vg0/fil1-vda.raw $size)
[ "$tail" = 0 ] || fail "the LV's tail past the disk holds $tail non-zero bytes"
ok "file -> LVM host: LV of $lsz bytes for a $size-byte disk, equal, the tail zero"

# 4. An LV of that name exists already: EEXIST, untouched.
onlvm lvmb virsh -q -c qemu:///system vol-create-as lvm tkn-vda.raw 8M >/dev/null
onlvm lvmb sh -c 'printf precious | dd of=/dev/vg0/tkn-vda.raw conv=notrunc status=none'
keep=$(lvsha lvmb tkn-vda.raw)
mkdir "$MNT/lvmb/tkn"
expect_fail "File exists" cp "$MNT/lvma/lv1/vda.raw" "$MNT/lvmb/tkn/"
[ "$(lvsha lvmb tkn-vda.raw)" = "$keep" ] || fail "the existing LV changed"
rmdir "$MNT/lvmb/tkn"
ok "an existing LV of the name: EEXIST, its bytes unchanged"

# 5. A guest that cannot fit: ENOSPC before any LV is created (rsync sends
#    domain.xml first); df on the host folder shows the volume group.
# big1's LV on lvma: 8 MiB more than lvmb has free.
bfree=$(onlvm lvmb vgs --noheadings --units b -o vg_free vg0 | tr -d ' B')
onlvm lvma lvcreate -q -y -L $((bfree + 8 * MiB))b -n big1-vda vg0 >/dev/null ||
	fail "test setup: no room for big1 on lvma"
onlvm lvma virsh -q -c qemu:///system pool-refresh lvm >/dev/null
guest_xml big1 qemu block /dev/vg0/big1-vda | lvm_define lvma
bigsize=$(lvsize lvma big1-vda)
read -r total free < <(stat -f -c '%b %a' "$MNT/lvmb" | awk '{print $1, $2}')
bs=$(stat -f -c %S "$MNT/lvmb")
vg=$(onlvm lvmb vgs --noheadings --units b -o vg_size,vg_free vg0 | tr -d 'B')
read -r vgsize vgfree <<<"$vg"
[ $((total * bs)) = "$vgsize" ] || fail "df size $((total * bs)) is not the VG's $vgsize"
[ $((free * bs)) = "$vgfree" ] || fail "df free $((free * bs)) is not the VG's $vgfree"
ok "df on lvmb/ shows the volume group: $vgsize bytes, $vgfree free"
[ "$bigsize" -gt "$vgfree" ] || fail "test setup: big1 ($bigsize) fits in $vgfree"
before=$(lvs_of lvmb)
log_mark
rc=0
out=$(rsync -r "$MNT/lvma/big1" "$MNT/lvmb/" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a guest larger than the VG was copied"
case "$out" in *"No space left on device"*) ;; *) fail "rsync said '$out'" ;; esac
[ "$(lvs_of lvmb)" = "$before" ] || fail "an LV was created: $(lvs_of lvmb)"
log_grep "lvmb/big1/.*create: ENOSPC: 1 disk not copied yet take $bigsize bytes (their sizes); pool lvm has [0-9]* bytes free" >/dev/null ||
	fail "no ENOSPC log line with the numbers: $(log_since_mark | grep big1 | tail -2)"
rm -r "$MNT/lvmb/big1"
ok "a guest larger than the VG: ENOSPC before any LV, the numbers in the log"

# 6. The same guest by cp -r, in whatever order cp takes the files: ENOSPC
#    before the LV is made (domain.xml first) or when the LV must grow past
#    the free space (the disk first); rm -r leaves no LV behind.
log_mark
rc=0
out=$(cp -r "$MNT/lvma/big1" "$MNT/lvmb/" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "cp -r of a guest larger than the VG succeeded"
case "$out" in *"No space left on device"*) ;; *) fail "cp said '$out'" ;; esac
log_grep "lvmb/big1/.*ENOSPC: .*pool lvm has [0-9]* bytes free" >/dev/null ||
	fail "no ENOSPC log line: $(log_since_mark | grep big1 | tail -2)"
ldefined lvmb big1 && fail "big1 defined after ENOSPC"
rm -r "$MNT/lvmb/big1" || fail "rm -r after ENOSPC"
[ "$(lvs_of lvmb)" = "$before" ] || fail "LVs left after rm -r: $(lvs_of lvmb)"
ok "a guest larger than the VG by cp -r: ENOSPC ($(log_grep -a "lvmb/big1/.*ENOSPC" | tail -1 | sed 's/.*ENOSPC: //')); rm -r leaves no LV"
