# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for end-to-end tests; sourced by each test-*.sh.
#
# The runner (tests/e2e/run) exports:
#   TOP     the source tree
#   KMF_PID the mount's daemon; KMF_STATE its staging records (-o state)
#   STATE   the test hosts' state directory (tools/testhosts)
#   MNT     a kvmmigfs mount of those hosts (default options)
#   MNTLOG  that mount's log (foreground, stderr)
#   WORK    a scratch directory for this test
# and PATH starts with $STATE/bin (the ssh wrapper).

set -euo pipefail

TESTNAME=$(basename "$0")

fail() {
	echo "FAIL: $TESTNAME: $*" >&2
	exit 1
}

ok() {
	echo "  ok: $*"
}

# "CMD | grep_q PATTERN": grep -q, but reading all of its input: with
# pipefail, "grep -q" quitting at the first match can make CMD die of
# SIGPIPE and the pipeline fail although it matched.
grep_q() {
	grep "$@" >/dev/null
}

# Run a command inside a test host.
onhost() {
	local host=$1
	shift
	"$TOP/tools/testhosts" exec "$STATE" "$host" "$@"
}

# host_addr HOST: the address this machine's ssh reaches HOST at.
host_addr() {
	awk -v n="$1" '$1 == "Host" { h = $2 } h == n && $1 == "HostName" { print $2; exit }' "$STATE/ssh_config"
}

# hosts_with SECTION FILE LINE...: the mount's hosts file, written to FILE
# with these lines added to [SECTION].
hosts_with() {
	local section=$1 f=$2
	shift 2
	ADD=$(printf '%s\n' "$@") awk -v s="[$section]" '{ print } $0 == s { print ENVIRON["ADD"] }' \
		"$STATE/hosts.conf" >"$f"
	grep_q -xF "[$section]" "$f" || fail "no [$section] in $STATE/hosts.conf"
}

# ctrl_c_mv SECS COND SRC DST: mv SRC DST in the background, interrupted
# (SIGINT, as Ctrl-C) once COND holds (within SECS); mv must end by the
# signal.  Sets secs: how long mv took to end after it.
ctrl_c_mv() {
	local limit=$1 cond=$2 pid t0 rc=0
	env --default-signal=INT mv "$3" "$4" 2>"$WORK/mv.err" &
	pid=$!
	wait_until "$limit" "$cond"
	t0=$(now)
	kill -INT "$pid" || fail "mv ended before Ctrl-C: $(cat "$WORK/mv.err")"
	wait "$pid" || rc=$?
	secs=$(echo "$(now) - $t0" | bc)
	[ "$rc" = 130 ] || fail "Ctrl-C: mv exited $rc: $(cat "$WORK/mv.err")"
}

# expect_fail ERRTEXT CMD...: CMD must fail and print ERRTEXT (strerror).
expect_fail() {
	local want=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "'$*' succeeded; wanted: $want"
	case "$out" in
	*"$want"*) ok "'$*' fails: $want" ;;
	*) fail "'$*' failed with '$out'; wanted '$want'" ;;
	esac
}

# The host's own view of a disk: sha256 of the guest-visible bytes,
# computed inside the host with qemu-nbd + nbdcopy.
host_sha256() {
	local host=$1 fmt=$2 path=$3
	onhost "$host" sh -c \
		'nbdcopy -- [ qemu-nbd -r -f "$1" "$2" ] - | sha256sum | cut -d" " -f1' \
		sh "$fmt" "$path"
}

# Lines "DEV FORMAT PATH" for the listed disks of a guest, from the host's
# own libvirt (inactive XML), by the mount's own rule (tests/listdisks).
host_disks() {
	local host=$1 guest=$2
	onhost "$host" virsh -q -c qemu:///system dumpxml --inactive "$guest" |
		onhost "$host" "$TOP/tests/listdisks" -c qemu:///system
}

