#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Writing disks: the volume ends with exactly the size the writer gave it,
# whatever the order of writes and ftruncate; conversion by extension;
# ENOSPC from a full pool reaches the writer; -o start starts the guest.
. "$(dirname "$0")/lib.sh"

NEWMNT=
cleanup_tiny() {
	( # best effort, also after a failure; the caller keeps set -e
		set +e
		[ -n "$NEWMNT" ] && fusermount3 -u "$NEWMNT" 2>/dev/null
		onhost hostb virsh -q -c qemu:///system pool-destroy tiny </dev/null >/dev/null 2>&1
		onhost hostb umount /var/lib/libvirt/tiny </dev/null 2>/dev/null
		exit 0
	)
}
trap 'cleanup_tiny; clean_host hostb' EXIT

VIRSH=(virsh -q -c qemu:///system)
B=$MNT/hostb
img=/var/lib/libvirt/images

# 1. Sizes, whatever the order: python writers with odd patterns.
mkdir "$B/sizes"
python3 - "$B/sizes" <<'PY'
import os, sys
d = sys.argv[1]
def w(name, ops):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    for op in ops:
        if op[0] == "t":
            os.ftruncate(fd, op[1])
        else:
            os.pwrite(fd, op[2], op[1])
    os.close(fd)
blk = b"\xab" * 4096
w("vda.raw", [("t", 10 << 20), ("w", 0, blk)])                 # truncate first
w("vdb.raw", [("w", (5 << 20) - 4096, blk), ("w", 0, blk)])     # last block first
w("vdc.raw", [("w", 0, blk * 256), ("t", 12345)])               # shrink at the end
w("vdd.qcow2", [("w", (3 << 30) - 4096, blk), ("w", 0, blk)])   # grows past 1 GiB
w("vde.raw", [("w", 0, blk), ("t", 8192), ("t", 1 << 20)])      # cut, then grow
PY
sleep 0.5
# A raw volume's size is its file's (qemu-img rounds it up to sectors).
size() {
	case $1 in
	*.raw) onhost hostb stat -c %s "$img/$1" </dev/null ;;
	*) onhost hostb qemu-img info -U --output=json "$img/$1" </dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])' ;;
	esac
}
[ "$(size sizes-vda.raw)" = $((10 << 20)) ] || fail "truncate-first: $(size sizes-vda.raw)"
[ "$(size sizes-vdb.raw)" = $((5 << 20)) ] || fail "last-block-first: $(size sizes-vdb.raw)"
[ "$(size sizes-vdc.raw)" = 12345 ] || fail "shrink at the end: $(size sizes-vdc.raw)"
[ "$(size sizes-vdd.qcow2)" = $((3 << 30)) ] || fail "qcow2 grown: $(size sizes-vdd.qcow2)"
[ "$(size sizes-vde.raw)" = $((1 << 20)) ] || fail "cut then grown: $(size sizes-vde.raw)"
ok "volumes end with exactly the size written (truncate first, last block first, shrink, growth past 1 GiB, cut then grown)"
# Data cut off by a truncate does not come back when the file grows.
got=$(onhost hostb sh -c "dd if=$img/sizes-vde.raw bs=4096 skip=1 count=1 status=none | od -An -v -tx1 | tr -s ' ' '\n' | sort -u | tr -d '\n'" </dev/null)
[ "$got" = 00 ] || fail "bytes cut by truncate came back: $got"
first=$(onhost hostb sh -c "dd if=$img/sizes-vde.raw bs=4096 count=1 status=none | od -An -v -tx1 | tr -s ' ' '\n' | sort -u | tr -d '\n'" </dev/null)
[ "$first" = ab ] || fail "first block lost: $first"
ok "data cut off by truncate reads as zeros after growing again"
rm -r "$B/sizes" || fail "rm -r sizes"

# 2. Conversion by extension: raw source into a qcow2 volume.
mkdir "$B/conv"
cp "$MNT/hosta/odd1/vda.raw" "$B/conv/vda.qcow2"
read -r _ _ path < <(host_disks hosta odd1)
[ "$(host_sha256 hostb qcow2 "$img/conv-vda.qcow2")" = "$(host_sha256 hosta raw "$path")" ] ||
	fail "raw to qcow2 conversion differs"
onhost hostb qemu-img info -U "$img/conv-vda.qcow2" </dev/null | grep_q "file format: qcow2" ||
	fail "conv-vda.qcow2 is not qcow2"
ok "cp vda.raw .../vda.qcow2 converts into a qcow2 volume, same bytes"
rm -r "$B/conv"

