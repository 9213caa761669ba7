#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# MOUNT/.status and .status.json: every disk read out of a host or written
# into one is a line, its bytes of data growing while it runs, then ended
# with ok; a copy that fails ends with its errno and the cause the log got;
# a guest folder's .status has that guest's lines only; neither file shows
# in a listing.
. "$(dirname "$0")/lib.sh"
# Guests of names no other test uses: ended lines stay listed 10 minutes.
cpid=
trap '[ -z "$cpid" ] || kill "$cpid" 2>/dev/null || :; wait 2>/dev/null || :
	nbdkit_plain hosta 2>/dev/null || :; nbdkit_plain hostb 2>/dev/null || :; clean_host hostb' EXIT

field() { status_field "$@"; }

ls -a "$MNT" | grep_q -x ".status" && fail ".status is listed"
[ -r "$MNT/.status" ] && [ -r "$MNT/.status.json" ] || fail "no status files at the mount root"
[ "$(stat -c %a "$MNT/.status.json")" = 400 ] || fail ".status.json mode $(stat -c %a "$MNT/.status.json")"
ok "MOUNT/.status and .status.json exist, 0400, not listed"

# 1. A copy slowed down on its source: snapshots while it runs.
nbdkit_with hosta --filter=rate "rate=16M"
cp -r "$MNT/hosta/web1" "$MNT/hostb/stat1" &
cpid=$!
prev=0 grew=0
for i in $(seq 60); do
	cat "$MNT/.status.json" >"$WORK/s$i.json"
	done_now=$(field "$WORK/s$i.json" write hostb stat1 vda.raw done)
	if [ -n "$done_now" ]; then
		[ "$done_now" -ge "$prev" ] || fail "bytes went back: $prev -> $done_now"
		[ "$done_now" -gt "$prev" ] && grew=$((grew + 1))
		prev=$done_now
		res=$(field "$WORK/s$i.json" write hostb stat1 vda.raw result)
		[ "$res" = running ] || [ "$res" = ok ] || fail "result $res while copying"
	fi
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.3
done
wait "$cpid" || fail "cp -r failed"
cpid=
nbdkit_plain hosta
[ "$grew" -ge 3 ] || fail "vda.raw's bytes grew in only $grew snapshots"
ok "during cp -r: hostb/stat1/vda.raw's bytes grew in $grew snapshots (last $prev)"
cat "$MNT/.status.json" >"$WORK/end.json"
[ "$(field "$WORK/end.json" write hostb stat1 vda.raw result)" = ok ] || fail "vda.raw's write did not end ok"
[ -n "$(field "$WORK/end.json" write hostb stat1 vda.raw ended)" ] || fail "no end time"
total=$(field "$WORK/end.json" write hostb stat1 vda.raw total)
done_end=$(field "$WORK/end.json" write hostb stat1 vda.raw done)
# The data, not the virtual size (256 MiB): the source's allocation.
[ "$total" -gt 0 ] && [ "$total" -lt $((64 << 20)) ] || fail "total $total"
[ "$done_end" -gt 0 ] && [ "$done_end" -le "$total" ] || fail "done $done_end of $total"
[ "$(field "$WORK/end.json" read hosta web1 vda.raw result)" = ok ] || fail "no ended read of hosta/web1/vda.raw"
[ "$(field "$WORK/end.json" read hosta web1 vda.raw done)" -gt 0 ] || fail "the read moved nothing"
grep_q -E "^write +hostb/stat1/vda.raw .* ok$" "$MNT/.status" || fail "no text line: $(cat "$MNT/.status")"
ok "ended: write $done_end of $total bytes of data, ok; the read from hosta too; the text file says the same"

# 2. A guest folder's .status: that guest's lines only.
cat "$MNT/hostb/stat1/.status.json" >"$WORK/g.json"
[ -s "$WORK/g.json" ] || fail "hostb/stat1/.status.json is empty"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    assert (t["host"], t["guest"]) == ("hostb", "stat1"), t' "$WORK/g.json" || fail "other guests in hostb/stat1/.status.json"
ok "hostb/stat1/.status.json: $(wc -l <"$WORK/g.json") lines, all of hostb/stat1"

