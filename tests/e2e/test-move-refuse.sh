#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A move the new host cannot take is refused before anything is created,
# each with its own errno and one log line naming what is missing: a name
# or UUID taken, a network or bridge missing, a host device, a saved
# state, a CPU feature missing, a pool too small.  cp -r of the same guest is refused the same way when its
# domain.xml arrives (copiers write it first): no volume is created.  Ctrl-C of mv mid-copy aborts the move: the guest stays on hosta
# as it was, hostb keeps nothing.
. "$(dirname "$0")/lib.sh"
TINYMNT=
cleanup() {
	(
		set +e
		[ -n "$TINYMNT" ] && fusermount3 -u "$TINYMNT" 2>/dev/null
		[ -n "${NEWMNT:-}" ] && unmount_extra
		nbdkit_plain hosta 2>/dev/null
		onhost hostb virsh -q -c qemu:///system pool-destroy tiny </dev/null >/dev/null 2>&1
		onhost hostb umount /var/lib/libvirt/tiny </dev/null 2>/dev/null
		onhost hosta virsh -q -c qemu:///system undefine ref1 </dev/null >/dev/null 2>&1
		onhost hosta virsh -q -c qemu:///system vol-delete --pool default ref1-vda.raw </dev/null >/dev/null 2>&1
		exit 0
	)
	clean_host hostb
}
trap cleanup EXIT

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
UUID=$(cat /proc/sys/kernel/random/uuid)

onhost hosta sh -c "truncate -s 128M $IMG/ref1-vda.raw && head -c 96M /dev/urandom |
	dd of=$IMG/ref1-vda.raw conv=notrunc status=none" </dev/null
onhost hosta "${VIRSH[@]}" pool-refresh default </dev/null >/dev/null
SHA=$(host_sha256 hosta raw "$IMG/ref1-vda.raw")

# ref1 [EXTRA_DEVICES [CPU]]: (re)define ref1 on hosta.
ref1() {
	onhost hosta "${VIRSH[@]}" define /dev/stdin >/dev/null <<EOF
<domain type='$(virt_type)'><name>ref1</name><uuid>$UUID</uuid>
<memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>${2:-}
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='$IMG/ref1-vda.raw'/><target dev='vda' bus='virtio'/></disk>${1:-}</devices></domain>
EOF
}

# refused LABEL MNT ERRTEXT LOGTEXT: mv of ref1 onto hostb through MNT fails
# with ERRTEXT, the log says LOGTEXT, and nothing changed on either host.
refused() {
	local label=$1 mnt=$2 err=$3 why=$4 before
	volumes hostb
	before=$VOLS
	log_mark "${5:-$MNTLOG}"
	expect_fail "$err" mv "$mnt/hosta/ref1" "$mnt/hostb/"
	log_grep -F "error: hosta/ref1: rename: " | grep_q -F "$why" ||
		fail "$label: the log does not say '$why': $(log_since_mark | tail -3)"
	volumes hostb
	[ "$VOLS" = "$before" ] || fail "$label: hostb's volumes changed: '$before' -> '$VOLS'"
	defined hostb ref1 && fail "$label: ref1 defined on hostb"
	[ ! -e "$mnt/hostb/ref1" ] || fail "$label: a folder hostb/ref1 is left"
	defined hosta ref1 || fail "$label: ref1 is gone from hosta"
	ok "$label: refused, the log says: $why; nothing created"
}

# cp_refused LABEL ERRTEXT WHY: cp -r of ref1 onto hostb fails with ERRTEXT
# at domain.xml, whose close the log says WHY for, and creates no volume.
cp_refused() {
	local label=$1 err=$2 why=$3 before
	volumes hostb
	before=$VOLS
	log_mark
	expect_fail "$err" cp -r "$MNT/hosta/ref1" "$MNT/hostb/"
	log_grep -F "error: hostb/ref1/domain.xml: close: " | grep_q -F "$why" ||
		fail "cp -r, $label: the log does not say '$why': $(log_since_mark | tail -3)"
	volumes hostb
	[ "$VOLS" = "$before" ] || fail "cp -r, $label: hostb's volumes changed: '$before' -> '$VOLS'"
	defined hostb ref1 && fail "cp -r, $label: ref1 defined on hostb"
	rm -r "$MNT/hostb/ref1" || fail "cp -r, $label: rm -r of the staging folder"
	ok "cp -r, $label: refused when domain.xml arrives, no volume created"
}

ref1
wait_until 10 listed "$MNT/hosta" ref1

# 1. Name and UUID taken on hostb.
guest_xml ref1 "$(virt_type)" file /nonexistent | onhost hostb "${VIRSH[@]}" define /dev/stdin >/dev/null
wait_until 10 listed "$MNT/hostb" ref1
volumes hostb
before=$VOLS
log_mark
expect_fail "File exists" mv -T "$MNT/hosta/ref1" "$MNT/hostb/ref1"
log_grep -F "hostb has a guest named ref1 already" >/dev/null || fail "name taken: no log line"
onhost hostb "${VIRSH[@]}" undefine ref1 </dev/null >/dev/null
wait_until 10 unlisted "$MNT/hostb" ref1
ok "name taken: File exists"
guest_xml twin "$(virt_type)" file /nonexistent | sed "s|<name>twin</name>|&<uuid>$UUID</uuid>|" |
	onhost hostb "${VIRSH[@]}" define /dev/stdin >/dev/null