# 3. A full pool.  (a) A disk copied alone fills it mid-copy: ENOSPC
#    reaches the writer; rm -r frees the space.  (b) With domain.xml
#    first (rsync sends in name order), the disks are known to need more
#    than the pool has: ENOSPC before any volume is created, the numbers in
#    the log.
onhost hostb sh -c 'mkdir -p /var/lib/libvirt/tiny && mount -t tmpfs -o size=8M tmpfs /var/lib/libvirt/tiny' </dev/null
onhost hostb "${VIRSH[@]}" pool-create-as tiny dir --target /var/lib/libvirt/tiny </dev/null >/dev/null
sed 's/^pool = default$/pool = tiny/' "$STATE/hosts.conf" >"$WORK/tiny.conf"
NEWMNT=$(mktemp -d "$WORK/mnt.XXXXXX")
"$TOP/kvmmigfs" -f -o hosts="$WORK/tiny.conf" -o state="$KMF_STATE" "$NEWMNT" 2>"$WORK/tiny.log" &
for _ in $(seq 50); do mountpoint -q "$NEWMNT" && break; sleep 0.1; done
free0=$(stat -f -c %a "$NEWMNT/hostb")
mkdir "$NEWMNT/hostb/web1"
rc=0
out=$(cp "$MNT/hosta/web1/vda.raw" "$NEWMNT/hostb/web1/" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "copy into an 8 MiB pool succeeded"
case "$out" in
*"No space left on device"*) ok "full pool: cp fails with: $(echo "$out" | head -1)" ;;
*) fail "full pool: cp said '$out'" ;;
esac
grep -Eq "hostb/web1/vda.raw: (write|close): ENOSPC" "$WORK/tiny.log" || fail "no ENOSPC log line: $(cat "$WORK/tiny.log")"
defined hostb web1 && fail "web1 defined after ENOSPC"
# The status file says the same: the disk's line ended with ENOSPC and the
# log's cause, and the folder's line keeps it while the folder is there.
cat "$NEWMNT/hostb/web1/.status.json" >"$WORK/tiny.json"
[ "$(status_field "$WORK/tiny.json" write hostb web1 vda.raw result)" = ENOSPC ] ||
	fail "vda.raw's line after ENOSPC: $(cat "$WORK/tiny.json")"
cause=$(status_field "$WORK/tiny.json" write hostb web1 vda.raw cause)
grep -E "hostb/web1/vda.raw: (write|close): ENOSPC: " "$WORK/tiny.log" | grep_q -F ": $cause" ||
	fail "vda.raw's cause '$cause' is not the log's"
[ "$(status_field "$WORK/tiny.json" write hostb web1 - result)" = ENOSPC ] ||
	fail "the folder's line after ENOSPC: $(cat "$WORK/tiny.json")"
gcause=$(status_field "$WORK/tiny.json" write hostb web1 - cause)
# The write's cause, or the close's, which repeats it.
case "$gcause" in
"vda.raw: "*"$cause") ;;
*) fail "the folder's cause: '$gcause' (the disk's: '$cause')" ;;
esac
grep_q -E "^write +hostb/web1  staging  .*  ENOSPC: vda.raw: " "$NEWMNT/.status" ||
	fail "no folder line in .status: $(cat "$NEWMNT/.status")"
ok "hostb/web1/.status: vda.raw ended ENOSPC, the folder's line says $gcause"
rm -r "$NEWMNT/hostb/web1" || fail "rm -r after ENOSPC"
wait_until 5 no_volumes hostb tiny # volumes left in the tiny pool
[ "$(stat -f -c %a "$NEWMNT/hostb")" = "$free0" ] || fail "space not returned"
ok "rm -r returns the pool to its free space ($free0 blocks)"

log_mark "$WORK/tiny.log"
rc=0
out=$(rsync -r "$MNT/hosta/web1" "$NEWMNT/hostb/" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "rsync into an 8 MiB pool succeeded"
case "$out" in
*"No space left on device"*) ok "too little space from the start: rsync fails with ENOSPC" ;;
*) fail "too little space from the start: rsync said '$out'" ;;
esac
line=$(log_grep -E "hostb/web1/\.?vda\.raw(\.[A-Za-z0-9]+)?: create: ENOSPC: ") ||
	fail "no ENOSPC at create in the log: $(log_since_mark | tail -3)"
line=${line%%$'\n'*}
echo "$line" | grep_q -E "take [0-9]+ bytes on the source host; pool tiny has [0-9]+ bytes free" ||
	fail "the log line lacks the numbers: $line"
