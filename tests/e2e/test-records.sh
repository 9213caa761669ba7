#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Staging records are bound to the volumes and the host they name: a
# volume replaced after the daemon died (or after recovery) is never
# deleted or written, the folder's other volumes still are; a record of
# another machine (a hosts-file name that means another host now) or of
# another mount's hosts file is left alone, in the default state directory
# too; recovery works as before where nothing was replaced.
. "$(dirname "$0")/lib.sh"

VIRSH=(virsh -q -c qemu:///system)
SD=$WORK/state
DEFAULT_SD=/var/lib/kvmmigfs # the default state directory (as root)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || :; done
	for m in "$WORK"/mnt.*; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :
	done
	rm -rf "$DEFAULT_SD/h2"
	for v in vu-vda.raw; do
		onhost hosta "${VIRSH[@]}" vol-delete --pool default "$v" </dev/null >/dev/null 2>&1 || :
	done
	clean_host hostb
}
trap cleanup EXIT

# vols HOST: its default pool's volumes, one line (fails if virsh fails).
vols() {
	local out
	out=$(onhost "$1" "${VIRSH[@]}" vol-list default </dev/null) || fail "vol-list on $1"
	echo "$out" | awk 'NF {print $1}' | sort | tr '\n' ' '
}
volsha() { onhost "$1" sh -c 'sha256sum <"$1" | cut -d" " -f1' sh "/var/lib/libvirt/images/$2" </dev/null; }

# mount_with HOSTSFILE LOG [OPTIONS...]: a mount (M, its daemon MPID).
mount_with() {
	local hf=$1 log=$2
	shift 2
	M=$(mktemp -d "$WORK/mnt.XXXXXX")
	"$TOP/kvmmigfs" -f -o hosts="$hf" -o zeroscan="$ZEROSCAN" -o cache=0 "$@" "$M" 2>>"$log" &
	MPID=$!
	PIDS+=("$MPID")
	for _ in $(seq 100); do
		mountpoint -q "$M" && return 0
		sleep 0.1
	done
	fail "mount of $hf did not come up: $(cat "$log")"
}

# kill_mount: SIGKILL the daemon of M (as a crash would), detach M.
kill_mount() {
	kill -KILL "$MPID"
	wait "$MPID" 2>/dev/null || :
	fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
}

# stage_disks DIR DISK...: a staging folder DIR with each disk written
# (256 KiB of random data) and closed; no domain.xml, so not defined.
stage_disks() {
	local dir=$1 d
	shift
	mkdir "$dir" || fail "mkdir $dir"
	for d in "$@"; do
		head -c 256K /dev/urandom >"$dir/$d" || fail "writing $dir/$d"
	done
}

# replace_vol HOST VOLUME: delete it and make another of that name, with
# someone else's data; prints the new volume's sha256.
replace_vol() {
	onhost "$1" "${VIRSH[@]}" vol-delete --pool default "$2" </dev/null >/dev/null ||
		fail "vol-delete $2"
	onhost "$1" "${VIRSH[@]}" vol-create-as default "$2" 10M </dev/null >/dev/null ||
		fail "vol-create-as $2"
	onhost "$1" sh -c 'head -c 1M /dev/urandom | dd of="$1" conv=notrunc status=none' \
		sh "/var/lib/libvirt/images/$2" </dev/null
	volsha "$1" "$2"
}

# 1. Killed; one volume replaced meanwhile by someone else's; restarted.
log1=$WORK/m1.log
mount_with "$STATE/hosts.conf" "$log1" -o state="$SD"
stage_disks "$M/hostb/vs" vda.raw vdb.raw
grep_q -E "^disk vda.raw f:[0-9]+:[0-9]+:" "$SD/hostb/vs" ||
	fail "the record holds no identity for vda.raw: $(cat "$SD/hostb/vs")"
grep_q -E "^host [0-9a-f-]{36}$" "$SD/hostb/vs" || fail "the record names no host UUID"
kill_mount
ok "record names each volume's identity and the host's UUID: $(grep -m1 '^disk vda' "$SD/hostb/vs")"
theirs=$(replace_vol hostb vs-vda.raw)

log2=$WORK/m2.log
mount_with "$STATE/hosts.conf" "$log2" -o state="$SD"
[ -d "$M/hostb/vs" ] || fail "the staging folder was not recovered: $(ls "$M/hostb")"
files=$(ls "$M/hostb/vs" | tr '\n' ' ')
[ "$files" = "vdb.raw " ] || fail "the recovered folder shows '$files', wanted only vdb.raw"
grep_q "hostb/vs/vda.raw: volume vs-vda.raw was replaced since kvmmigfs created it (identity f:.*, now f:.*): left alone" \
	"$log2" || fail "no log line for the replaced volume: $(cat "$log2")"
grep_q -x "disk vda.raw .*" "$SD/hostb/vs" && fail "the record still names the replaced volume"
rm -r "$M/hostb/vs" || fail "rm -r of the recovered folder"
case " $(vols hostb) " in
*" vs-vda.raw "*) ;;
*) fail "the replaced volume vs-vda.raw was deleted" ;;
esac
case " $(vols hostb) " in *" vs-vdb.raw "*) fail "vs-vdb.raw (ours) was not deleted" ;; esac
[ "$(volsha hostb vs-vda.raw)" = "$theirs" ] || fail "the replaced volume changed"
grep_q "hostb/vs/vdb.raw: deleted volume vs-vdb.raw" "$log2" || fail "no log line for deleting vs-vdb.raw"
grep_q "deleted volume vs-vda.raw" "$log1" "$log2" && fail "a log says vs-vda.raw was deleted"
[ ! -e "$SD/hostb/vs" ] || fail "the record outlived rm -r"
ok "rm -r after a restart: the replaced volume survives byte for byte, ours (vs-vdb.raw) is deleted"
onhost hostb "${VIRSH[@]}" vol-delete --pool default vs-vda.raw </dev/null >/dev/null

