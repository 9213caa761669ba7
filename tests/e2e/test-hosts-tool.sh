#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tools/kvmmigfs-hosts: a hosts file from ssh aliases of ~/.ssh/config and
# from virt-manager's saved connections (real GSettings, keyfile backend,
# a private copy of virt-manager's schema), each mounted by kvmmigfs; and
# its errors.
. "$(dirname "$0")/lib.sh"

TOOL=$TOP/tools/kvmmigfs-hosts
MPS=() PIDS=()
cleanup() {
	local m p
	for m in "${MPS[@]}"; do
		if mountpoint -q "$m"; then fusermount3 -u "$m" || umount -l "$m" || :; fi
	done
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || :
		wait "$p" 2>/dev/null || :
	done
	return 0
}
trap cleanup EXIT

# mount_hosts FILE: kvmmigfs with hosts=FILE on a new mount point (own
# state directory); sets MP.
mount_hosts() {
	MP=$(mktemp -d "$WORK/mnt.XXXXXX")
	MPS+=("$MP")
	"$TOP/kvmmigfs" -f -o hosts="$1" -o zeroscan="$ZEROSCAN" \
		-o state="$MP.state" "$MP" 2>>"$WORK/mount-hosts.log" &
	PIDS+=($!)
	for _ in $(seq 100); do
		mountpoint -q "$MP" && return 0
		sleep 0.1
	done
	fail "mount of $1 did not come up: $(cat "$WORK/mount-hosts.log")"
}

# section FILE NAME: the lines of section [NAME], comment lines left out.
section() {
	sed -n "/^\[$2\]\$/,/^\$/p" "$1" | grep -v -e '^#' -e '^$' || true
}

# shows_hosta_hostb FILE: mounted, FILE shows exactly hosta and hostb, and
# both hosts' guests can be listed (hosta has web1).
shows_hosta_hostb() {
	local out
	mount_hosts "$1"
	out=$(ls "$MP" | tr '\n' ' ')
	[ "$out" = "hosta hostb " ] || fail "mount of $1 shows '$out'"
	ls "$MP/hosta" | grep_q -x web1 || fail "mount of $1: no web1 in hosta: $(ls "$MP/hosta" 2>&1)"
	ls "$MP/hostb" >/dev/null || fail "mount of $1: hostb cannot be listed"
	fusermount3 -u "$MP" || fail "unmount of $1"
}

# 1. ssh aliases of ~/.ssh/config (a fresh HOME with a copy of the test
#    hosts' ssh config).
H=$WORK/home
mkdir -p "$H/.ssh"
cp "$STATE/ssh_config" "$H/.ssh/config"
HOME=$H "$TOOL" -o "$WORK/h.conf" hosta hostb 2>"$WORK/err" ||
	fail "kvmmigfs-hosts hosta hostb: $(cat "$WORK/err")"
[ ! -s "$WORK/err" ] || fail "kvmmigfs-hosts hosta hostb warned: $(cat "$WORK/err")"
[ "$(stat -c %a "$WORK/h.conf")" = 644 ] || fail "h.conf has mode $(stat -c %a "$WORK/h.conf")"
for h in hosta hostb; do
	want=$(printf '[%s]\nlibvirt = qemu+ssh://%s/system\nshell = ssh %s' $h $h $h)
	[ "$(section "$WORK/h.conf" $h)" = "$want" ] ||
		fail "section $h: '$(section "$WORK/h.conf" $h)'; wanted '$want'"
	# ssh -G saw the alias through the test hosts' ssh (first on PATH).
	grep_q -x "# ssh -G $h: root@$(host_addr $h) port 22" "$WORK/h.conf" ||
		fail "no ssh -G comment for $h: $(cat "$WORK/h.conf")"
done
ls -A "$WORK" | grep_q '^\.h\.conf\.' && fail "temporary file left behind"
shows_hosta_hostb "$WORK/h.conf"
ok "aliases hosta hostb: $(grep -c '^\[' "$WORK/h.conf") sections, mode 0644, mounted: hosta (web1) and hostb"

