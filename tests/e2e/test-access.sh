#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Permissions: the kernel enforces modes and owners (default_permissions),
# so an allow_other mount gives other users nothing unless uid=, gid= and
# umask= share it on purpose; chmod and chown never widen access; the state
# directory is private; a guest's VNC password survives a copy and never
# reaches the log.
. "$(dirname "$0")/lib.sh"

EXTRA=()
# Mount points other users can reach ($WORK is root's alone).
PUB=$(mktemp -d /var/tmp/kvmmigfs-access.XXXXXX)
chmod 755 "$PUB"
cleanup() {
	for m in "${EXTRA[@]}"; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :
	done
	rmdir "$PUB"/* "$PUB" 2>/dev/null || :
	clean_host hostb
}
trap cleanup EXIT

VIRSH=(virsh -q -c qemu:///system)
GRP=4242 # a group nobody belongs to unless setpriv adds it
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
MEMBER=(setpriv --reuid=65534 --regid=65534 --groups=$GRP)

# modes PATH...: "MODE UID GID" of each path, space-separated.
modes() {
	stat -c '%a %u %g' "$@" | tr '\n' ' ' | sed 's/ $//'
}

# volumes HOST: the default pool's volume names, one line (virsh must work).
volumes() {
	local out
	out=$(onhost "$1" "${VIRSH[@]}" vol-list default </dev/null) ||
		fail "vol-list on $1 failed"
	echo "$out" | awk 'NF {print $1}' | sort | tr '\n' ' '
}

# mount_as LOG OPTIONS...: another mount of the test hosts; sets M.
mount_as() {
	local log=$1
	shift
	M=$(mktemp -d "$PUB/mnt.XXXXXX")
	"$TOP/kvmmigfs" -f -o hosts="$STATE/hosts.conf" -o zeroscan="$ZEROSCAN" \
		-o state="$KMF_STATE" "$@" "$M" 2>>"$log" &
	for _ in $(seq 100); do
		mountpoint -q "$M" && break
		sleep 0.1
	done
	mountpoint -q "$M" || fail "mount with $* did not come up: $(cat "$log")"
	EXTRA+=("$M")
}

# 1. The runner's mount (root, no options): everything is root's, and
# the modes say who may write.
want="500 0 0 700 0 0 500 0 0 400 0 0 400 0 0"
got=$(modes "$MNT" "$MNT/hostb" "$MNT/hosta/web1" "$MNT/hosta/web1/domain.xml" \
	"$MNT/hosta/web1/vda.raw")
[ "$got" = "$want" ] || fail "modes of root, host, guest, domain.xml, disk: $got, wanted $want"
ok "root 0500, host 0700, guest 0500, domain.xml and disks 0400, all root's"

mkdir "$MNT/hostb/acc0"
exec 3>"$MNT/hostb/acc0/vda.raw"
printf 'x' >&3
got=$(modes "$MNT/hostb/acc0" "$MNT/hostb/acc0/vda.raw")
[ "$got" = "700 0 0 600 0 0" ] || fail "staging folder and staged file: $got"
ok "staging folder 0700, staged file 0600"
# chmod and chown are accepted (cp -a, rsync -a) and change nothing.
chmod 0777 "$MNT/hostb/acc0" "$MNT/hostb/acc0/vda.raw" || fail "chmod refused"
chown 65534:65534 "$MNT/hostb/acc0/vda.raw" || fail "chown refused"
got=$(modes "$MNT/hostb/acc0" "$MNT/hostb/acc0/vda.raw")
[ "$got" = "700 0 0 600 0 0" ] || fail "chmod/chown widened access: $got"
ok "chmod 0777 and chown nobody accepted, modes and owners unchanged"
# The state directory and its records: the owner's alone.
got=$(stat -c %a "$KMF_STATE" "$KMF_STATE/hostb" "$KMF_STATE/hostb/acc0" | tr '\n' ' ')
[ "$got" = "700 700 600 " ] || fail "state dir, host dir, record: $got"
ok "state directory and its host folder 0700, the record 0600"
exec 3>&-
rm -r "$MNT/hostb/acc0"

# 2. allow_other, nothing shared: another user is refused everything and
# nothing reaches a host.
mount_as "$WORK/other.log" -o allow_other -o cache=0
OTHER=$M
mkdir "$OTHER/hostb/acc1"
cp "$OTHER/hosta/web1/domain.xml" "$WORK/web1.xml"
printf 'data' >"$OTHER/hostb/acc1/vda.raw.part"
before="$(volumes hosta)| $(volumes hostb)"
# allow_other lets nobody reach the mount: what stops it is the modes.
[ "$("${NOBODY[@]}" stat -c %a "$OTHER")" = 500 ] || fail "nobody cannot stat the mount"
ok "nobody reaches the allow_other mount (stat: 0500)"
expect_fail "Permission denied" "${NOBODY[@]}" ls "$OTHER"
expect_fail "Permission denied" "${NOBODY[@]}" ls "$OTHER/hosta"
expect_fail "Permission denied" "${NOBODY[@]}" cat "$OTHER/hosta/web1/domain.xml"
expect_fail "Permission denied" "${NOBODY[@]}" head -c 1 "$OTHER/hosta/web1/vda.raw"
expect_fail "Permission denied" "${NOBODY[@]}" mkdir "$OTHER/hostb/evil"
expect_fail "Permission denied" "${NOBODY[@]}" cp /etc/hostname "$OTHER/hostb/acc1/vdb.raw"
expect_fail "Permission denied" "${NOBODY[@]}" mv "$OTHER/hostb/acc1/vda.raw.part" \
	"$OTHER/hostb/acc1/vda.raw"
expect_fail "Permission denied" "${NOBODY[@]}" rm -r "$OTHER/hostb/acc1"
after="$(volumes hosta)| $(volumes hostb)"
[ "$before" = "$after" ] || fail "volumes changed: before $before, after $after"
[ -e "$OTHER/hostb/acc1/vda.raw.part" ] || fail "the staged file is gone"
ok "as nobody: nothing created, renamed or removed on any host ($after)"
# The owner still does everything.
mv "$OTHER/hostb/acc1/vda.raw.part" "$OTHER/hostb/acc1/vda.raw"
rm -r "$OTHER/hostb/acc1"
left=$(volumes hostb)
[ -z "$left" ] || fail "rm -r as the owner left volumes: $left"
ok "the owner renames and removes as before"

# 3. gid= and umask=027: the group reads, nobody else does, only the owner
# writes.
mount_as "$WORK/group.log" -o allow_other,gid=$GRP,umask=027,cache=0
GROUPMNT=$M
got=$(modes "$GROUPMNT" "$GROUPMNT/hostb" "$GROUPMNT/hosta/web1" \
	"$GROUPMNT/hosta/web1/domain.xml")
[ "$got" = "550 0 $GRP 750 0 $GRP 550 0 $GRP 440 0 $GRP" ] || fail "gid=,umask=027 modes: $got"
ok "gid=$GRP,umask=027: 0550/0750/0550/0440, group $GRP"
"${MEMBER[@]}" ls "$GROUPMNT/hosta" | grep_q -x web1 || fail "a group member cannot list hosta"
[ "$("${MEMBER[@]}" sha256sum <"$GROUPMNT/hosta/web1/domain.xml")" = "$(sha256sum <"$WORK/web1.xml")" ] ||
	fail "a group member reads another domain.xml"
n=$("${MEMBER[@]}" head -c 65536 "$GROUPMNT/hosta/web1/vda.raw" | wc -c)
[ "$n" = 65536 ] || fail "a group member read $n bytes of vda.raw"
ok "a member of group $GRP lists, reads domain.xml and the disk"
before=$(volumes hostb)
expect_fail "Permission denied" "${MEMBER[@]}" mkdir "$GROUPMNT/hostb/evil"
expect_fail "Permission denied" "${NOBODY[@]}" ls "$GROUPMNT/hosta"
expect_fail "Permission denied" "${NOBODY[@]}" cat "$GROUPMNT/hosta/web1/domain.xml"
[ "$(volumes hostb)" = "$before" ] || fail "volumes changed on hostb"
ok "the member cannot write, a non-member cannot read"

# umask=007 grants the group writing; a name works for gid=.
getent group nogroup >/dev/null || fail "no group nogroup here"
mount_as "$WORK/group2.log" -o allow_other,gid=nogroup,umask=007,cache=0
[ "$(stat -c '%a %g' "$M/hostb")" = "770 65534" ] ||
	fail "gid=nogroup,umask=007: $(stat -c '%a %g' "$M/hostb")"
setpriv --reuid=65534 --regid=65534 --clear-groups mkdir "$M/hostb/grpw" ||
	fail "umask=007: the group cannot open a staging folder"
rmdir "$M/hostb/grpw"
ok "gid=nogroup,umask=007: the group (by name) may open staging folders"
expect_fail "umask=8: not an octal mask" "$TOP/kvmmigfs" -o hosts="$STATE/hosts.conf" \
	-o umask=8 "$WORK"
expect_fail "gid=no-such-group-kmf: no such group" "$TOP/kvmmigfs" \
	-o hosts="$STATE/hosts.conf" -o gid=no-such-group-kmf "$WORK"

# 4. A guest with a VNC password: cp -a through a mount with debug logs;
# the target keeps the password, no log line shows it.
PW=K$(printf %07d $((RANDOM * 7 % 10000000)))
onhost hosta sh -c 'truncate -s 4M /var/lib/libvirt/images/vnc1-vda.raw &&
	printf "vnc1" | dd of=/var/lib/libvirt/images/vnc1-vda.raw conv=notrunc 2>/dev/null' </dev/null
guest_xml vnc1 "$(virt_type)" file /var/lib/libvirt/images/vnc1-vda.raw |
	sed "s|</devices>|<graphics type='vnc' port='-1' autoport='yes' passwd='$PW'/></devices>|" |
	onhost hosta "${VIRSH[@]}" define /dev/stdin >/dev/null
trap 'onhost hosta "${VIRSH[@]}" undefine vnc1 --remove-all-storage </dev/null >/dev/null 2>&1; cleanup' EXIT
onhost hosta "${VIRSH[@]}" pool-refresh default </dev/null >/dev/null
mount_as "$WORK/debug.log" -d -o cache=0
cp -a "$M/hosta/vnc1" "$M/hostb/"
xml=$(onhost hostb "${VIRSH[@]}" dumpxml --inactive --security-info vnc1 </dev/null) ||
	fail "vnc1 not defined on hostb"
echo "$xml" | grep_q "passwd='$PW'" || fail "the VNC password was lost: $(echo "$xml" | grep graphics)"
ok "cp -a: vnc1 defined on hostb with its VNC password"
grep_q "hostb/vnc1" "$WORK/debug.log" || fail "the debug log says nothing of the copy"
if grep -F -e "$PW" "$WORK/debug.log" "$MNTLOG" "$WORK"/*.log; then
	fail "the password is in a log"
fi
ok "the password is in no log (debug log of the copy: $(wc -l <"$WORK/debug.log") lines)"
