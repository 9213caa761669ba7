#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Moves with logical volumes, on the emulated Debian hosts (lvma, lvmb:
# volume group vg0, libvirt logical pool "lvm") and the namespace hosts:
#  1. a running guest on an LV moves live to the other LVM host (a guest
#     without an OS: it boots to the BIOS and keeps running, under QEMU's
#     emulation inside the emulated host): it runs there on an LV of the
#     same size holding the same bytes; lvma has neither it nor its LV;
#  2. a shut-off guest on an LV moves offline: byte for byte, verified,
#     the source LV deleted;
#  3. a guest with a raw and a qcow2 disk on a file pool, by cp -r and by
#     mv onto an LVM host: both disks become raw LVs, byte for byte; the
#     qcow2 file keeps its name while staged (vdb.qcow2), the defined
#     guest lists it as vdb.raw, and a log line says it is stored raw.
. "$(dirname "$0")/lib.sh"

onlvm() { "$TOP/tools/lvmhosts" exec "$STATE" "$@" </dev/null; }
# lvm_define HOST: define the guest whose XML comes on stdin.
lvm_define() { "$TOP/tools/lvmhosts" exec "$STATE" "$1" virsh -q -c qemu:///system define /dev/stdin >/dev/null; }
lvs_of() {
	local out
	out=$(onlvm "$1" lvs --noheadings -o lv_name vg0) || fail "lvs on $1"
	echo "$out" | tr -d ' ' | awk 'NF' | sort | tr '\n' ' '
}
has_lv() { case " $(lvs_of "$1") " in *" $2 "*) return 0 ;; esac; return 1; }
lvsize() { onlvm "$1" blockdev --getsize64 "/dev/vg0/$2"; }
lvsha() { onlvm "$1" sh -c 'sha256sum <"$1" | cut -d" " -f1' sh "/dev/vg0/$2"; }
# ldefined HOST NAME: NAME is defined on HOST; virsh failing fails the test.
ldefined() {
	local out
	out=$(onlvm "$1" virsh -q -c qemu:///system list --all --name) || fail "$1: virsh list failed"
	printf '%s\n' "$out" | grep_q -x -- "$2"
}
lstate() { onlvm "$1" virsh -q -c qemu:///system domstate --reason "$2"; }
ls_of() { ls "$1" | tr '\n' ' '; }
VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
MiB=$((1024 * 1024))

# What this test made goes: its guests (stopped first) or staging
# folders, their LVs, and mvmix on hosta with its volumes.
cleanup() {
	set +e
	for h in lvma lvmb; do
		for g in mvlive mvoff mvmix mvmix2; do
			if ! onlvm $h "${VIRSH[@]}" list --all --name | grep_q -x $g; then
				rm -rf "${MNT:?}/$h/$g" 2>/dev/null
				continue
			fi
			onlvm $h "${VIRSH[@]}" destroy $g >/dev/null 2>&1
			onlvm $h "${VIRSH[@]}" undefine $g >/dev/null 2>&1
		done
		for v in $(lvs_of $h 2>/dev/null); do
			case $v in mv*) onlvm $h lvremove -q -y "vg0/$v" >/dev/null 2>&1 ;; esac
		done
		onlvm $h "${VIRSH[@]}" pool-refresh lvm >/dev/null 2>&1
	done
	onhost hosta "${VIRSH[@]}" undefine mvmix </dev/null >/dev/null 2>&1
	for v in mvmix-vda.raw mvmix-vdb.qcow2; do
		onhost hosta "${VIRSH[@]}" vol-delete --pool default $v </dev/null >/dev/null 2>&1
	done
}
trap cleanup EXIT

# lv_guest HOST NAME SIZE_MIB: an LV NAME-vda of SIZE_MIB (whole 4 MiB
# extents) on HOST, zero but for 4 MiB of random data at 2 MiB (the first
# sector stays zero: the BIOS finds nothing to boot), and a guest NAME of
# 32 MiB without an OS on it, type qemu (the LVM hosts have no KVM).
lv_guest() {
	onlvm "$1" "${VIRSH[@]}" vol-create-as lvm "$2-vda" "$3M" >/dev/null ||
		fail "$1: creating the LV $2-vda"
	onlvm "$1" sh -c 'set -e
		dd if=/dev/zero of="$1" bs=1M count="$2" status=none
		head -c 4M /dev/urandom | dd of="$1" bs=1M seek=2 conv=notrunc status=none
		sync' sh "/dev/vg0/$2-vda" "$3" || fail "$1: filling $2-vda"
	cat <<EOF | lvm_define "$1"
<domain type='qemu'><name>$2</name><uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>
<memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='block' device='disk'><driver name='qemu' type='raw'/>
<source dev='/dev/vg0/$2-vda'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>
EOF
}

# raw_lv_disks HOST NAME N: NAME's disks on HOST are N raw block disks,
# each an LV of vg0; their "DEV LV" into $LVDISKS.
raw_lv_disks() {
	local xml lines dev fmt path
	xml=$(onlvm "$1" "${VIRSH[@]}" dumpxml --inactive "$2") || fail "$1: no $2"
	lines=$(printf '%s\n' "$xml" | "$TOP/tests/listdisks") || fail "$1: listing $2's disks"
	[ "$(printf '%s\n' "$lines" | awk 'NF' | wc -l)" = "$3" ] ||
		fail "$1: $2 has disks '$lines', not $3"
	LVDISKS=
	while read -r dev fmt path; do
		[ "$fmt" = raw ] || fail "$1: $2's $dev is $fmt, not raw"
		case $path in /dev/vg0/?*) ;; *) fail "$1: $2's $dev is $path, not an LV of vg0" ;; esac
		printf '%s\n' "$xml" | grep_q "<source dev='$path'" ||
			fail "$1: $2's $dev is not a block disk"
		LVDISKS+="$dev ${path#/dev/vg0/}"$'\n'
	done <<<"$lines"
}
lv_of() { printf '%s' "$LVDISKS" | awk -v d="$1" '$1 == d { print $2 }'; }

