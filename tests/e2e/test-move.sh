#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Moves of shut-off guests: mv and gio move of a guest folder onto another
# host move the guest byte for byte, holes kept, under its UUID; the source
# is undefined and the volumes it alone used deleted (a backing file, a
# disk another guest names and CD-ROM media stay; -o keep_source keeps them
# all); mv inside a host renames a shut-off guest and refuses a running one.
. "$(dirname "$0")/lib.sh"
trap '[ -z "${NEWMNT:-}" ] || unmount_extra; clean_host hostb; clean_mv1' EXIT

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
MiB=1048576

# Whatever this test left on hosta goes (its guests and volumes only).
clean_mv1() {
	(
		set +e
		for g in mv1 keeper1; do
			onhost hosta "${VIRSH[@]}" undefine "$g" </dev/null >/dev/null 2>&1
		done
		for v in mv1-vda.raw mv1-vdb.qcow2 mv1-vdc.raw mv1-base.raw shared-vdc.raw mv1.iso; do
			onhost hosta "${VIRSH[@]}" vol-delete --pool default "$v" </dev/null >/dev/null 2>&1
		done
		exit 0
	)
}

# mv1: a sparse raw vda (data at 0 and 40 MiB, allocated zeros at 20-24
# MiB), a qcow2 vdb over a raw backing file, a raw vdc that keeper1 names
# too, and a CD-ROM.
onhost hosta sh -c '
set -e
cd '"$IMG"'
truncate -s 64M mv1-vda.raw
head -c 1M /dev/urandom | dd of=mv1-vda.raw conv=notrunc status=none
dd if=/dev/zero of=mv1-vda.raw bs=1M seek=20 count=4 conv=notrunc status=none
head -c 2M /dev/urandom | dd of=mv1-vda.raw bs=1M seek=40 conv=notrunc status=none
truncate -s 32M mv1-base.raw
head -c 4M /dev/urandom | dd of=mv1-base.raw conv=notrunc status=none
qemu-img create -q -f qcow2 -b mv1-base.raw -F raw mv1-vdb.qcow2
head -c 1M /dev/urandom >/tmp/chunk
qemu-io -f qcow2 -c "write -q -s /tmp/chunk 8M 1M" mv1-vdb.qcow2
rm /tmp/chunk
truncate -s 16M shared-vdc.raw
head -c 1M /dev/urandom | dd of=shared-vdc.raw conv=notrunc status=none
head -c 64K /dev/urandom >mv1.iso
sync' </dev/null
UUID=$(cat /proc/sys/kernel/random/uuid)
disk() { # TYPE DEV PATH
	echo "<disk type='file' device='disk'><driver name='qemu' type='$1'/><source file='$IMG/$3'/><target dev='$2' bus='virtio'/></disk>"
}
cat >"$WORK/mv1.xml" <<EOF
<domain type='$(virt_type)'><name>mv1</name><uuid>$UUID</uuid>
<memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
$(disk raw vda mv1-vda.raw) $(disk qcow2 vdb mv1-vdb.qcow2) $(disk raw vdc shared-vdc.raw)
<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='$IMG/mv1.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>
</devices></domain>
EOF
onhost hosta "${VIRSH[@]}" define /dev/stdin <"$WORK/mv1.xml" >/dev/null
guest_xml keeper1 "$(virt_type)" file "$IMG/shared-vdc.raw" |
	onhost hosta "${VIRSH[@]}" define /dev/stdin >/dev/null
onhost hosta "${VIRSH[@]}" pool-refresh default </dev/null >/dev/null

declare -A sha
for d in "vda raw mv1-vda.raw" "vdb qcow2 mv1-vdb.qcow2" "vdc raw shared-vdc.raw"; do
	set -- $d
	sha[$1]=$(host_sha256 hosta "$2" "$IMG/$3" </dev/null)
done
wait_until 10 listed "$MNT/hosta" mv1

# check_moved LABEL HOST NAME: NAME on HOST is mv1, byte for byte, with
# its UUID, in new volumes NAME-DEV.FMT; vda's allocated zeros are a hole.
check_moved() {
	local label=$1 host=$2 name=$3 xml n=0
	xml=$(onhost "$host" "${VIRSH[@]}" dumpxml --inactive "$name" </dev/null) ||
		fail "$label: $name is not defined on $host"
	echo "$xml" | grep_q "<uuid>$UUID</uuid>" || fail "$label: $name lost its UUID $UUID"
	while read -r dev fmt path <&3; do
		[ "$path" = "$IMG/$name-$dev.$fmt" ] || fail "$label: $dev points at $path"
		[ "$(host_sha256 "$host" "$fmt" "$path" </dev/null)" = "${sha[$dev]}" ] ||
			fail "$label: $dev differs from mv1's"
		n=$((n + 1))
	done 3< <(echo "$xml" | "$TOP/tests/listdisks")
	[ "$n" = 3 ] || fail "$label: $n disks on $host, not 3"
	onhost "$host" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
d = os.lseek(fd, 20 << 20, os.SEEK_DATA)
assert d >= 24 << 20, "allocated zeros at 20-24 MiB became data at %d" % d
assert os.fstat(fd).st_size == 64 << 20, "size"' "$IMG/$name-vda.raw" </dev/null ||
		fail "$label: vda.raw is not sparse where mv1's was zero"
	ok "$label: $name on $host has mv1's UUID and its 3 disks byte for byte, holes kept"
}