# 2. virt-manager's saved connections, from a private schema directory with
#    the key of virt-manager's own schema.
for t in glib-compile-schemas gsettings; do
	command -v $t >/dev/null || { echo "SKIP: $t not installed (libglib2.0-bin)"; exit 77; }
done
SCHEMA=org.virt-manager.virt-manager.connections
if ! gsettings list-schemas | grep_q -x "$SCHEMA"; then
	# Not installed here: without the schema, silently nothing unless
	# --virt-manager was named.
	rc=0
	HOME=$H "$TOOL" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = 1 ] && [ ! -s "$WORK/out" ] || fail "no aliases, no schema: exit $rc, '$(cat "$WORK/out")'"
	[ "$(cat "$WORK/err")" = "kvmmigfs-hosts: no hosts to write (name ssh aliases; virt-manager has no usable saved connection)" ] ||
		fail "no aliases, no schema: '$(cat "$WORK/err")'"
	HOME=$H "$TOOL" --virt-manager hosta >"$WORK/out" 2>"$WORK/err" ||
		fail "--virt-manager hosta without the schema: $(cat "$WORK/err")"
	grep_q "^kvmmigfs-hosts: --virt-manager: .*No such schema" "$WORK/err" ||
		fail "--virt-manager without the schema: '$(cat "$WORK/err")'"
	[ "$(grep -c '^\[' "$WORK/out")" = 1 ] || fail "--virt-manager hosta without the schema: $(cat "$WORK/out")"
	ok "no virt-manager schema: no hosts from it (a warning with --virt-manager)"
fi
mkdir "$WORK/schemas"
cat >"$WORK/schemas/org.virt-manager.virt-manager.gschema.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<schemalist gettext-domain="virt-manager">
  <schema id="org.virt-manager.virt-manager.connections" path="/org/virt-manager/virt-manager/connections/">
    <key name="uris" type="as">
      <default>[]</default>
      <summary>Connection list</summary>
    </key>
  </schema>
</schemalist>
EOF
glib-compile-schemas "$WORK/schemas" || fail "glib-compile-schemas"
export GSETTINGS_SCHEMA_DIR=$WORK/schemas GSETTINGS_BACKEND=keyfile XDG_CONFIG_HOME=$WORK/xdg
rc=0
HOME=$H "$TOOL" >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] && grep_q "no hosts to write" "$WORK/err" || fail "no saved connections: exit $rc: $(cat "$WORK/err")"
gsettings set $SCHEMA uris "['qemu+ssh://hosta/system', 'qemu:///session', 'qemu+ssh://root@hostb/system']"
[ "$(gsettings get $SCHEMA uris)" = "['qemu+ssh://hosta/system', 'qemu:///session', 'qemu+ssh://root@hostb/system']" ] ||
	fail "gsettings get: $(gsettings get $SCHEMA uris)"
HOME=$H "$TOOL" -o "$WORK/vm.conf" 2>"$WORK/err" || fail "kvmmigfs-hosts (virt-manager): $(cat "$WORK/err")"
[ "$(cat "$WORK/err")" = "kvmmigfs-hosts: skipped qemu:///session: not a system connection" ] ||
	fail "virt-manager's qemu:///session: '$(cat "$WORK/err")'"
want=$(printf '[hosta]\nlibvirt = qemu+ssh://hosta/system\nshell = ssh hosta')
[ "$(section "$WORK/vm.conf" hosta)" = "$want" ] || fail "virt-manager hosta: $(cat "$WORK/vm.conf")"
want=$(printf '[hostb]\nlibvirt = qemu+ssh://root@hostb/system\nshell = ssh root@hostb')
[ "$(section "$WORK/vm.conf" hostb)" = "$want" ] || fail "virt-manager hostb: $(cat "$WORK/vm.conf")"
shows_hosta_hostb "$WORK/vm.conf"
ok "virt-manager's URIs: hosta and hostb written and mounted, qemu:///session skipped with a warning"