# The LVM hosts run guests here: libvirt's QEMU driver logs a guest's
# output through virtlogd, which lvmhosts does not start (no units of
# libvirt-daemon-system there).  Started by hand, once per boot.
for h in lvma lvmb; do
	onlvm $h sh -c 'pgrep -x virtlogd >/dev/null || virtlogd -d </dev/null >/dev/null 2>&1' ||
		fail "$h: virtlogd did not start"
done

# 1. A running guest on an LV moves live from lvma to lvmb.
lv_guest lvma mvlive 8
src=$(lvsha lvma mvlive-vda)
onlvm lvma "${VIRSH[@]}" start mvlive >/dev/null || fail "mvlive does not start on lvma"
[ "$(lstate lvma mvlive)" = "running (booted)" ] || fail "mvlive on lvma: $(lstate lvma mvlive)"
ok "mvlive runs on lvma (no OS, under emulation), its disk an 8 MiB LV with 4 MiB of data"
wait_until 30 listed "$MNT/lvma" mvlive
log_mark
t0=$(now)
timeout 900 mv "$MNT/lvma/mvlive" "$MNT/lvmb/" ||
	fail "mv lvma/mvlive lvmb/: $(log_since_mark | tail -5)"
secs=$(echo "$(now) - $t0" | bc)
case $(lstate lvmb mvlive) in
"running (migrated)") ;;
*) fail "mvlive on lvmb: $(lstate lvmb mvlive)" ;;
esac
onlvm lvmb "${VIRSH[@]}" dominfo mvlive | grep_q -E "^Persistent: +yes" ||
	fail "mvlive is not persistent on lvmb"
ldefined lvma mvlive && fail "mvlive is still defined on lvma"
has_lv lvma mvlive-vda && fail "mvlive's LV stays on lvma: $(lvs_of lvma)"
raw_lv_disks lvmb mvlive 1
lv=$(lv_of vda)
[ "$lv" = mvlive-vda.raw ] || fail "mvlive's disk on lvmb is the LV $lv"
[ "$(lvsize lvmb "$lv")" = $((8 * MiB)) ] || fail "the new LV is $(lvsize lvmb "$lv") bytes, not 8 MiB"
[ "$(lvsha lvmb "$lv")" = "$src" ] || fail "mvlive's disk on lvmb differs from the source"
log_grep -F "lvma/mvlive -> lvmb/mvlive: moving the guest (running: live)" >/dev/null ||
	fail "not a live move: $(log_since_mark | grep mvlive | tail -3)"
log_grep -F "lvma/mvlive -> lvmb/mvlive: moved in " >/dev/null || fail "no 'moved' log line"
wait_until 30 listed "$MNT/lvmb" mvlive
[ "$(ls_of "$MNT/lvmb/mvlive")" = "domain.xml vda.raw " ] ||
	fail "lvmb/mvlive lists $(ls_of "$MNT/lvmb/mvlive")"
