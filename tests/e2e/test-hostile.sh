#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile names and hostile domain XML (issue matrix rows 17 and 18): every
# one is refused with EINVAL, ENAMETOOLONG or EFBIG; no command runs, no
# file outside the pool is read or written, memory and time stay bounded.
. "$(dirname "$0")/lib.sh"
trap 'clean_host hostb' EXIT

VIRSH=(virsh -q -c qemu:///system)
B=$MNT/hostb
IMG=/var/lib/libvirt/images

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$KMF_PID/status"; }
volumes hostb
base_vols=$VOLS
guests hostb
base_guests=$GUESTS

# 1. Names.  The kernel stops components over 255 bytes; kvmmigfs refuses
#    guest names it would not give libvirt, and any file name but
#    domain.xml and DEV.FORMAT, before anything reaches a host.
long300=$(printf 'g%.0s' $(seq 300))
long201=$(printf 'g%.0s' $(seq 201))
expect_fail "File name too long" mkdir "$B/$long300"
expect_fail "Invalid argument" mkdir "$B/$long201"
expect_fail "Invalid argument" mkdir "$B/$(printf 'web\xff\xfe')"
expect_fail "Invalid argument" mkdir "$B/$(printf 'a\nb')"
expect_fail "Invalid argument" mkdir "$B/a b"
# (no '/' can be in a name: the commands write into their cwd)
P=kvmmigfs-pwned-$$
expect_fail "Invalid argument" mkdir "$B/\`touch $P\`"
expect_fail "Invalid argument" mkdir "$B/\$(touch $P)"
mkdir "$B/names"
expect_fail "File name too long" touch "$B/names/$long300.raw"
expect_fail "Invalid argument" touch "$B/names/$(printf 'vd\xffa.raw')"
expect_fail "Invalid argument" touch "$B/names/-vda.raw"
expect_fail "Invalid argument" touch "$B/names/\$(touch $P).raw"
expect_fail "Invalid argument" touch "$B/names/vda\`touch $P\`.raw"
expect_fail "Invalid argument" touch "$B/names/vda;id.raw"
expect_fail "Invalid argument" touch "$B/names/.raw"
expect_fail "Operation not permitted" touch "$B/names/../escape.raw"
expect_fail "Permission denied" touch "$B/names/../../hosta/web1/x.raw"
for d in / /tmp "$(readlink "/proc/$KMF_PID/cwd")" "$PWD" "$HOME"; do
	[ ! -e "$d/$P" ] || fail "a name ran a command here: $d/$P"
done
for h in hosta hostb; do
	onhost $h sh -c 'ls -d /$1 /root/$1 /tmp/$1 2>/dev/null' sh "$P" </dev/null &&
		fail "a name ran a command on $h"
done
rmdir "$B/names"
volumes hostb
[ "$VOLS" = "$base_vols" ] || fail "a refused name left a volume: $VOLS"
ok "hostile names refused before any volume; no command ran"

# 2. XXE: an external entity naming a FIFO here.  Had the daemon opened
#    it, it would hang in open(), and the FIFO would have a reader.
log_mark
mkdir "$B/xxe"
mkfifo "$WORK/fifo"
printf '<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x SYSTEM "file://%s">]>\n<domain type="kvm"><name>xxe</name><description>&x;</description><devices/></domain>\n' \
	"$WORK/fifo" >"$WORK/xxe.xml"
expect_fail "Invalid argument" timeout 30 cp "$WORK/xxe.xml" "$B/xxe/domain.xml"
python3 - "$WORK/fifo" <<'PY' || fail "the daemon opened the entity's file"
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))
except OSError as e:
    sys.exit(0 if e.errno == errno.ENXIO else 1)
sys.exit(1)  # somebody has it open for reading
PY
log_grep "hostb/xxe/domain.xml: close: EINVAL: domain XML must not have a DOCTYPE" >/dev/null ||
	fail "no log line for the XXE"
rm -r "$B/xxe"
ok "XXE: EINVAL, the entity's file never opened"