# 2. Recovered whole, then a volume replaced: copying into it again and
#    rm -r both check again before touching it.
stage_disks "$M/hostb/vt" vda.raw vdb.raw
kill_mount
log3=$WORK/m3.log
mount_with "$STATE/hosts.conf" "$log3" -o state="$SD"
[ "$(ls "$M/hostb/vt" | tr '\n' ' ')" = "vda.raw vdb.raw " ] ||
	fail "not both disks recovered: $(ls "$M/hostb/vt")"
grep_q "hostb/vt: staging folder recovered (left by kvmmigfs pid [0-9]*): 2 incomplete disks, not defined" "$log3" ||
	fail "no recovery line: $(cat "$log3")"
ok "nothing replaced: the folder comes back whole, as before"
theirs=$(replace_vol hostb vt-vdb.raw)
expect_fail "File exists" dd if=/dev/zero of="$M/hostb/vt/vdb.raw" bs=64k count=1 status=none
grep_q "hostb/vt/vdb.raw: volume vt-vdb.raw was replaced since kvmmigfs created it" "$log3" ||
	fail "no log line naming the replaced volume at open"
[ "$(volsha hostb vt-vdb.raw)" = "$theirs" ] || fail "writing again changed the replaced volume"
rm -r "$M/hostb/vt" || fail "rm -r"
[ "$(volsha hostb vt-vdb.raw)" = "$theirs" ] || fail "rm -r changed the replaced volume"
case " $(vols hostb) " in *" vt-vda.raw "*) fail "vt-vda.raw (ours) was not deleted" ;; esac
ok "a volume replaced after recovery: copying again gets EEXIST, rm -r leaves it, deletes ours"
onhost hostb "${VIRSH[@]}" vol-delete --pool default vt-vdb.raw </dev/null >/dev/null
kill_mount

# 3. One hosts file whose h2 meant hosta, then hostb (another machine):
#    the record is left alone, not shown, not deleted; back on hosta it
#    is recovered.  The default state directory.
h2conf() {
	printf '[h2]\nlibvirt = qemu+ssh://root@%s/system\nshell = ssh root@%s\npool = default\n' "$1" "$1"
}
HF=$WORK/h2.conf
h2conf hosta >"$HF"
rm -rf "$DEFAULT_SD/h2"
mount_with "$HF" "$WORK/m4.log"
stage_disks "$M/h2/vu" vda.raw
[ -e "$DEFAULT_SD/h2/vu" ] || fail "no record in the default state directory"
kill_mount
h2conf hostb >"$HF"
mount_with "$HF" "$WORK/m5.log"
ls "$M/h2" >/dev/null || fail "ls of h2 (hostb)"
[ ! -e "$M/h2/vu" ] || fail "h2 (now hostb) shows hosta's staging folder"
grep_q "h2/vu: staging record for another machine (host UUID .*; h2 is .* now): left alone" "$WORK/m5.log" ||
	fail "no log line for the other machine's record: $(cat "$WORK/m5.log")"
[ -e "$DEFAULT_SD/h2/vu" ] || fail "the other machine's record was deleted"
case " $(vols hosta) " in *" vu-vda.raw "*) ;; *) fail "vu-vda.raw is gone from hosta" ;; esac
kill_mount
ok "h2 renamed to another machine: the record is left alone and logged"
h2conf hosta >"$HF"
mount_with "$HF" "$WORK/m6.log"
[ -d "$M/h2/vu" ] || fail "back on hosta, vu was not recovered"
rm -r "$M/h2/vu" || fail "rm -r vu"
case " $(vols hosta) " in *" vu-vda.raw "*) fail "vu-vda.raw not deleted" ;; esac
kill_mount
ok "h2 back on hosta: the folder is recovered and removed"

# 4. Two mounts, hosts files whose h2 are different hosts, one default
#    state directory: neither shows the other's staging folders, alive or
#    after both were killed.
HA=$WORK/h2a.conf HB=$WORK/h2b.conf
h2conf hosta >"$HA"
h2conf hostb >"$HB"
mount_with "$HA" "$WORK/ma.log"
MA=$M MA_PID=$MPID
mount_with "$HB" "$WORK/mb.log"
MB=$M MB_PID=$MPID
stage_disks "$MA/h2/wa" vda.raw
stage_disks "$MB/h2/wb" vda.raw
[ ! -e "$MA/h2/wb" ] && [ ! -e "$MB/h2/wa" ] || fail "a live mount shows the other's folder"
M=$MA MPID=$MA_PID kill_mount
M=$MB MPID=$MB_PID kill_mount
mount_with "$HA" "$WORK/ma2.log"
MA=$M
mount_with "$HB" "$WORK/mb2.log"
MB=$M
[ -d "$MA/h2/wa" ] || fail "mount A lost its folder"
[ -d "$MB/h2/wb" ] || fail "mount B lost its folder"
[ ! -e "$MA/h2/wb" ] || fail "mount A shows mount B's folder"
[ ! -e "$MB/h2/wa" ] || fail "mount B shows mount A's folder"
grep_q "h2/wb: staging record of a mount of hosts file $HB, not $HA: left alone" "$WORK/ma2.log" ||
	fail "no log line in A for B's record: $(cat "$WORK/ma2.log")"
rm -r "$MA/h2/wa" "$MB/h2/wb" || fail "rm -r of the two folders"
case " $(vols hosta) $(vols hostb) " in *" wa-vda.raw "* | *" wb-vda.raw "*) fail "volumes left" ;; esac
ok "two mounts with same-named hosts and one default state directory stay apart"