# The same connection twice: once; the same folder name: NAME-2.  This
# machine's qemu:///system: its short host name, no shell line.  --pool,
# and aliases together with --virt-manager.
gsettings set $SCHEMA uris "['qemu+ssh://hosta/system', 'qemu+ssh://hosta/system', 'qemu+ssh://root@hosta:22/system', 'qemu:///system', 'qemu+tls://hostb/system']"
HOME=$H "$TOOL" --pool default --virt-manager hostb >"$WORK/out" 2>"$WORK/err" ||
	fail "kvmmigfs-hosts --virt-manager hostb: $(cat "$WORK/err")"
me=$(hostname -s)
[ "$(grep '^\[' "$WORK/out" | tr '\n' ' ')" = "[hostb] [hosta] [hosta-2] [$me] " ] ||
	fail "sections: $(grep '^\[' "$WORK/out" | tr '\n' ' ')"
want=$(printf '[hosta-2]\nlibvirt = qemu+ssh://root@hosta:22/system\nshell = ssh -p 22 root@hosta\npool = default')
[ "$(section "$WORK/out" hosta-2)" = "$want" ] || fail "hosta-2: '$(section "$WORK/out" hosta-2)'"
want=$(printf '[%s]\nlibvirt = qemu:///system\npool = default' "$me")
[ "$(section "$WORK/out" "$me")" = "$want" ] || fail "qemu:///system: '$(section "$WORK/out" "$me")'"
grep_q "^kvmmigfs-hosts: skipped qemu+tls://hostb/system: " "$WORK/err" || fail "qemu+tls not skipped: $(cat "$WORK/err")"
grep_q "^kvmmigfs-hosts: hosta (qemu+ssh://root@hosta:22/system) is the folder hosta-2" "$WORK/err" ||
	fail "no warning on hosta-2: $(cat "$WORK/err")"
ok "repeated connection once, repeated name hosta-2, qemu:///system as $me, --pool, aliases with --virt-manager"
unset GSETTINGS_SCHEMA_DIR GSETTINGS_BACKEND XDG_CONFIG_HOME

# 3. Errors: an alias no Host line names; -o onto an existing file; usage.
rc=0
HOME=$H "$TOOL" -o "$WORK/new.conf" hosta nosuchhost >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] || fail "alias nosuchhost: exit $rc"
[ "$(wc -l <"$WORK/err")" = 1 ] && grep_q "^kvmmigfs-hosts: nosuchhost: no Host entry names it in $H/.ssh/config" "$WORK/err" ||
	fail "alias nosuchhost: '$(cat "$WORK/err")'"
[ ! -e "$WORK/new.conf" ] && [ ! -s "$WORK/out" ] || fail "alias nosuchhost: something was written"
ok "unknown alias: exit 1, $(cat "$WORK/err")"

cp -p "$WORK/h.conf" "$WORK/h.conf.orig"
rc=0
HOME=$H "$TOOL" -o "$WORK/h.conf" hosta >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] || fail "-o onto an existing file: exit $rc"
[ "$(cat "$WORK/err")" = "kvmmigfs-hosts: $WORK/h.conf exists (--force replaces it)" ] ||
	fail "-o onto an existing file: '$(cat "$WORK/err")'"
cmp -s "$WORK/h.conf" "$WORK/h.conf.orig" || fail "-o changed the existing file"
HOME=$H "$TOOL" --force -o "$WORK/h.conf" hosta 2>"$WORK/err" || fail "--force: $(cat "$WORK/err")"
[ "$(grep '^\[' "$WORK/h.conf" | tr '\n' ' ')" = "[hosta] " ] || fail "--force did not replace: $(cat "$WORK/h.conf")"
[ "$(stat -c %a "$WORK/h.conf")" = 644 ] || fail "--force: mode $(stat -c %a "$WORK/h.conf")"
ok "-o onto an existing file: exit 1, file unchanged; --force replaces it"

for args in "--bogus" "-o" "--force hosta"; do
	rc=0
	# shellcheck disable=SC2086
	HOME=$H "$TOOL" $args >/dev/null 2>"$WORK/err" || rc=$?
	[ "$rc" = 2 ] || fail "'kvmmigfs-hosts $args': exit $rc: $(cat "$WORK/err")"
done
"$TOOL" --help | grep_q "^usage: kvmmigfs-hosts" || fail "--help"
ok "bad usage: exit 2; --help"
