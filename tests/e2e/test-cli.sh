#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The command line: --help, --version, and a bad hosts file refused at
# start with the file, the line and the reason, before anything is mounted.
. "$(dirname "$0")/lib.sh"

K=$TOP/kvmmigfs
$K --version | grep_q "^kvmmigfs [0-9]" || fail "--version"
$K --help | grep_q "hosts=FILE" || fail "--help lacks hosts="
$K --help | grep_q "allow_running" || fail "--help lacks allow_running"
ok "--help and --version"

mkdir -p "$WORK/mp"
refuse() {
	local want=$1 out rc=0
	out=$($K -f -o hosts="$WORK/hosts.conf" "$WORK/mp" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "bad hosts file accepted: $(cat "$WORK/hosts.conf")"
	case "$out" in
	*"$want"*) ok "refused: $out" ;;
	*) fail "message '$out', wanted '$want'" ;;
	esac
	mountpoint -q "$WORK/mp" && fail "mounted anyway"
	return 0
}

printf '[hosta]\nlibvirt = qemu:///system\nbogus = 1\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:3: unknown key \"bogus\""
printf '[hosta]\nlibvirt = qemu:///system\n[hosta]\nlibvirt = x\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:3: host \"hosta\" defined twice"
printf '# hosts\n\n[a/b]\nlibvirt = x\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:3: bad host name \"a/b\""
printf '[ok]\nshell = ssh root@x\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:1: host \"ok\" has no \"libvirt\" URI"
printf '[ok]\nlibvirt = x\nshell = ssh "root@x\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:3: shell: unterminated quote"
printf 'garbage\n' >"$WORK/hosts.conf"
refuse "$WORK/hosts.conf:1: syntax error"
rm -f "$WORK/hosts.conf"
refuse "$WORK/hosts.conf: No such file or directory"
cp "$STATE/hosts.conf" "$WORK/hosts.conf"
rc=0
out=$($K -f -o hosts="$WORK/hosts.conf" -o state=relative/dir "$WORK/mp" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a relative state directory was accepted"
[ "$out" = "kvmmigfs: state=relative/dir: not an absolute path" ] || fail "state=relative: '$out'"
mountpoint -q "$WORK/mp" && fail "mounted anyway"
ok "refused: $out"

# Without a hosts file the mount shows this machine's libvirt: test-mount.sh.

# A good file mounts; unmount with fusermount3 -u.
cp "$STATE/hosts.conf" "$WORK/hosts.conf"
$K -o hosts="$WORK/hosts.conf" "$WORK/mp" || fail "daemon mode mount failed"
mountpoint -q "$WORK/mp" || fail "not mounted"
ls "$WORK/mp/hosta" | grep_q -x web1 || fail "daemonized mount does not list web1"
fusermount3 -u "$WORK/mp" || fail "fusermount3 -u failed"
mountpoint -q "$WORK/mp" && fail "still mounted"
ok "daemonized mount lists guests and unmounts with fusermount3 -u"