# 3. Billion laughs (entity expansion) and a 50 MB document: refused, the
#    daemon's peak memory grows by less than 64 MiB.
hwm0=$(hwm_kib)
mkdir "$B/laughs"
python3 - >"$WORK/laughs.xml" <<'PY'
print('<?xml version="1.0"?>\n<!DOCTYPE domain [\n <!ENTITY l0 "ha">')
for i in range(1, 12):
    print(' <!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10))
print(']>\n<domain type="kvm"><name>laughs</name><description>&l11;</description><devices/></domain>')
PY
expect_fail "Invalid argument" timeout 30 cp "$WORK/laughs.xml" "$B/laughs/domain.xml"
rm -r "$B/laughs"
log_mark
mkdir "$B/huge"
python3 - >"$WORK/huge.xml" <<'PY'
import sys
w = sys.stdout.write
w('<domain type="kvm"><name>huge</name><description>')
for _ in range(50):
    w('x' * (1 << 20))
w('</description><devices/></domain>\n')
PY
expect_fail "File too large" timeout 60 cp "$WORK/huge.xml" "$B/huge/domain.xml"
log_grep "hostb/huge/domain.xml: write: EFBIG: domain.xml larger than" >/dev/null ||
	fail "no log line for the 50 MB XML: $(log_since_mark | grep huge | tail -1)"
rm -r "$B/huge"
grown=$(( $(hwm_kib) - hwm0 ))
[ "$grown" -lt $((64 * 1024)) ] || fail "the daemon's peak RSS grew by $grown KiB"
ok "billion laughs: EINVAL; 50 MB XML: EFBIG; peak RSS grew by $grown KiB"

# 4. Disk sources aimed at the host's own devices and at another guest's
#    volume: the defined guest only ever uses the new volumes; the other
#    volume is untouched; the XML alone defines nothing.
onhost hostb "${VIRSH[@]}" vol-create-as default victim.raw 1M </dev/null >/dev/null
onhost hostb sh -c "printf precious | dd of=$IMG/victim.raw conv=notrunc status=none" </dev/null
victim=$(host_sha256 hostb raw $IMG/victim.raw)
mkdir "$B/aim"
if [ -c /dev/kvm ]; then vt=kvm; else vt=qemu; fi
cat >"$WORK/aim.xml" <<XML
<domain type="$vt"><name>aim</name><memory unit="MiB">64</memory>
<os><type arch="x86_64" machine="pc">hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type="block" device="disk"><driver name="qemu" type="raw"/>
<source dev="/dev/sda"/><target dev="vda" bus="virtio"/></disk>
<disk type="file" device="disk"><driver name="qemu" type="raw"/>
<source file="$IMG/victim.raw"/><target dev="vdb" bus="virtio"/></disk>
</devices></domain>
XML
cp "$WORK/aim.xml" "$B/aim/domain.xml"
guests hostb
[ "$GUESTS" = "$base_guests" ] || fail "the XML alone defined a guest"
head -c 1M /dev/urandom >"$WORK/data.raw"
cp "$WORK/data.raw" "$B/aim/vda.raw"
guests hostb
[ "$GUESTS" = "$base_guests" ] || fail "defined with a disk missing"
cp "$WORK/data.raw" "$B/aim/vdb.raw"
xml=$(onhost hostb "${VIRSH[@]}" dumpxml aim </dev/null) || fail "aim not defined"
echo "$xml" | grep_q "/dev/sda" && fail "the defined guest uses /dev/sda"
echo "$xml" | grep_q "victim" && fail "the defined guest uses another guest's volume"
echo "$xml" | grep_q "<source file='$IMG/aim-vda.raw'" || fail "vda is not the new volume"
echo "$xml" | grep_q "<source file='$IMG/aim-vdb.raw'" || fail "vdb is not the new volume"
[ "$(host_sha256 hostb raw $IMG/victim.raw)" = "$victim" ] || fail "the other volume changed"
ok "sources at /dev/sda and another guest's volume: replaced by new volumes; that volume untouched"
onhost hostb "${VIRSH[@]}" undefine aim </dev/null >/dev/null
for v in aim-vda.raw aim-vdb.raw victim.raw; do
	onhost hostb "${VIRSH[@]}" vol-delete --pool default "$v" </dev/null >/dev/null
done
volumes hostb
[ "$VOLS" = "$base_vols" ] || fail "volumes left behind: $VOLS"
