#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon killed (SIGKILL) during a move, then a new one: the guest is
# defined on exactly one host and no volume of the move is left.  Killed
# mid-copy: the guest stays on hosta, the next daemon removes what the
# move had made on hostb.  Killed after the define on hostb and before the
# undefine on hosta (the record such a daemon leaves, made by hand): the
# next daemon finishes the move on hosta.
. "$(dirname "$0")/lib.sh"
SD=$WORK/state
cleanup() {
	(
		set +e
		nbdkit_plain hosta 2>/dev/null
		for m in "$WORK"/mnt.*; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
		onhost hosta virsh -q -c qemu:///system undefine crash1 </dev/null >/dev/null 2>&1
		onhost hosta virsh -q -c qemu:///system vol-delete --pool default crash1-vda.raw </dev/null >/dev/null 2>&1
		exit 0
	)
	clean_host hostb
}
trap cleanup EXIT

VIRSH=(virsh -q -c qemu:///system)
IMG=/var/lib/libvirt/images

define_raw_guest crash1 crash1-vda.raw 64 'head -c 32M /dev/urandom | dd of=$f conv=notrunc status=none'
SHA=$(host_sha256 hosta raw "$IMG/crash1-vda.raw")
UUID=$(onhost hosta "${VIRSH[@]}" domuuid crash1 </dev/null)

# 1. Killed mid-copy.
mount_extra -o state="$SD"
M=$NEWMNT
wait_until 10 listed "$M/hosta" crash1
nbdkit_with hosta --filter=rate "rate=32M"
mv "$M/hosta/crash1" "$M/hostb/" 2>"$WORK/mv.err" &
mvpid=$!
wait_until 30 grep_q -sE "^disk vda\.raw f:" "$SD/hostb/crash1"
grep_q -x "move hosta crash1" "$SD/hostb/crash1" || fail "the record does not name the move: $(cat "$SD/hostb/crash1")"
sleep 0.5
kill -KILL "$NEWMNT_PID"
rc=0
wait "$mvpid" || rc=$?
nbdkit_plain hosta
[ "$rc" != 0 ] || fail "mv succeeded although the daemon was killed"
fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
volumes hostb
case " $VOLS " in *" crash1-vda.raw "*) ;; *) fail "no partial volume on hostb: $VOLS" ;; esac
ok "killed mid-copy: mv fails; hostb holds the partial volume; the record names the move"

log_mark "$WORK/mount-extra.log"
mount_extra -o state="$SD"
ls "$NEWMNT/hostb" >/dev/null # the host's records are read at its first use
wait_until 10 no_volumes hostb
[ ! -e "$SD/hostb/crash1" ] || fail "the record stays: $(cat "$SD/hostb/crash1")"
log_grep -F "hostb/crash1: the move from hosta crash1 did not finish" >/dev/null ||
	fail "no log line: $(log_since_mark | tail -3)"
[ ! -e "$NEWMNT/hostb/crash1" ] || fail "hostb/crash1 is shown"
defined hostb crash1 && fail "crash1 defined on hostb"
defined hosta crash1 || fail "crash1 is gone from hosta"
[ "$(host_sha256 hosta raw "$IMG/crash1-vda.raw")" = "$SHA" ] || fail "crash1's disk changed on hosta"
ok "the next daemon removes hostb's volume and the record; crash1 stays on hosta as it was"
unmount_extra

# 2. Killed after the define on hostb, before the undefine on hosta: the
# guest is defined on both, with the record of the move.  (Made by hand:
# a copy, then the record such a daemon leaves.)
cp -r "$MNT/hosta/crash1" "$MNT/hostb/" || fail "cp -r crash1 to hostb"
defined hostb crash1 || fail "crash1 not defined on hostb"
[ "$(onhost hostb "${VIRSH[@]}" domuuid crash1 </dev/null)" = "$UUID" ] || fail "another UUID on hostb"
true &
dead=$!
wait "$dead"
mkdir -p "$SD/hostb"
hostb_id=$(onhost hostb "${VIRSH[@]}" capabilities </dev/null | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | head -1)
printf 'kvmmigfs-staging 2\npid %d\nhost %s\nhosts %s\npool default\nmove hosta crash1\n' \
	"$dead" "$hostb_id" "$STATE/hosts.conf" >"$SD/hostb/crash1"
log_mark "$WORK/mount-extra.log"
mount_extra -o state="$SD"
ls "$NEWMNT/hostb" >/dev/null
wait_until 20 fails defined hosta crash1
volumes hosta
case " $VOLS " in *" crash1-vda.raw "*) fail "crash1-vda.raw stays on hosta: $VOLS" ;; esac
defined hostb crash1 || fail "crash1 went from hostb"
[ "$(host_sha256 hostb raw "$IMG/crash1-vda.raw")" = "$SHA" ] || fail "crash1's disk on hostb differs"
[ ! -e "$SD/hostb/crash1" ] || fail "the record stays"
log_grep -F "hosta/crash1 -> hostb/crash1: kvmmigfs ended after the guest was defined on hostb: finishing the move on hosta" >/dev/null ||
	fail "no log line: $(log_since_mark | tail -3)"
ok "killed after the define: the next daemon undefines crash1 on hosta and deletes its volume; it stays on hostb"