# Mount kvmmigfs with extra options on a new mount point; sets NEWMNT.
mount_extra() {
	NEWMNT=$(mktemp -d "$WORK/mnt.XXXXXX")
	"$TOP/kvmmigfs" -f -o hosts="$STATE/hosts.conf" -o zeroscan="$ZEROSCAN" \
		-o crc="$CRCTOOL" -o state="$KMF_STATE" "$@" "$NEWMNT" 2>>"$WORK/mount-extra.log" &
	NEWMNT_PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$NEWMNT" && return 0
		sleep 0.1
	done
	fail "mount with $* did not come up: $(cat "$WORK/mount-extra.log")"
}

unmount_extra() {
	fusermount3 -u "$NEWMNT" || true
}

# Seconds since the epoch, with fractions.
now() {
	date +%s.%N
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; the
# test fails if it has not within SECONDS.
wait_until() {
	local limit=$1 end
	shift
	end=$(echo "$(now) + $limit" | bc)
	until "$@"; do
		[ "$(echo "$(now) < $end" | bc)" = 1 ] || fail "not within $limit s: $*"
		sleep 0.1
	done
}

# fails CMD...: CMD fails; succeeds CMD...: it succeeds (output dropped);
# no_process PATTERN: no process here has PATTERN in its command line.
# For wait_until.
fails() {
	! "$@" >/dev/null 2>&1
}
succeeds() {
	"$@" >/dev/null 2>&1
}
no_process() {
	! pgrep -f -- "$1" >/dev/null
}

# listed DIR NAME: NAME is listed in DIR (e.g. a guest in a host folder
# once the mount's listing cache has expired).  unlisted DIR NAME: it is
# not.  empty_dir DIR: DIR lists nothing.
listed() {
	ls -A "$1" | grep_q -x -- "$2"
}
unlisted() {
	local out
	out=$(ls -A "$1") || return 1
	! printf '%s\n' "$out" | grep_q -x -- "$2"
}
empty_dir() {
	local out
	out=$(ls -A "$1") && [ -z "$out" ]
}

# Put a host back as the test found it: staging folders of the mount
# removed, every guest undefined (stopped first) and every volume of its
# default pool deleted; then wait until the mount lists the host empty
# (its listing cache expired).  For hosts the tests fill (hostb), also as
# an EXIT trap.  Each step is best effort (a defined guest's folder refuses
# rm), in a subshell, so the caller keeps set -e.
clean_host() {
	local host=$1
	(
		set +e
		for g in "$MNT/$host"/*; do
			[ -e "$g" ] && rm -rf "$g" 2>/dev/null
		done
		for g in $(onhost "$host" virsh -q -c qemu:///system list --all --name </dev/null); do
			onhost "$host" virsh -q -c qemu:///system destroy "$g" </dev/null >/dev/null 2>&1
			onhost "$host" virsh -q -c qemu:///system undefine "$g" </dev/null >/dev/null
		done
		for v in $(onhost "$host" virsh -q -c qemu:///system vol-list default </dev/null | awk '{print $1}'); do
			onhost "$host" virsh -q -c qemu:///system vol-delete --pool default "$v" </dev/null >/dev/null
		done
		exit 0
	)
	wait_until 10 empty_dir "$MNT/$host"
}

# log_mark [FILE]: remember where FILE (default $MNTLOG) ends now;
# log_grep ARGS...: grep (options and pattern) in what was written to it
# after the mark, printing the matching lines; fails when none matches.
# For "this step logged that" without matching an earlier step's line.
log_mark() {
	LOG_FILE=${1:-$MNTLOG}
	[ -e "$LOG_FILE" ] || : >"$LOG_FILE"
	LOG_MARK=$(stat -c %s "$LOG_FILE")
}
log_since_mark() {
	tail -c +$((LOG_MARK + 1)) "$LOG_FILE"
}
log_grep() {
	local out
	out=$(log_since_mark) || fail "reading $LOG_FILE"
	printf '%s\n' "$out" | grep "$@"
}

# guest_disks HOST GUEST: host_disks's lines into $DISKS, and their number
# into $NDISKS; the test fails when listing them fails or finds none (a
# loop over nothing checks nothing).  Call it in the test's own shell.
guest_disks() {
	DISKS=$(host_disks "$1" "$2") || fail "$1: listing the disks of $2 failed"
	[ -n "$DISKS" ] || fail "$1: no disks listed for $2"
	NDISKS=$(printf '%s\n' "$DISKS" | wc -l)
}

# guests HOST: HOST's defined guests into $GUESTS (sorted, one a line);
# defined HOST NAME: NAME is one of them; ndefined HOST NAME: how many of
# them are NAME into $NDEF; volumes HOST [POOL]: the volumes of POOL
# (default: default) into $VOLS (sorted, space-separated); no_volumes HOST
# [POOL]: there are none.  Each fails the test when virsh fails, so that a
# check that something is absent never passes because virsh could not
# answer.  Call them in the test's own shell, not inside $(...).
guests() {
	local out
	out=$(onhost "$1" virsh -q -c qemu:///system list --all --name </dev/null) ||
		fail "$1: virsh list failed"
	GUESTS=$(printf '%s\n' "$out" | sed '/^$/d' | sort)
}
defined() {
	guests "$1"
	printf '%s\n' "$GUESTS" | grep_q -x -- "$2"
}
ndefined() {
	guests "$1"
	NDEF=$(printf '%s\n' "$GUESTS" | awk -v n="$2" '$0 == n { c++ } END { print c + 0 }')
}
volumes() {
	local out
	out=$(onhost "$1" virsh -q -c qemu:///system vol-list "${2:-default}" </dev/null) ||
		fail "$1: virsh vol-list ${2:-default} failed"
	VOLS=$(printf '%s\n' "$out" | awk 'NF { print $1 }' | sort | tr '\n' ' ')
}
no_volumes() {
	volumes "$@"
	[ -z "$VOLS" ]
}

# The domain type of test guests: kvm where this machine has it.
virt_type() {
	if [ -c /dev/kvm ]; then echo kvm; else echo qemu; fi
}

# guest_xml NAME TYPE file|block PATH: a 64 MiB guest without an OS, domain
# type TYPE, with one raw disk vda at PATH (a file or a block device).
guest_xml() {
	local attr=file
	[ "$3" = block ] && attr=dev
	cat <<EOF
<domain type="$2"><name>$1</name><memory unit="MiB">64</memory>
<os><type arch="x86_64" machine="pc">hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type="$3" device="disk"><driver name="qemu" type="raw"/>
<source $attr="$4"/><target dev="vda" bus="virtio"/></disk></devices></domain>
EOF
}

# define_raw_guest NAME VOLUME SIZE_MIB FILL: define NAME on hosta with one
# disk, the volume VOLUME of the default pool: a sparse raw file of
# SIZE_MIB, then FILL run on the host by sh with $f set to its path (e.g.
# 'head -c 8M /dev/urandom | dd of=$f bs=1M seek=16 conv=notrunc').
define_raw_guest() {
	local f=/var/lib/libvirt/images/$2
	onhost hosta sh -c 'set -e; f=$1; truncate -s "$2"M "$f"; eval "$3"' \
		sh "$f" "$3" "$4" </dev/null
	guest_xml "$1" "$(virt_type)" file "$f" |
		onhost hosta virsh -q -c qemu:///system define /dev/stdin >/dev/null
	onhost hosta virsh -q -c qemu:///system pool-refresh default </dev/null >/dev/null
}

# timed_fail LABEL CMD...: CMD must fail within LIMIT seconds (the test
# sets LIMIT) with an error matching TIMED_FAIL_ERRORS (an extended regular
# expression; default: EHOSTDOWN or ETIMEDOUT), and not hang.
timed_fail() {
	local label=$1 t0 out rc=0 secs
	shift
	t0=$(now)
	out=$(timeout 60 "$@" 2>&1) || rc=$?
	secs=$(echo "$(now) - $t0" | bc)
	[ "$rc" != 0 ] || fail "$label: '$*' succeeded on a dead host"
	[ "$rc" != 124 ] || fail "$label: '$*' hung (60 s)"
	echo "$out" | grep_q -E "${TIMED_FAIL_ERRORS:-Host is down|Connection timed out}" ||
		fail "$label: '$*' failed with '$out'"
	[ "$(echo "$secs < $LIMIT" | bc)" = 1 ] || fail "$label: took $secs s"
	ok "$label: '$*' fails in $secs s: $out"
}

# nbdkit_with HOST "FILTERS" "PARAMS": nbdkit on HOST runs with these extra
# filters and parameters (a wrapper bind-mounted over /usr/local/bin inside
# the host, which comes first on its PATH); nbdkit_plain HOST undoes it.
nbdkit_with() {
	local dir=$WORK/$1-bin
	mkdir -p "$dir"
	printf '#!/bin/sh\nexec /usr/bin/nbdkit %s "$@" %s\n' "$2" "$3" >"$dir/nbdkit"
	chmod +x "$dir/nbdkit"
	onhost "$1" mount --bind "$dir" /usr/local/bin </dev/null
}
nbdkit_plain() {
	onhost "$1" umount /usr/local/bin </dev/null
}

# copy_cfr SRC DST: copy guest folder SRC to DST with its disk vda.raw by
# copy_file_range (what cp 9 does for a dense file), then domain.xml.
copy_cfr() {
	mkdir "$2" || return 1
	python3 - "$1/vda.raw" "$2/vda.raw" <<'PY' || return 1
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
try:
    while os.copy_file_range(src, dst, 1 << 30):
        pass
    os.close(dst)
except OSError as e:
    print("copy_file_range: " + os.strerror(e.errno), file=sys.stderr)
    sys.exit(1)
PY
	cp "$1/domain.xml" "$2/"
}

# status_field FILE KIND HOST GUEST DISK FIELD: FIELD of the last line of
# the .status.json snapshot FILE for that transfer (DISK - : the
# whole-guest line), or nothing.  Fails if a line is not JSON.
status_field() {
	python3 - "$@" <<'PY'
import json, sys
f, kind, host, guest, disk, name = sys.argv[1:]
disk = None if disk == "-" else disk
val = None
for line in open(f):
    t = json.loads(line)
    if (t["kind"], t["host"], t["guest"], t.get("disk")) == (kind, host, guest, disk):
        val = t[name]
print("" if val is None else val)
PY
}

# The counter guest for live moves (tools/mkguest): Linux under TCG that
# counts twice a second on its serial console ($SERIAL, a file the caller
# names) and on its disk.  counter_guest HOST NAME DISK: define and start
# NAME on HOST with a new 64 MiB sparse disk at DISK (a path on HOST), and
# wait until it has counted to 3.  counts: the serial log's counts;
# last_count; count_reaches N; check_serial LABEL: the counts go N, N+1,
# N+2... with no gap and no repeat, and the guest booted once.
counter_guest() {
	onhost "$1" truncate -s 64M "$3" </dev/null
	: >"$SERIAL"
	"$TOP/tools/mkguest" --xml "$2" "$GUESTIMG" "$3" "$SERIAL" qemu |
		onhost "$1" virsh -q -c qemu:///system define /dev/stdin >/dev/null
	onhost "$1" virsh -q -c qemu:///system pool-refresh default </dev/null >/dev/null
	onhost "$1" virsh -q -c qemu:///system start "$2" </dev/null >/dev/null
	wait_until 120 count_reaches 3
}
counts() {
	sed -n 's/^counter \([0-9][0-9]*\)\r\{0,1\}$/\1/p' "$SERIAL"
}
last_count() {
	counts | tail -1
}
count_reaches() {
	local n
	n=$(last_count)
	[ -n "$n" ] && [ "$n" -ge "$1" ]
}
check_serial() {
	local label=$1 boots
	counts | awk 'NR == 1 { f = $1 } $1 != f + NR - 1 { print "count " NR " is " $1; bad = 1; exit } END { exit bad }' ||
		fail "$label: the serial counts are not N, N+1, N+2...: $(counts | tr '\n' ' ' | tail -c 300)"
	boots=$(grep -c "^counter-guest: .* up " "$SERIAL" || true)
	[ "$boots" = 1 ] || fail "$label: the guest booted $boots times"
}

# moved_live FROM TO NAME: after a live mv, NAME runs on TO ("running
# (migrated)"), persistent, and FROM has neither it nor its volume
# NAME-vda.raw, which TO has.
moved_live() {
	local from=$1 to=$2 name=$3 st
	st=$(onhost "$to" virsh -q -c qemu:///system domstate --reason "$name" </dev/null)
	[ "$st" = "running (migrated)" ] || fail "$name on $to: $st"
	onhost "$to" virsh -q -c qemu:///system dominfo "$name" </dev/null |
		grep_q -E "^Persistent: +yes" || fail "$name is not persistent on $to"
	defined "$from" "$name" && fail "$name is still defined on $from"
	volumes "$from"
	case " $VOLS " in *" $name-vda.raw "*) fail "$name-vda.raw stays on $from: $VOLS" ;; esac
	volumes "$to"
	case " $VOLS " in *" $name-vda.raw "*) ;; *) fail "no $name-vda.raw on $to: $VOLS" ;; esac
}

# live_mv FROM TO NAME: mv the running counter guest NAME from FROM to TO
# through $MNT; it must end moved_live, logged, with a move line ended ok
# in .status that counts its disks' and memory's bytes.
live_mv() {
	local from=$1 to=$2 name=$3 before after t0 secs st=$WORK/live-mv.json
	before=$(last_count)
	log_mark
	t0=$(now)
	mv "$MNT/$from/$name" "$MNT/$to/" || fail "mv $from/$name $to/: $(log_since_mark | tail -3)"
	secs=$(echo "$(now) - $t0" | bc)
	after=$(last_count)
	moved_live "$from" "$to" "$name"
	ok "mv took $secs s (counts $before -> $after meanwhile); $name runs on $to, persistent; $from has neither it nor its volume"
	log_grep -F "$from/$name -> $to/$name: moved in " >/dev/null || fail "no 'moved' log line"
	cat "$MNT/.status.json" >"$st"
	[ "$(status_field "$st" move "$from" "$name" - result)" = ok ] &&
		[ "$(status_field "$st" move "$from" "$name" - done)" -gt 0 ] ||
		fail "no move line ended ok in .status: $(cat "$st")"
	[ "$(status_field "$st" move "$from" "$name" - disk_total)" -gt 0 ] &&
		[ "$(status_field "$st" move "$from" "$name" - memory_done)" -gt 0 ] ||
		fail "the move line lacks its disks' and memory's bytes: $(cat "$st")"
}

# counted_on HOST NAME DISK: the counter guest NAME, moved to HOST, goes on
# counting from 1 with no gap and one boot; then it is stopped and DISK on
# HOST must hold every count it wrote, each in its block.
counted_on() {
	local host=$1 name=$2 disk=$3 last
	wait_until 60 count_reaches $(($(last_count) + 4))
	check_serial "after the move"
	[ "$(counts | head -1)" = 1 ] || fail "the first count is $(counts | head -1)"
	ok "the count goes on on $host ($(last_count)), 1, 2, 3... with no gap, one boot"
	onhost "$host" virsh -q -c qemu:///system destroy "$name" </dev/null >/dev/null
	last=$(last_count)
	onhost "$host" python3 - "$disk" "$last" <<'PY' || fail "$host's volume lacks counts"
import sys
f = open(sys.argv[1], "rb"); last = int(sys.argv[2])
def block(i):
    f.seek(i * 4096); return f.read(4096).rstrip(b"\0").decode()
assert block(0) == "counter %d\n" % last, "block 0: %r, want %d" % (block(0), last)
for n in range(1, last + 1):
    assert block(n) == "counter %d\n" % n, "block %d: %r" % (n, block(n))
PY
	ok "$host's volume holds every count, 1 to $last, each in its block"
}
