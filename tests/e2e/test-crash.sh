#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon killed (SIGKILL) mid-copy: the writer gets ENOTCONN, nothing
# lands in the directory under the mount point, no guest is defined, no
# server is left behind; the next daemon shows the staging folder again
# (from its record), and it can be removed or copied into again.
. "$(dirname "$0")/lib.sh"

VIRSH=(virsh -q -c qemu:///system)
SD=$WORK/state
trap 'set +e; nbdkit_plain hosta 2>/dev/null; for m in "$WORK"/mnt.*; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done; clean_host hostb' EXIT
volumes hostb
base_vols=$VOLS

# crash: start a mount on state $SD, copy web1 to hostb through it with the
# source slowed down, SIGKILL the daemon once a volume is being written.
crash() {
	mount_extra -o state="$SD"
	M=$NEWMNT
	# Slow enough that vda.raw (22 MiB of data) is still being written
	# when the daemon dies, and vdb.qcow2 not yet begun: a volume whose
	# identity is not yet in the record is left alone after a restart
	# (test-records.sh), which this test does not look at.
	nbdkit_with hosta --filter=rate "rate=8M"
	cp -r "$M/hosta/web1" "$M/hostb/" 2>"$WORK/cp.err" &
	local cpid=$! rc=0
	wait_until 20 grep_q -E "^disk vda\.raw f:" "$SD/hostb/web1" ||
		fail "vda.raw's volume and identity never recorded"
	sleep 0.5
	kill -KILL "$NEWMNT_PID"
	wait "$cpid" || rc=$?
	nbdkit_plain hosta
	[ "$rc" != 0 ] || fail "cp succeeded although the daemon was killed"
	# The kernel fails requests in flight with ECONNABORTED and every
	# later one with ENOTCONN.
	grep_q -E "Transport endpoint is not connected|Software caused connection abort" "$WORK/cp.err" ||
		fail "cp did not see ENOTCONN/ECONNABORTED: $(cat "$WORK/cp.err")"
	ok "daemon killed mid-copy: cp fails with $(grep -m1 -oE 'Transport endpoint is not connected|Software caused connection abort' "$WORK/cp.err")"
	fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
	[ -z "$(ls -A "$M")" ] || fail "files landed under the mount point: $(ls -A "$M")"
	defined hostb web1 && fail "web1 defined after the crash"
	volumes hostb
	case " $VOLS " in *" web1-vda.raw "*) ;; *) fail "no partial volume: $VOLS" ;; esac
	grep_q -E "^disk vda\.raw f:[0-9]+:[0-9]+:" "$SD/hostb/web1" || fail "the record lacks vda.raw: $(cat "$SD/hostb/web1")"
	# The ssh under each NBD connection dies with the daemon, and nbdkit
	# (--exit-with-parent) with it.
	for _ in $(seq 100); do
		onhost hostb pgrep -f "nbdkit.*web1-v" </dev/null >/dev/null || break
		sleep 0.1
	done
	onhost hostb pgrep -af "nbdkit.*web1-v" </dev/null && fail "an NBD server outlived the daemon"
	pgrep -f "ssh.*hosta.*web1|ssh.*hostb.*web1" && fail "an ssh outlived the daemon"
	ok "nothing under the mount point, nothing defined, no server left; the record names the partial volume"
}

# check_web1 LABEL: web1's disks on hostb equal hosta's, both of them.
check_web1() {
	local n=0 dev fmt path
	guest_disks hosta web1
	while read -r dev fmt path <&3; do
		[ "$(host_sha256 hostb "$fmt" "/var/lib/libvirt/images/web1-$dev.$fmt")" = "$(host_sha256 hosta "$fmt" "$path")" ] ||
			fail "web1 $dev differs $1"
		n=$((n + 1))
	done 3<<<"$DISKS"
	[ "$n" = 2 ] || fail "checked $n of web1's 2 disks $1"
}

# 1. Killed, restarted, removed.
crash
log_mark "$WORK/mount-extra.log"
mount_extra -o state="$SD"
[ -d "$NEWMNT/hostb/web1" ] || fail "the staging folder did not come back: $(ls "$NEWMNT/hostb")"
ls "$NEWMNT/hostb/web1" | grep_q -x vda.raw || fail "vda.raw not in the recovered folder"
log_grep "hostb/web1: staging folder recovered (left by kvmmigfs pid [0-9]*): [0-9] incomplete disks*, not defined" >/dev/null ||
	fail "no log line for the recovery: $(log_since_mark | tail -3)"
defined hostb web1 && fail "web1 defined after the restart"
expect_fail "Invalid argument" dd if=/dev/zero of="$NEWMNT/hostb/web1/vda.raw" bs=64k count=1 conv=notrunc status=none
rm -r "$NEWMNT/hostb/web1" || fail "rm -r of the recovered folder"
volumes hostb
[ "$VOLS" = "$base_vols" ] || fail "volumes left after rm -r: $VOLS"
[ ! -e "$SD/hostb/web1" ] || fail "the record outlived rm -r"
ok "after a restart the folder shows again, unfinished; rm -r deletes exactly its volumes"
cp -r "$NEWMNT/hosta/web1" "$NEWMNT/hostb/" || fail "copying again after rm -r"
defined hostb web1 || fail "the repeated copy did not define web1"
[ ! -e "$SD/hostb/web1" ] || fail "the record outlived the definition"
check_web1 "after the repeated copy"
ok "the repeated copy defines web1, equal to the source"
fusermount3 -u "$NEWMNT"
clean_host hostb

# 2. Killed, restarted, copied into again (cp -r onto the folder): the
#    disks are written whole into new volumes and the guest defined.
crash
log_mark "$WORK/mount-extra.log"
mount_extra -o state="$SD"
cp -r "$NEWMNT/hosta/web1/." "$NEWMNT/hostb/web1/" || fail "copying into the recovered folder"
defined hostb web1 || fail "copying into the recovered folder did not define web1"
log_grep "hostb/web1/vda.raw: volume web1-vda.raw created again" >/dev/null ||
	fail "no log line for the new volume"
check_web1 "after copying into the recovered folder"
ok "copying into the recovered folder writes new volumes and defines web1, equal to the source"

# 3. A record another running kvmmigfs owns is left alone.
mkdir "$NEWMNT/hostb/keep"
other=$NEWMNT
mount_extra -o state="$SD"
[ -e "$NEWMNT/hostb/keep" ] && fail "a second mount took over a live mount's staging folder"
rmdir "$other/hostb/keep"
ok "a live mount's staging folders are not shown by another mount on the same state"

# 4. Staging cannot be recorded (the state "directory" is a file): mkdir
#    of a staging folder fails with the reason, and no volume is made.
: >"$WORK/notadir"
log_mark "$WORK/mount-extra.log"
mount_extra -o state="$WORK/notadir"
expect_fail "Not a directory" mkdir "$NEWMNT/hostb/norec"
log_grep "hostb/norec: mkdir: ENOTDIR: the staging record: creating $WORK/notadir/hostb" >/dev/null ||
	fail "no log line naming the state directory: $(log_since_mark | tail -2)"
[ ! -e "$NEWMNT/hostb/norec" ] || fail "the folder exists although it cannot be recorded"
ok "an unwritable state directory: mkdir fails with ENOTDIR, the log names the path"