refused "UUID taken" "$MNT" "Name not unique on network" "hostb has a guest with this guest's UUID $UUID already: twin"
cp_refused "UUID taken" "Name not unique on network" "hostb has a guest with this guest's UUID $UUID already: twin"
onhost hostb "${VIRSH[@]}" undefine twin </dev/null >/dev/null

# 2. A network hostb does not have.
ref1 "<interface type='network'><source network='prod'/><model type='virtio'/></interface>"
refused "network" "$MNT" "No such device or address" "network 'prod' not defined on hostb"
cp_refused "network" "No such device or address" "network 'prod' not defined on hostb"

# A bridge hostb does not have, a host device, a saved state.
ref1 "<interface type='bridge'><source bridge='kmfnobr0'/><model type='virtio'/></interface>"
refused "bridge" "$MNT" "No such device or address" "bridge 'kmfnobr0' not found on hostb"
ref1 "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x00' slot='0x1f' function='0x7'/></source></hostdev>"
refused "host device" "$MNT" "No such device" "the guest has a host device (hostdev), which cannot move"
ref1
onhost hosta "${VIRSH[@]}" start ref1 </dev/null >/dev/null
onhost hosta "${VIRSH[@]}" managedsave ref1 </dev/null >/dev/null
refused "saved state" "$MNT" "Device or resource busy" "the guest has a saved state on hosta"
onhost hosta "${VIRSH[@]}" managedsave-remove ref1 </dev/null >/dev/null

# 3. A CPU feature this machine lacks (so hostb's hypervisor CPU does too).
feature=
for f in amx-tile avx512-fp16 amx-bf16 avx512-vp2intersect sha-ni avx512f; do
	grep -qw "$(echo "$f" | tr - _)" /proc/cpuinfo || { feature=$f; break; }
done
[ -n "$feature" ] || fail "no CPU feature missing here to test with"
ref1 "" "<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model><feature policy='require' name='$feature'/></cpu>"
refused "CPU" "$MNT" "Exec format error" "CPU feature $feature missing on hostb"
cp_refused "CPU" "Exec format error" "CPU feature $feature missing on hostb"

# 4. A pool too small (8 MiB for 96 MiB of data).
ref1
onhost hostb sh -c 'mkdir -p /var/lib/libvirt/tiny && mount -t tmpfs -o size=8M tmpfs /var/lib/libvirt/tiny' </dev/null
onhost hostb "${VIRSH[@]}" pool-create-as tiny dir --target /var/lib/libvirt/tiny </dev/null >/dev/null
sed 's/^pool = default$/pool = tiny/' "$STATE/hosts.conf" >"$WORK/tiny.conf"
TINYMNT=$WORK/tinymnt
mkdir "$TINYMNT"
"$TOP/kvmmigfs" -f -o hosts="$WORK/tiny.conf" -o state="$KMF_STATE" -o crc="$CRCTOOL" "$TINYMNT" 2>"$WORK/tiny.log" &
wait_until 10 mountpoint -q "$TINYMNT"
refused "pool too small" "$TINYMNT" "No space left on device" "pool 'tiny' on hostb has" "$WORK/tiny.log"
no_volumes hostb tiny || fail "volumes in the tiny pool: $VOLS"
fusermount3 -u "$TINYMNT"
TINYMNT=

# 5. Ctrl-C mid-copy: hosta's nbdkit reads at 64 Mbit/s a connection, so
# the copy takes about 6 s (a mount with a long timeout, since requests
# wait their turn); mv gets SIGINT once the disk's read line shows bytes
# copied.  The move stops at its next step: the next slice of the copy, or
# the define.
nbdkit_with hosta "--filter=rate" "rate=64M"
mount_extra -o timeout=60
wait_until 10 listed "$NEWMNT/hosta" ref1
log_mark "$WORK/mount-extra.log"
copied() {
	cat "$NEWMNT/.status.json" >"$WORK/st.json"
	[ "$(status_field "$WORK/st.json" read hosta ref1 vda.raw done)" -gt 0 ] 2>/dev/null
}
ctrl_c_mv 30 copied "$NEWMNT/hosta/ref1" "$NEWMNT/hostb/"
nbdkit_plain hosta
line=$(log_grep -E "hosta/ref1: rename: EINTR: interrupted (while copying vda.raw|before the define)") ||
	fail "Ctrl-C: no log line: $(log_since_mark | tail -3)"
wait_until 10 unlisted "$NEWMNT/hostb" ref1
no_volumes hostb || fail "Ctrl-C: hostb keeps volumes: $VOLS"
defined hostb ref1 && fail "Ctrl-C: ref1 defined on hostb"
defined hosta ref1 || fail "Ctrl-C: ref1 is gone from hosta"
[ "$(host_sha256 hosta raw "$IMG/ref1-vda.raw")" = "$SHA" ] || fail "Ctrl-C: ref1's disk changed"
cat "$NEWMNT/.status.json" >"$WORK/st.json"
[ "$(status_field "$WORK/st.json" move hosta ref1 - result)" = EINTR ] ||
	fail "Ctrl-C: the move line: $(cat "$WORK/st.json")"
ok "Ctrl-C: mv ended ${secs} s after SIGINT (${line##*EINTR: }); ref1 stays on hosta as it was, hostb has nothing"