ok "live: mv took $secs s; mvlive runs on lvmb (migrated, persistent) on LV $lv of 8 MiB, equal to the source; lvma has neither it nor its LV"

# 2. A shut-off guest on an LV moves offline from lvma to lvmb.
lv_guest lvma mvoff 12
src=$(lvsha lvma mvoff-vda)
wait_until 30 listed "$MNT/lvma" mvoff
log_mark
timeout 900 mv "$MNT/lvma/mvoff" "$MNT/lvmb/" ||
	fail "mv lvma/mvoff lvmb/: $(log_since_mark | tail -5)"
ldefined lvmb mvoff || fail "mvoff is not defined on lvmb"
case $(lstate lvmb mvoff) in
"shut off"*) ;;
*) fail "mvoff on lvmb: $(lstate lvmb mvoff)" ;;
esac
ldefined lvma mvoff && fail "mvoff is still defined on lvma"
has_lv lvma mvoff-vda && fail "mvoff's LV stays on lvma: $(lvs_of lvma)"
raw_lv_disks lvmb mvoff 1
lv=$(lv_of vda)
[ "$lv" = mvoff-vda.raw ] || fail "mvoff's disk on lvmb is the LV $lv"
[ "$(lvsize lvmb "$lv")" = $((12 * MiB)) ] || fail "the new LV is $(lvsize lvmb "$lv") bytes, not 12 MiB"
[ "$(lvsha lvmb "$lv")" = "$src" ] || fail "mvoff's disk on lvmb differs from the source"
log_grep -F "lvma/mvoff -> lvmb/mvoff: moving the guest (shut off)" >/dev/null ||
	fail "not an offline move: $(log_since_mark | grep mvoff | tail -3)"
log_grep -F "lvma/mvoff -> lvmb/mvoff: moved in " >/dev/null || fail "no 'moved' log line"
cat "$MNT/.status.json" >"$WORK/st.json"
[ "$(status_field "$WORK/st.json" move lvma mvoff - result)" = ok ] ||
	fail "no move line ended ok in .status: $(cat "$WORK/st.json")"
[ "$(status_field "$WORK/st.json" verify lvmb mvoff vda.raw result)" = ok ] ||
	fail "the moved disk was not verified: $(cat "$WORK/st.json")"
ok "offline: mvoff on lvmb, LV $lv of 12 MiB equal to the source, verified; lvma has neither it nor its LV"

# 3. mvmix on hosta (file pool): vda raw, 16 MiB; vdb qcow2, 24 MiB, with
#    data in clusters here and there.  Sizes of whole extents: the LVs are
#    exactly the disks' sizes.
onhost hosta sh -c '
	set -e
	cd '"$IMG"'
	truncate -s 16M mvmix-vda.raw
	head -c 3M /dev/urandom | dd of=mvmix-vda.raw bs=1M seek=1 conv=notrunc status=none
	head -c 4321 /dev/urandom | dd of=mvmix-vda.raw bs=1 seek=$((15 * 1048576 + 77)) conv=notrunc status=none
	qemu-img create -q -f qcow2 mvmix-vdb.qcow2 24M
	head -c 2M /dev/urandom >/tmp/mvmix.chunk
	qemu-io -f qcow2 -c "write -q -s /tmp/mvmix.chunk 1M 2M" -c "write -q -s /tmp/mvmix.chunk 22M 2M" mvmix-vdb.qcow2
	rm /tmp/mvmix.chunk
	virsh -q -c qemu:///system pool-refresh default >/dev/null' </dev/null
cat <<EOF | onhost hosta "${VIRSH[@]}" define /dev/stdin >/dev/null
<domain type='qemu'><name>mvmix</name><uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>
<memory unit='MiB'>32</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$IMG/mvmix-vda.raw'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$IMG/mvmix-vdb.qcow2'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>
EOF
declare -A sha size
sha[vda]=$(host_sha256 hosta raw "$IMG/mvmix-vda.raw" </dev/null)
sha[vdb]=$(host_sha256 hosta qcow2 "$IMG/mvmix-vdb.qcow2" </dev/null)
size[vda]=$((16 * MiB)) size[vdb]=$((24 * MiB))
wait_until 10 listed "$MNT/hosta" mvmix
[ "$(ls_of "$MNT/hosta/mvmix")" = "domain.xml vda.raw vdb.qcow2 " ] ||
	fail "hosta/mvmix lists $(ls_of "$MNT/hosta/mvmix")"