# 2b. kvmmigfs-status: waits for a guest's copy to its definition, exit 0;
#     bars on a terminal (a pty from script(1)).
KS=$TOP/tools/kvmmigfs-status
nbdkit_with hosta --filter=rate "rate=16M"
cp -r "$MNT/hosta/web1" "$MNT/hostb/st2" &
cpid=$!
rc=0
timeout 120 "$KS" -w "$MNT" hostb/st2 >"$WORK/w.out" 2>&1 || rc=$?
onhost hostb virsh -q -c qemu:///system dominfo st2 </dev/null >/dev/null ||
	fail "kvmmigfs-status -w returned ($rc) before st2 was defined: $(tail -3 "$WORK/w.out")"
wait "$cpid" || fail "cp -r to st2 failed"
cpid=
nbdkit_plain hosta
[ "$rc" = 0 ] || fail "kvmmigfs-status -w hostb/st2 exit $rc: $(cat "$WORK/w.out")"
grep_q -E "^all +hostb/st2 .*  ok$" "$WORK/w.out" || fail "no total line for hostb/st2: $(cat "$WORK/w.out")"
ok "kvmmigfs-status -w hostb/st2 returned 0 once st2 was defined"
script -qec "$KS $MNT hostb/st2" /dev/null >"$WORK/tty.out" </dev/null || fail "kvmmigfs-status on a pty"
grep_q -F "[##############################] 100%" "$WORK/tty.out" || fail "no full bar on a terminal: $(cat "$WORK/tty.out")"
ok "on a terminal: $(grep -m1 -F '100%' "$WORK/tty.out" | tr -s ' ' | cut -c1-90)..."
"$KS" --json "$MNT" hostb/st2 | python3 -c 'import json, sys; [json.loads(l) for l in sys.stdin]' ||
	fail "--json is not JSON lines"
rc=0
"$KS" -w "$MNT" hostb/nothing-here >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "-w for a guest with no transfer: exit $rc"
ok "--json passes JSON lines; -w for a guest with no transfer gives up (exit 2)"

# 3. A copy that fails: the line ends with the errno and the cause.
nbdkit_with hostb --filter=error "error-pwrite-rate=100% error=EIO"
mkdir "$MNT/hostb/bad1"
rc=0
cp "$MNT/hosta/web1/vda.raw" "$MNT/hostb/bad1/" 2>"$WORK/cp.err" || rc=$?
nbdkit_plain hostb
[ "$rc" != 0 ] || fail "cp into a failing volume succeeded"
cat "$MNT/hostb/bad1/.status.json" >"$WORK/bad.json"
[ "$(field "$WORK/bad.json" write hostb bad1 vda.raw result)" = EIO ] ||
	fail "the failed write's result: $(cat "$WORK/bad.json")"
cause=$(field "$WORK/bad.json" write hostb bad1 vda.raw cause)
[ -n "$cause" ] || fail "no cause"
grep_q -F "hostb/bad1/vda.raw: " "$MNTLOG" || fail "no log line"
grep -F "hostb/bad1/vda.raw: " "$MNTLOG" | grep_q -F "$cause" || fail "the cause '$cause' is not the log's"
ok "a failed copy ends with EIO and the log's cause: $cause"
rc=0
timeout 60 "$KS" -w "$MNT" hostb/bad1 >/dev/null 2>"$WORK/w.err" || rc=$?
[ "$rc" = 1 ] || fail "kvmmigfs-status -w of a failed guest: exit $rc"
grep_q "hostb/bad1/: EIO" "$WORK/w.err" || fail "the failure is not shown: $(cat "$WORK/w.err")"
ok "kvmmigfs-status -w hostb/bad1 exits 1 and says EIO"
rm -r "$MNT/hostb/bad1"
