#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Log lines: a daemonized mount logs to syslog as "kvmmigfs[PID]" with its
# mount point, the same line a foreground mount writes to stderr, so a
# journal filter on either finds one mount's failures.  This machine runs
# no syslog daemon: a private mount namespace gets a /dev/log socket this
# test listens on.
. "$(dirname "$0")/lib.sh"

SOCK=$WORK/log.sock
MP=$WORK/log-mnt
mkdir "$MP" "$WORK/olddev"
lpid=
trap '[ -z "${NEWMNT:-}" ] || unmount_extra
	[ -z "$lpid" ] || kill "$lpid" 2>/dev/null || :; wait 2>/dev/null || :' EXIT

# The listener: every datagram to $SOCK, one per line, in $WORK/syslog.
python3 - "$SOCK" "$WORK/syslog" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
PY
lpid=$!
wait_until 5 test -S "$SOCK"

# 1. A daemonized mount (no -f): a failure goes to syslog.
out=$(unshare -m --propagation private sh -c '
	set -e
	W=$1 MP=$2
	# /dev with the nodes the daemon and ssh use, and /dev/log.
	mount --rbind /dev "$W/olddev"
	mount -t tmpfs -o mode=755 tmpfs /dev
	for n in null zero full random urandom tty fuse kvm; do
		[ -e "$W/olddev/$n" ] || continue
		touch "/dev/$n"; mount --bind "$W/olddev/$n" "/dev/$n"
	done
	mkdir /dev/pts /dev/shm
	mount --rbind "$W/olddev/pts" /dev/pts
	mount --bind "$W/olddev/shm" /dev/shm
	touch /dev/log; mount --bind "$W/log.sock" /dev/log
	"$3" -o "hosts=$4,zeroscan=$5,state=$6" "$MP"
	mkdir "$MP/hosta/web1/sub" 2>/dev/null && echo "mkdir succeeded"
	for p in /proc/[0-9]*; do
		if tr "\0" " " <"$p/cmdline" 2>/dev/null | grep -q "^$3 .* $MP $"; then
			echo "pid ${p#/proc/}"
		fi
	done
	fusermount3 -u "$MP"' sh "$WORK" "$MP" "$TOP/kvmmigfs" "$STATE/hosts.conf" "$ZEROSCAN" "$KMF_STATE" 2>&1) ||
	fail "daemonized mount in a namespace with /dev/log: $out"
echo "$out" | grep_q "mkdir succeeded" && fail "mkdir in an existing guest succeeded"
pid=$(echo "$out" | sed -n 's/^pid //p')
[ -n "$pid" ] || fail "the daemon's pid was not found: $out"
wait_until 5 grep_q -F "hosta/web1/sub: mkdir: EPERM" "$WORK/syslog"
line=$(grep -F "hosta/web1/sub: mkdir: EPERM" "$WORK/syslog" | head -1)
# <PRI>Mmm dd hh:mm:ss kvmmigfs[PID]: MOUNT: error: ...; LOG_DAEMON|LOG_ERR = 27
case "$line" in
"<27>"*" kvmmigfs[$pid]: $MP: error: hosta/web1/sub: mkdir: EPERM: "*) ;;
*) fail "syslog line: '$line' (daemon pid $pid)" ;;
esac
ok "syslog: ${line#<27>}"

# 2. The same line from a foreground mount on stderr, but for the tag's pid
#    and the mount point.
mount_extra
mkdir "$NEWMNT/hosta/web1/sub" 2>/dev/null && fail "mkdir in an existing guest succeeded"
fline=$(grep -F "hosta/web1/sub: mkdir: EPERM" "$WORK/mount-extra.log" | tail -1)
[ "${fline#"kvmmigfs[$NEWMNT_PID]: $NEWMNT: "}" = "${line#*" kvmmigfs[$pid]: $MP: "}" ] ||
	fail "stderr and syslog differ: '$fline' against '$line'"
ok "stderr: $fline"