# 1. mv onto hostb.
log_mark
mv "$MNT/hosta/mv1" "$MNT/hostb/" || fail "mv hosta/mv1 hostb/"
check_moved "mv" hostb mv1
defined hosta mv1 && fail "mv: mv1 is still defined on hosta"
volumes hosta
for v in mv1-vda.raw mv1-vdb.qcow2; do
	case " $VOLS " in *" $v "*) fail "mv: $v stays on hosta: $VOLS" ;; esac
done
for v in mv1-base.raw shared-vdc.raw mv1.iso; do
	case " $VOLS " in *" $v "*) ;; *) fail "mv: $v was deleted on hosta: $VOLS" ;; esac
done
defined hosta keeper1 || fail "mv: keeper1 went"
ok "mv: hosta has no mv1; its volumes vda, vdb deleted; backing file, shared vdc, CD-ROM image kept"
log_grep -F "hosta/mv1 -> hostb/mv1: hosta:$IMG/shared-vdc.raw stays: another guest or volume uses it" >/dev/null ||
	fail "no log line for the shared disk: $(log_since_mark | tail -5)"
log_grep -F "hosta/mv1 -> hostb/mv1: moved in " >/dev/null || fail "no 'moved' log line"
[ ! -e "$KMF_STATE/hostb/mv1" ] || fail "the move's record stays: $(cat "$KMF_STATE/hostb/mv1")"
cat "$MNT/.status.json" >"$WORK/st1.json"
[ "$(status_field "$WORK/st1.json" move hosta mv1 - result)" = ok ] &&
	[ "$(status_field "$WORK/st1.json" move hosta mv1 - done)" -gt 0 ] ||
	fail "no move line ended ok in .status: $(cat "$WORK/st1.json")"
[ "$(status_field "$WORK/st1.json" verify hostb mv1 vda.raw result)" = ok ] ||
	fail "the moved vda was not verified: $(cat "$WORK/st1.json")"
"$TOP/tools/kvmmigfs-status" "$MNT" hosta/mv1 >"$WORK/ks.out" || fail "kvmmigfs-status hosta/mv1"
grep_q -E "^move +hosta/mv1 .* ok$" "$WORK/ks.out" || fail "kvmmigfs-status shows no move line: $(cat "$WORK/ks.out")"
ok "mv: logged, verified, and a move line in MOUNT/.status (kvmmigfs-status shows it)"

# 2. gio move back onto hosta.
wait_until 10 listed "$MNT/hostb" mv1
gio move "$MNT/hostb/mv1" "$MNT/hosta/" || fail "gio move hostb/mv1 hosta/"
check_moved "gio move" hosta mv1
defined hostb mv1 && fail "gio move: mv1 is still defined on hostb"
no_volumes hostb || fail "gio move: hostb keeps volumes: $VOLS"
ok "gio move: back on hosta; hostb has nothing left"

# 3. -o keep_source, under another name.
mount_extra -o keep_source
wait_until 10 listed "$NEWMNT/hosta" mv1
mv "$NEWMNT/hosta/mv1" "$NEWMNT/hostb/mv2" || fail "mv hosta/mv1 hostb/mv2 (keep_source)"
check_moved "keep_source" hostb mv2
defined hosta mv1 && fail "keep_source: mv1 is still defined on hosta"
volumes hosta
for v in mv1-vda.raw mv1-vdb.qcow2 mv1-vdc.raw; do
	case " $VOLS " in *" $v "*) ;; *) fail "keep_source: $v was deleted on hosta: $VOLS" ;; esac
done
ok "keep_source: moved as mv2, mv1's volumes stay on hosta"
unmount_extra
NEWMNT=

# 4. Inside one host: a shut-off guest is renamed, a running one is not.
wait_until 10 listed "$MNT/hostb" mv2
mv "$MNT/hostb/mv2" "$MNT/hostb/mv3" || fail "mv hostb/mv2 hostb/mv3"
defined hostb mv3 || fail "rename: mv3 not defined"
defined hostb mv2 && fail "rename: mv2 still defined"
wait_until 10 listed "$MNT/hostb" mv3
ok "mv hostb/mv2 hostb/mv3 renames the guest"
expect_fail "Device or resource busy" mv "$MNT/hosta/run1" "$MNT/hosta/run9"
defined hosta run1 || fail "run1 went"
wait_until 10 listed "$MNT/hostb" mv3
expect_fail "File exists" mv -T "$MNT/hosta/web1" "$MNT/hostb/mv3"
defined hosta web1 || fail "web1 went"
expect_fail "Invalid argument" python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    e = ctypes.get_errno(); sys.exit(os.strerror(e))' "$MNT/hosta/web1" "$MNT/hostb/mv3"
ok "a running guest is not renamed; a taken name and RENAME_EXCHANGE are refused"
