# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for end-to-end tests; sourced by each test-*.sh.
#
# The runner (tests/e2e/run) exports:
#   TOP     the source tree
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

# Run a command inside a test host.
onhost() {
	local host=$1
	shift
	"$TOP/tools/testhosts" exec "$STATE" "$host" "$@"
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
# own libvirt (inactive XML), parsed with python's xml.etree.
host_disks() {
	local host=$1 guest=$2
	onhost "$host" virsh -q -c qemu:///system dumpxml --inactive "$guest" |
		python3 "$TOP/tests/e2e/disks.py"
}

# Mount kvmmigfs with extra options on a new mount point; sets NEWMNT.
mount_extra() {
	NEWMNT=$(mktemp -d "$WORK/mnt.XXXXXX")
	"$TOP/kvmmigfs" -f -o hosts="$STATE/hosts.conf" -o zeroscan="$ZEROSCAN" "$@" "$NEWMNT" \
		2>>"$WORK/mount-extra.log" &
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

# Put a host back as the test found it: staging folders of the mount
# removed, every guest undefined (stopped first) and every volume of its
# default pool deleted.  For hosts the tests fill (hostb), as an EXIT trap.
clean_host() {
	local host=$1 g v
	set +e # best effort: defined guests' folders refuse rm
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
	sleep 2.5 # the mount's listing cache
}
