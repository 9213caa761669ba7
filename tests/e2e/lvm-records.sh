#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A staging record names each logical volume by its LV UUID: the daemon
# killed, the partial LV replaced by someone else's of the same name, a
# new daemon shows the folder without it and rm -r leaves it, byte for
# byte; the folder's other LV (ours) is still removed.
. "$(dirname "$0")/lib.sh"

onlvm() { "$TOP/tools/lvmhosts" exec "$STATE" "$@" </dev/null; }
lvs_of() {
	local out
	out=$(onlvm "$1" lvs --noheadings -o lv_name vg0) || fail "lvs on $1"
	echo "$out" | tr -d ' ' | awk 'NF' | sort | tr '\n' ' '
}
lvsha() { onlvm "$1" sh -c 'sha256sum <"$1" | cut -d" " -f1' sh "/dev/vg0/$2"; }
SD=$WORK/state

cleanup() {
	[ -n "${NEWMNT:-}" ] && { fusermount3 -u "$NEWMNT" 2>/dev/null || umount -l "$NEWMNT" 2>/dev/null || :; }
	for v in vl-vda.raw vl-vdb.raw; do
		onlvm lvmb lvremove -q -y "vg0/$v" >/dev/null 2>&1 || :
	done
	onlvm lvmb virsh -q -c qemu:///system pool-refresh lvm >/dev/null 2>&1 || :
}
trap cleanup EXIT
before=$(lvs_of lvmb)

mount_extra -o state="$SD" -o cache=0
mkdir "$NEWMNT/lvmb/vl"
for d in vda.raw vdb.raw; do
	head -c 256K /dev/urandom >"$NEWMNT/lvmb/vl/$d" || fail "writing vl/$d"
done
grep_q -E "^disk vda.raw lv:[A-Za-z0-9-]{38}$" "$SD/lvmb/vl" ||
	fail "the record holds no LV UUID: $(cat "$SD/lvmb/vl")"
kill -KILL "$NEWMNT_PID"
wait "$NEWMNT_PID" 2>/dev/null || :
fusermount3 -u "$NEWMNT" 2>/dev/null || umount -l "$NEWMNT"
ok "daemon killed with two partial LVs; the record names their UUIDs"

# Someone removes the partial LV and makes their own of the same name.
onlvm lvmb sh -c 'set -e
	lvremove -q -y vg0/vl-vda.raw >/dev/null
	lvcreate -q -y -L 8M -n vl-vda.raw vg0 >/dev/null
	head -c 8M /dev/urandom | dd of=/dev/vg0/vl-vda.raw bs=1M status=none
	virsh -q -c qemu:///system pool-refresh lvm >/dev/null' || fail "replacing the LV"
theirs=$(lvsha lvmb vl-vda.raw)

mount_extra -o state="$SD" -o cache=0
[ "$(ls "$NEWMNT/lvmb/vl" | tr '\n' ' ')" = "vdb.raw " ] ||
	fail "the recovered folder shows: $(ls "$NEWMNT/lvmb/vl")"
grep_q "lvmb/vl/vda.raw: volume vl-vda.raw was replaced since kvmmigfs created it (identity lv:.*, now lv:.*): left alone" \
	"$WORK/mount-extra.log" || fail "no log line for the replaced LV: $(tail -5 "$WORK/mount-extra.log")"
rm -r "$NEWMNT/lvmb/vl" || fail "rm -r of the recovered folder"
[ "$(lvsha lvmb vl-vda.raw)" = "$theirs" ] || fail "the replaced LV changed or is gone"
case " $(lvs_of lvmb) " in *" vl-vdb.raw "*) fail "our LV vl-vdb.raw was not removed" ;; esac
[ "$(lvs_of lvmb)" = "$(echo "$before vl-vda.raw" | tr ' ' '\n' | awk 'NF' | sort | tr '\n' ' ')" ] ||
	fail "LVs after rm -r: $(lvs_of lvmb), before: $before"
ok "the replaced LV survives rm -r byte for byte, ours (vl-vdb.raw) is removed"