ok "the log says why: ${line#*ENOSPC: }"
cat "$NEWMNT/hostb/web1/.status.json" >"$WORK/tiny2.json"
gcause=$(status_field "$WORK/tiny2.json" write hostb web1 - cause)
[ "$(status_field "$WORK/tiny2.json" write hostb web1 - result)" = ENOSPC ] &&
	[ -n "$gcause" ] && echo "$line" | grep_q -F "${gcause#*create: }" ||
	fail "the folder's line after the refusal: $(cat "$WORK/tiny2.json")"
ok "hostb/web1/.status keeps the refusal: ${gcause:0:60}..."
no_volumes hostb tiny || fail "a volume was created although the guest cannot fit: $VOLS"
[ "$(stat -f -c %a "$NEWMNT/hostb")" = "$free0" ] || fail "space used although refused"
defined hostb web1 && fail "web1 defined after ENOSPC"
rm -r "$NEWMNT/hostb/web1" || fail "rm -r after the refusal"
ok "refused before any volume was created; rm -r removes the staging folder"
cleanup_tiny

# 3b. The target fails every write (nbdkit's error filter slipped in front
#     of hostb's nbdkit): EIO reaches the writer, nothing is defined.
nbdkit_with hostb --filter=error "error-pwrite-rate=100% error=EIO"
log_mark
rc=0
out=$(cp -r "$MNT/hosta/odd1" "$B/" 2>&1) || rc=$?
nbdkit_plain hostb
[ "$rc" != 0 ] || fail "copy onto a failing target succeeded"
case "$out" in
*"Input/output error"*) ok "failing target: cp fails with: $(echo "$out" | head -1)" ;;
*) fail "failing target: cp said '$out'" ;;
esac
line=$(log_grep -E "hostb/odd1/vda.raw: (write|flush|close): EIO") || fail "no EIO log line"
echo "${line%%$'\n'*}"
defined hostb odd1 && fail "odd1 defined after EIO"
rm -r "$B/odd1" || fail "rm -r after EIO"
cp -r "$MNT/hosta/odd1" "$B/" || fail "the copy after the fault is gone"
defined hostb odd1 || fail "odd1 not defined on retry"
ok "EIO on the target: the writer sees it, nothing defined, rm -r cleans, a retry succeeds"
# The same failure, then copied again into the same folder (cp opens the
# disk with O_TRUNC): the failed write goes with the copy it was part of.
clean_host hostb
nbdkit_with hostb --filter=error "error-pwrite-rate=100% error=EIO"
cp -r "$MNT/hosta/odd1" "$B/" 2>/dev/null && fail "copy onto a failing target succeeded"
nbdkit_plain hostb
defined hostb odd1 && fail "odd1 defined after EIO"
cp -r "$MNT/hosta/odd1" "$B/" || fail "copying again into the folder after EIO"
defined hostb odd1 || fail "odd1 not defined after copying again into its folder"
ok "EIO, then the same cp -r again into the folder (no rm -r): defined"
clean_host hostb

# 4. -o start: the guest runs once defined; a guest that cannot start is
#    defined, and close() says why it did not start.
mount_extra -o start
cp -r "$MNT/hosta/blk1" "$NEWMNT/hostb/" || fail "cp -r blk1 with -o start"
[ "$(onhost hostb "${VIRSH[@]}" domstate blk1 </dev/null)" = running ] || fail "blk1 not started"
ok "-o start: blk1 runs on hostb right after the copy"
log_mark "$WORK/mount-extra.log"
expect_fail "Input/output error" cp -r "$MNT/hosta/odd1" "$NEWMNT/hostb/"
log_grep "hostb/odd1/vda.raw: close: EIO: defined, but not started: .*Failed to connect to '127.0.0.1:10809'" \
	>/dev/null || fail "no log line with libvirt's reason"
[ "$(onhost hostb "${VIRSH[@]}" domstate odd1 </dev/null)" = "shut off" ] || fail "odd1 should be defined, shut off"
ok "-o start: a guest that cannot start (its network disk is gone) is defined; close() fails with EIO"
onhost hostb "${VIRSH[@]}" destroy blk1 </dev/null >/dev/null
for g in blk1 odd1; do
	onhost hostb "${VIRSH[@]}" undefine "$g" </dev/null >/dev/null
	onhost hostb "${VIRSH[@]}" vol-delete --pool default "$g-vda.raw" </dev/null >/dev/null
done