# check_mix LABEL HOST NAME: NAME on HOST has mvmix's two disks as raw LVs
# of their sizes, byte for byte, and lists them as vda.raw, vdb.raw.
check_mix() {
	local label=$1 host=$2 name=$3 dev lv
	ldefined "$host" "$name" || fail "$label: $name is not defined on $host"
	raw_lv_disks "$host" "$name" 2
	for dev in vda vdb; do
		lv=$(lv_of $dev)
		[ -n "$lv" ] || fail "$label: $name on $host has no $dev"
		[ "$(lvsize "$host" "$lv")" = "${size[$dev]}" ] ||
			fail "$label: $dev's LV $lv is $(lvsize "$host" "$lv") bytes, not ${size[$dev]}"
		[ "$(lvsha "$host" "$lv")" = "${sha[$dev]}" ] ||
			fail "$label: $dev's LV $lv differs from mvmix's $dev"
	done
	wait_until 30 listed "$MNT/$host" "$name"
	[ "$(ls_of "$MNT/$host/$name")" = "domain.xml vda.raw vdb.raw " ] ||
		fail "$label: $host/$name lists $(ls_of "$MNT/$host/$name")"
	ok "$label: $name on $host has raw LVs $(lv_of vda), $(lv_of vdb) equal to mvmix's raw and qcow2 disks; lists vda.raw vdb.raw"
}

# 3a. cp -r onto lvmb.
log_mark
timeout 900 cp -r "$MNT/hosta/mvmix" "$MNT/lvmb/" ||
	fail "cp -r hosta/mvmix lvmb/: $(log_since_mark | tail -5)"
check_mix "cp -r" lvmb mvmix
log_grep -E "lvmb/mvmix/vdb\.qcow2: .*stored raw" >/dev/null ||
	fail "cp -r: no log line says vdb.qcow2 is stored raw: $(log_since_mark | grep mvmix | tail -3)"
defined hosta mvmix || fail "cp -r: mvmix went from hosta"
ok "cp -r: a log line says the qcow2 disk is stored raw; mvmix stays on hosta"

# 3b. The same by hand, into another name (a clone): the qcow2 file keeps
#     the name its writer gave it while the folder is staged, and lists as
#     vdb.raw once the guest is defined.
mkdir "$MNT/lvmb/mvmix2"
cp "$MNT/hosta/mvmix/vdb.qcow2" "$MNT/lvmb/mvmix2/" || fail "cp vdb.qcow2 into lvmb/mvmix2"
[ "$(ls_of "$MNT/lvmb/mvmix2")" = "vdb.qcow2 " ] ||
	fail "staged: lvmb/mvmix2 lists $(ls_of "$MNT/lvmb/mvmix2")"
touch -r "$MNT/hosta/mvmix/vdb.qcow2" "$MNT/lvmb/mvmix2/vdb.qcow2" ||
	fail "staged: vdb.qcow2 cannot be touched under its name"
cp "$MNT/hosta/mvmix/vda.raw" "$MNT/lvmb/mvmix2/" || fail "cp vda.raw into lvmb/mvmix2"
cp "$MNT/hosta/mvmix/domain.xml" "$MNT/lvmb/mvmix2/" || fail "cp domain.xml into lvmb/mvmix2"
check_mix "by hand" lvmb mvmix2
ok "by hand: staged, the file is vdb.qcow2 (listed, touched); defined, it is vdb.raw"

# 3c. mv (offline) onto lvma.
log_mark
timeout 900 mv "$MNT/hosta/mvmix" "$MNT/lvma/" ||
	fail "mv hosta/mvmix lvma/: $(log_since_mark | tail -5)"
check_mix "mv" lvma mvmix
log_grep -E "lvma/mvmix/vdb\.qcow2: .*stored raw" >/dev/null ||
	fail "mv: no log line says vdb.qcow2 is stored raw: $(log_since_mark | grep mvmix | tail -3)"
defined hosta mvmix && fail "mv: mvmix is still defined on hosta"
volumes hosta
for v in mvmix-vda.raw mvmix-vdb.qcow2; do
	case " $VOLS " in *" $v "*) fail "mv: $v stays on hosta: $VOLS" ;; esac
done
log_grep -F "hosta/mvmix -> lvma/mvmix: moved in " >/dev/null || fail "mv: no 'moved' log line"
ok "mv: hosta has neither mvmix nor its volumes"
