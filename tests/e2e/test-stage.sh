#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The write side beyond the plain copy: a block-device source, a clone by a
# new folder name, copying onto an existing guest, a copy killed half-way,
# XML alone, invalid XML, temporary names, and refusals on existing guests.
. "$(dirname "$0")/lib.sh"
trap 'clean_host hostb' EXIT

VIRSH=(virsh -q -c qemu:///system)
B=$MNT/hostb

volumes hostb
base_vols=$VOLS

# 1. A block-device (loop) source disk becomes a raw volume.
cp -r "$MNT/hosta/blk1" "$B/" || fail "cp -r blk1"
read -r _ _ path < <(host_disks hosta blk1)
[ "$(host_sha256 hostb raw /var/lib/libvirt/images/blk1-vda.raw)" = "$(host_sha256 hosta raw "$path")" ] ||
	fail "blk1: target differs from the loop device"
onhost hostb "${VIRSH[@]}" dumpxml blk1 </dev/null | grep_q "<source file='/var/lib/libvirt/images/blk1-vda.raw'" ||
	fail "blk1: not a file disk on hostb"
ok "block-device source: copied into a raw file volume, byte-identical"

# 2. A clone by a new folder name: new UUID and MAC addresses.
cp -r "$MNT/hosta/web1" "$B/web2" || fail "cp -r web1 web2"
defined hostb web2 || fail "web2 not defined"
a=$(onhost hosta "${VIRSH[@]}" dumpxml web1 </dev/null)
b=$(onhost hostb "${VIRSH[@]}" dumpxml web2 </dev/null)
uuid() { sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p'; }
macs() { sed -n "s|.*<mac address='\([^']*\)'.*|\1|p" | sort; }
[ "$(echo "$a" | uuid)" != "$(echo "$b" | uuid)" ] || fail "clone kept the UUID"
[ -n "$(echo "$b" | macs)" ] || fail "clone has no MAC"
[ "$(echo "$a" | macs)" != "$(echo "$b" | macs)" ] || fail "clone kept the MACs"
echo "$b" | grep_q "<name>web2</name>" || fail "clone's name"
echo "$b" | grep_q "/var/lib/libvirt/images/web2-vda.raw" || fail "clone's volume name"
ok "clone web2: new UUID $(echo "$b" | uuid), new MACs, volumes web2-*"

# 3. Copying onto an existing guest fails and leaves it untouched.
before=$(host_sha256 hostb raw /var/lib/libvirt/images/web2-vda.raw)
xml_before=$(onhost hostb "${VIRSH[@]}" dumpxml web2 </dev/null)
expect_fail "File exists" mkdir "$B/web2"
rc=0
out=$(cp -r "$MNT/hosta/web1/." "$B/web2/" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "cp into an existing guest succeeded"
echo "$out" | grep_q "Permission denied" || fail "cp into an existing guest: $out"
ok "cp into an existing guest's folder fails: Permission denied"
expect_fail "Operation not permitted" rm "$B/web2/vda.raw"
expect_fail "Operation not permitted" rmdir "$B/web2"
expect_fail "Permission denied" truncate -s 0 "$B/web2/vda.raw"
[ "$(host_sha256 hostb raw /var/lib/libvirt/images/web2-vda.raw)" = "$before" ] ||
	fail "the existing guest's disk changed"
[ "$(onhost hostb "${VIRSH[@]}" dumpxml web2 </dev/null)" = "$xml_before" ] ||
	fail "the existing guest's XML changed"
ok "the existing guest is untouched"

# 4. A volume of that name exists already: EEXIST, the volume untouched.
mkdir "$B/web3"
onhost hostb "${VIRSH[@]}" vol-create-as default web3-vda.raw 1M </dev/null >/dev/null
onhost hostb sh -c 'printf precious | dd of=/var/lib/libvirt/images/web3-vda.raw conv=notrunc status=none' </dev/null
pre=$(onhost hostb sha256sum /var/lib/libvirt/images/web3-vda.raw </dev/null)
expect_fail "File exists" cp "$MNT/hosta/web1/vda.raw" "$B/web3/"
[ "$(onhost hostb sha256sum /var/lib/libvirt/images/web3-vda.raw </dev/null)" = "$pre" ] ||
	fail "an existing volume was written"
ok "an existing volume of the same name is never touched"
rmdir "$B/web3" || fail "rmdir of an empty staging folder"
onhost hostb "${VIRSH[@]}" vol-delete --pool default web3-vda.raw </dev/null >/dev/null

# 5. A copy killed half-way defines nothing; rm -r removes its volumes.
log_mark
mkdir "$B/half"
cp "$MNT/hosta/web1/domain.xml" "$B/half/"
cp "$MNT/hosta/web1/vdb.qcow2" "$B/half/"
rc=0
python3 - "$MNT/hosta/web1/vda.raw" "$B/half/vda.raw" <<'PY' || rc=$?
import os, signal, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as s, open(dst, "wb") as d:
    d.write(s.read(64 << 20))  # a quarter of the disk
    d.flush()
    os.kill(os.getpid(), signal.SIGKILL)
PY
[ "$rc" = 137 ] || fail "the writer was not killed (exit $rc)"
# The daemon logs the killed writer once it has dealt with it.
wait_until 5 log_grep "hostb/half/vda.raw: the writer (pid [0-9]*) was killed" >/dev/null
defined hostb half && fail "a half-copied guest was defined"
ok "a writer killed half-way: nothing defined, the log says why"
ls "$B/half" | grep_q vda.raw || fail "staging folder lost its files"
rm -r "$B/half" || fail "rm -r of the staging folder"
volumes hostb
[ "$VOLS" = "$(echo $base_vols blk1-vda.raw web2-vda.raw web2-vdb.qcow2 | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
	fail "volumes left behind: $VOLS"
ok "rm -r of the staging folder deletes exactly its volumes"

# 5b. A writer interrupted that still closes its file normally (python's
#     KeyboardInterrupt): the disk is smaller than the XML says, so the
#     guest is not defined; copying the disk again completes it.  A child
#     keeps the cut-short handle open (as a release the kernel sends late
#     would): a closed handle must not hold up the next writer.
log_mark
mkdir "$B/intr"
cp "$MNT/hosta/odd1/domain.xml" "$B/intr/"
python3 - "$MNT/hosta/odd1/vda.raw" "$B/intr/vda.raw" "$WORK/holder.pid" <<'PY'
import os, sys, time
with open(sys.argv[1], "rb") as s, open(sys.argv[2], "wb") as d:
    try:
        d.write(s.read(4 << 20))
        pid = os.fork()
        if pid == 0:
            os.close(0); os.close(1); os.close(2)
            time.sleep(60)
            os._exit(0)
        open(sys.argv[3], "w").write(str(pid))
        raise KeyboardInterrupt  # as if Ctrl-C arrived here
    except KeyboardInterrupt:
        pass  # the with statement closes the file normally
PY
wait_until 5 log_grep "hostb/intr/vda.raw: 4194304 bytes of 16777216: incomplete" >/dev/null
defined hostb intr && fail "a disk cut short (closed normally) defined the guest"
ok "a copy cut short but closed normally: not defined (4 MiB of 16 MiB), logged"
cp "$MNT/hosta/odd1/vda.raw" "$B/intr/vda.raw" || fail "copying the disk again"
defined hostb intr || fail "copying the disk again did not define the guest"
ok "copying the disk again completes and defines it (the old handle still open)"
kill "$(cat "$WORK/holder.pid")"
onhost hostb "${VIRSH[@]}" undefine intr </dev/null >/dev/null
onhost hostb "${VIRSH[@]}" vol-delete --pool default intr-vda.raw </dev/null >/dev/null

# 6. domain.xml alone stays pending; the listing shows what arrived.
mkdir "$B/lonely"
cp "$MNT/hosta/web1/domain.xml" "$B/lonely/"
sleep 1
defined hostb lonely && fail "XML alone defined a guest"
[ "$(ls "$B/lonely")" = domain.xml ] || fail "staging listing: $(ls "$B/lonely")"
cmp -s "$MNT/hosta/web1/domain.xml" "$B/lonely/domain.xml" || fail "pending XML reads back wrong"
ok "domain.xml alone stays pending and reads back"
rm -r "$B/lonely"

# 7. Invalid XML: EINVAL at close (cp reports it), nothing defined.
log_mark
mkdir "$B/bad"
printf '<domain><name>x</name>' >"$WORK/bad.xml"
expect_fail "Invalid argument" cp "$WORK/bad.xml" "$B/bad/domain.xml"
log_grep "hostb/bad/domain.xml: close: EINVAL: domain XML is not well-formed" >/dev/null ||
	fail "no log line for the invalid XML"
rm "$B/bad/domain.xml"
printf '<domain><name>x</name><devices/><qemu:commandline xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"><qemu:arg value="-x"/></qemu:commandline></domain>' >"$WORK/bad.xml"
expect_fail "Invalid argument" cp "$WORK/bad.xml" "$B/bad/domain.xml"
log_grep "hostb/bad/domain.xml: close: EINVAL: <qemu:commandline>" >/dev/null ||
	fail "no log line for qemu:commandline"
defined hostb bad && fail "invalid XML defined a guest"
defined hostb x && fail "invalid XML defined a guest"
rm -r "$B/bad"
ok "invalid XML: EINVAL at close, logged, nothing defined"

# 8. Names: only DEV.FORMAT and domain.xml; bad guest names.
mkdir "$B/names"
expect_fail "Invalid argument" touch "$B/names/notes.txt"
expect_fail "Invalid argument" touch "$B/names/vda.vmdk"
expect_fail "Invalid argument" mkdir "$B/-rf"
expect_fail "Invalid argument" mkdir "$B/a;b"
expect_fail "Invalid argument" mkdir "$B/\$(id)"
expect_fail "Operation not permitted" touch "$B/loose-file"
expect_fail "Operation not permitted" mkdir "$B/names/sub"
expect_fail "Operation not permitted" mkdir "$MNT/hostc"
rmdir "$B/names"
ok "bad file and guest names refused"
volumes hostb
[ "$VOLS" = "$(echo $base_vols blk1-vda.raw web2-vda.raw web2-vdb.qcow2 | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
	fail "volumes left behind: $VOLS"

# 9. libvirt refuses the XML at define: EINVAL at the close that completed
#    the guest, libvirt's message in the log, the volumes stay until rm -r;
#    a corrected domain.xml then defines it.
log_mark
mkdir "$B/refused"
sed 's|</devices>|<bogus-device/></devices>|' "$MNT/hosta/odd1/domain.xml" >"$WORK/refused.xml"
cp "$WORK/refused.xml" "$B/refused/domain.xml"
expect_fail "Invalid argument" cp "$MNT/hosta/odd1/vda.raw" "$B/refused/"
log_grep "hostb/refused/vda.raw: close: EINVAL: defining the guest: XML document failed to validate" >/dev/null ||
	fail "no log line with libvirt's refusal: $(log_since_mark | grep refused | tail -2)"
defined hostb refused && fail "refused XML defined"
[ "$(ls "$B/refused" | tr '\n' ' ')" = "domain.xml vda.raw " ] || fail "staged files lost: $(ls "$B/refused")"
ok "XML refused by libvirt: EINVAL at close, logged, staged volume kept"
cp "$MNT/hosta/odd1/domain.xml" "$B/refused/domain.xml" || fail "rewriting domain.xml"
defined hostb refused || fail "corrected XML did not define the guest"
ok "a corrected domain.xml defines the guest"
onhost hostb "${VIRSH[@]}" undefine refused </dev/null >/dev/null
onhost hostb "${VIRSH[@]}" vol-delete --pool default refused-vda.raw </dev/null >/dev/null

# rm of a staged disk a process still has open: removed with its volume
# (no .fuse_hiddenNNNN rename, which no staging folder could hold).
mkdir "$B/busy1"
exec 4>"$B/busy1/vda.raw"
printf 'data' >&4
rm "$B/busy1/vda.raw" || fail "rm of an open staged disk"
ls -a "$B/busy1" | grep_q fuse_hidden && fail "a hidden file appeared: $(ls -a "$B/busy1")"
exec 4>&-
volumes hostb
case " $VOLS " in *" busy1-vda.raw "*) fail "its volume stayed" ;; esac
rmdir "$B/busy1" || fail "rmdir after rm"
ok "rm of an open staged disk removes it and its volume, nothing hidden"

# Leave hostb as it was.
for g in blk1 web2; do onhost hostb "${VIRSH[@]}" undefine "$g" </dev/null >/dev/null; done
for v in blk1-vda.raw web2-vda.raw web2-vdb.qcow2; do
	onhost hostb "${VIRSH[@]}" vol-delete --pool default "$v" </dev/null >/dev/null
done
