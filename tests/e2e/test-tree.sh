#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The tree: hosts, guests (running or not), domain.xml and one file per
# streamable disk; what is left out is logged with the reason.
. "$(dirname "$0")/lib.sh"

[ "$(ls "$MNT" | tr '\n' ' ')" = "hosta hostb " ] ||
	fail "root lists '$(ls "$MNT")', wanted hosta hostb"
ok "root lists the configured hosts"

want=$(onhost hosta virsh -q -c qemu:///system list --all --name | sed '/^$/d' | sort)
got=$(ls "$MNT/hosta" | sort)
[ "$got" = "$want" ] || fail "hosta lists '$got', its libvirt has '$want'"
for g in web1 blk1 odd1 run1; do
	echo "$got" | grep_q -x "$g" || fail "guest $g missing from hosta"
done
ok "hosta lists every defined guest, running or shut off: $(echo $got)"

[ -z "$(ls "$MNT/hostb")" ] || fail "hostb should be empty: $(ls "$MNT/hostb")"
ok "hostb (no guests) is an empty folder"

check_files() {
	local guest=$1 want=$2 got
	got=$(ls "$MNT/hosta/$guest" | tr '\n' ' ')
	[ "$got" = "$want" ] || fail "$guest lists '$got', wanted '$want'"
	ok "$guest lists: $got"
}
check_files web1 "domain.xml vda.raw vdb.qcow2 "
check_files blk1 "domain.xml vda.raw "
check_files odd1 "domain.xml vda.raw "
check_files run1 "domain.xml vda.raw "

# Every file the host's libvirt lists is a file of the mount, named DEV.FMT.
guest_disks hosta web1
[ "$NDISKS" = 2 ] || fail "web1 should have 2 listed disks on the host: $DISKS"
n=0
while read -r dev fmt path <&3; do
	[ -f "$MNT/hosta/web1/$dev.$fmt" ] || fail "web1: $dev.$fmt ($path) missing"
	n=$((n + 1))
done 3<<<"$DISKS"
[ "$n" = 2 ] || fail "web1: checked $n files of its 2 disks"
ok "web1's files match its disks on the host"

# What is not listed is logged with the reason.
grep -q "hosta/odd1/vdb: not listed: network disks" "$MNTLOG" ||
	fail "no log line for odd1's network disk: $(grep odd1 "$MNTLOG")"
grep -q "hosta/odd1/sdb: not listed: empty removable drive" "$MNTLOG" ||
	fail "no log line for odd1's empty CD-ROM"
grep -q "hosta/web1/sda: not listed: removable media" "$MNTLOG" ||
	fail "no log line for web1's CD-ROM"
ok "left-out disks are logged with the reason"

# domain.xml is the host's inactive, migratable XML, plus the size of each
# listed disk in <metadata> (for the new host to check copies against).
onhost hosta virsh -q -c qemu:///system dumpxml --inactive --migratable web1 >"$WORK/host.xml"
python3 - "$WORK/host.xml" "$MNT/hosta/web1" <<'PY' || fail "domain.xml is not the host's XML plus disk sizes"
import os, sys
import xml.etree.ElementTree as ET
NS = "https://kvmmigfs.invalid/xmlns/disks/1"
host = ET.parse(sys.argv[1]).getroot()
served = ET.parse(os.path.join(sys.argv[2], "domain.xml")).getroot()
meta = served.find("metadata")
ours = meta.find("{%s}disks" % NS)
sizes = {d.get("dev"): int(d.get("size")) for d in ours}
assert sizes == {"vda": os.path.getsize(sys.argv[2] + "/vda.raw"),
                 "vdb": os.path.getsize(sys.argv[2] + "/vdb.qcow2")}, sizes
meta.remove(ours)
if len(meta) == 0:
    served.remove(meta)
c = lambda e: ET.canonicalize(ET.tostring(e), strip_text=True)
assert c(host) == c(served), "XML differs beyond the sizes"
print("  ok: sizes in metadata:", sizes)
PY
[ "$(stat -c %s "$MNT/hosta/web1/domain.xml")" = "$(wc -c <"$MNT/hosta/web1/domain.xml")" ] ||
	fail "domain.xml st_size is not the XML's length"
ok "domain.xml is the inactive migratable XML with the disk sizes, st_size exact"

# Names that do not exist.
expect_fail "No such file or directory" stat "$MNT/nohost"
expect_fail "No such file or directory" stat "$MNT/hosta/noguest"
expect_fail "No such file or directory" stat "$MNT/hosta/web1/vdz.raw"
expect_fail "No such file or directory" stat "$MNT/hosta/web1/vda.qcow2"
expect_fail "No such file or directory" cat "$MNT/hosta/web1/sda.raw"
expect_fail "Not a directory" ls "$MNT/hosta/web1/vda.raw/x"

# An existing guest's files are read-only.
expect_fail "Permission denied" sh -c "echo x >> '$MNT/hosta/web1/domain.xml'"
expect_fail "Permission denied" sh -c "echo x > '$MNT/hosta/web1/vda.raw'"

# df on a host folder shows its pool's size and free space.
pool=$(onhost hosta virsh -q -c qemu:///system pool-dumpxml default)
cap=$(echo "$pool" | python3 -c 'import sys,xml.etree.ElementTree as E; print(E.parse(sys.stdin).getroot().find("capacity").text)')
got=$(stat -f -c '%b*%S' "$MNT/hosta" | bc)
[ "$got" = "$((cap / 4096 * 4096))" ] || fail "df size $got, pool capacity $cap"
[ "$(stat -f -c %a "$MNT/hosta")" -gt 0 ] || fail "df shows no free space on hosta"
ok "df of a host folder shows its pool: $got bytes"
