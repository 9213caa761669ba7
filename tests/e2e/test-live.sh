#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Live moves: mv of a running guest's folder onto another host migrates it
# with its disk, through forwards kvmmigfs sets up.  The guest runs Linux
# (tools/mkguest, under QEMU's emulation) and counts, on its serial console
# and on its disk, twice a second: after the move it runs on hostb, was not
# rebooted (the count goes on, no boot line again), and every count it
# wrote before and during the move is on hostb's volume; hosta has neither
# the guest nor its volume.  Ctrl-C mid-move, and the daemon killed
# mid-move then a new one: the guest runs on where it was, in the same
# QEMU, and the other host keeps nothing.
. "$(dirname "$0")/lib.sh"
trap '[ -z "${NEWMNT:-}" ] || unmount_extra; clean_host hostb; clean_live' EXIT

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images
SERIAL=$WORK/live1.serial

clean_live() {
	(
		set +e
		onhost hosta "${VIRSH[@]}" destroy live1 </dev/null >/dev/null 2>&1
		onhost hosta "${VIRSH[@]}" undefine live1 </dev/null >/dev/null 2>&1
		onhost hosta "${VIRSH[@]}" vol-delete --pool default live1-vda.raw </dev/null >/dev/null 2>&1
		exit 0
	)
}

# live1: the counter guest on hosta, a 64 MiB disk, under TCG.
counter_guest hosta live1 "$IMG/live1-vda.raw"
ok "live1 runs Linux on hosta and counts ($(last_count) so far)"
wait_until 10 listed "$MNT/hosta" live1

# 1. mv moves it live.
live_mv hosta hostb live1
counted_on hostb live1 "$IMG/live1-vda.raw"

# 2. Ctrl-C mid live move: started again on hostb, its migration slowed to
# 2 MiB/s (virsh migrate-setspeed) so that its memory takes a while; mv
# gets SIGINT once the move line shows bytes moved.  The guest runs on
# hostb as before, hosta has nothing.
: >"$SERIAL"
onhost hostb "${VIRSH[@]}" start live1 </dev/null >/dev/null
wait_until 120 count_reaches 2
onhost hostb "${VIRSH[@]}" migrate-setspeed live1 --bandwidth 2 </dev/null
pid0=$(onhost hostb pgrep -f "guest=live1" </dev/null)
wait_until 10 listed "$MNT/hostb" live1
log_mark
moving() {
	cat "$MNT/.status.json" >"$WORK/st2.json"
	[ "$(status_field "$WORK/st2.json" move hostb live1 - done)" -gt 0 ] 2>/dev/null
}
ctrl_c_mv 60 moving "$MNT/hostb/live1" "$MNT/hosta/"
log_grep -F "hostb/live1 -> hosta/live1: interrupted: aborting the migration" >/dev/null ||
	fail "Ctrl-C: no log line: $(log_since_mark | tail -3)"
[ "$(onhost hostb "${VIRSH[@]}" domstate live1 </dev/null)" = running ] ||
	fail "Ctrl-C: live1 on hostb: $(onhost hostb "${VIRSH[@]}" domstate live1 </dev/null)"
[ "$(onhost hostb pgrep -f "guest=live1" </dev/null)" = "$pid0" ] || fail "Ctrl-C: live1's QEMU on hostb changed"
wait_until 30 unlisted "$MNT/hosta" live1
defined hosta live1 && fail "Ctrl-C: live1 defined on hosta"
volumes hosta
case " $VOLS " in *" live1-vda.raw "*) fail "Ctrl-C: a volume stays on hosta: $VOLS" ;; esac
n=$(last_count)
wait_until 60 count_reaches $((n + 3))
check_serial "after Ctrl-C"
cat "$MNT/.status.json" >"$WORK/st2.json"
[ "$(status_field "$WORK/st2.json" move hostb live1 - result)" = EINTR ] ||
	fail "Ctrl-C: the move line: $(cat "$WORK/st2.json")"
ok "Ctrl-C: mv ended ${secs} s after SIGINT; live1 runs on in the same QEMU on hostb, hosta has nothing"

# 3. The daemon killed (SIGKILL) mid live move (still at 2 MiB/s): libvirt
# aborts the migration when its client goes, the guest runs on in the same
# QEMU on hostb; the next daemon removes the volume the move made on hosta.
SD=$WORK/state
mount_extra -o state="$SD"
wait_until 10 listed "$NEWMNT/hostb" live1
moving2() {
	cat "$NEWMNT/.status.json" >"$WORK/st3.json"
	[ "$(status_field "$WORK/st3.json" move hostb live1 - done)" -gt 0 ] 2>/dev/null
}
mv "$NEWMNT/hostb/live1" "$NEWMNT/hosta/" 2>"$WORK/mv3.err" &
mvpid=$!
wait_until 60 moving2
grep_q -E "^disk vda\.raw f:" "$SD/hosta/live1" || fail "the record lacks the volume: $(cat "$SD/hosta/live1")"
kill -KILL "$NEWMNT_PID"
rc=0
wait "$mvpid" || rc=$?
[ "$rc" != 0 ] || fail "mv succeeded although the daemon was killed"
fusermount3 -u "$NEWMNT" 2>/dev/null || umount -l "$NEWMNT"
wait_until 30 succeeds sh -c "[ \"\$(\"$TOP/tools/testhosts\" exec \"$STATE\" hostb virsh -q -c qemu:///system domstate live1 </dev/null)\" = running ]"
[ "$(onhost hostb pgrep -f "guest=live1" </dev/null)" = "$pid0" ] || fail "SIGKILL: live1's QEMU on hostb changed"
log_mark "$WORK/mount-extra.log"
mount_extra -o state="$SD"
ls "$NEWMNT/hosta" >/dev/null
wait_until 20 fails onhost hosta virsh -q -c qemu:///system vol-info --pool default live1-vda.raw
[ ! -e "$SD/hosta/live1" ] || fail "SIGKILL: the record stays: $(cat "$SD/hosta/live1")"
defined hosta live1 && fail "SIGKILL: live1 defined on hosta"
log_grep -F "hosta/live1: the move from hostb live1 did not finish" >/dev/null ||
	fail "SIGKILL: no log line: $(log_since_mark | tail -3)"
n=$(last_count)
wait_until 60 count_reaches $((n + 3))
check_serial "after SIGKILL"
unmount_extra
ok "daemon killed mid live move: live1 runs on in the same QEMU on hostb; the next daemon removed hosta's volume"
