#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ssh is never told to accept a host key: a host whose key changed is
# refused (EHOSTDOWN) with ssh's own reason in the log, nothing is copied
# and no volume is left behind; the other host keeps working.
. "$(dirname "$0")/lib.sh"
trap 'clean_host hostb' EXIT

# A known_hosts where hostb has another key (as after a reinstall, or a
# man in the middle).
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other" </dev/null
grep -v '^hostb' "$STATE/known_hosts" >"$WORK/known_hosts"
echo "hostb,$(awk '$1 ~ /^hostb/ {split($1, a, ","); print a[2]}' "$STATE/known_hosts") $(cut -d' ' -f1,2 "$WORK/other.pub")" \
	>>"$WORK/known_hosts"
sed "s|^shell = ssh root@hostb\$|shell = ssh -o UserKnownHostsFile=$WORK/known_hosts root@hostb|" \
	"$STATE/hosts.conf" >"$WORK/hosts.conf"
grep -q "UserKnownHostsFile" "$WORK/hosts.conf" || fail "test setup: hosts.conf not rewritten"

NEWMNT=$(mktemp -d "$WORK/mnt.XXXXXX")
"$TOP/kvmmigfs" -f -o hosts="$WORK/hosts.conf" -o state="$KMF_STATE" "$NEWMNT" 2>"$WORK/log" &
for _ in $(seq 50); do mountpoint -q "$NEWMNT" && break; sleep 0.1; done
trap 'fusermount3 -u "$NEWMNT"; clean_host hostb' EXIT

volumes hostb
before=$VOLS

# hostb's libvirt (through the normal ssh config) answers, so a staging
# folder opens; the disk's NBD server cannot start over the bad key.
mkdir "$NEWMNT/hostb/web1"
expect_fail "Host is down" cp "$MNT/hosta/web1/vda.raw" "$NEWMNT/hostb/web1/"
grep -q "hostb/web1/vda.raw: create: EHOSTDOWN: .*Host key verification failed" "$WORK/log" ||
	fail "ssh's reason is not in the log: $(grep vda "$WORK/log")"
ok "the log carries ssh's reason: Host key verification failed"
volumes hostb
[ "$VOLS" = "$before" ] || fail "a volume was left on hostb: $VOLS"
ok "no volume left on hostb"
rmdir "$NEWMNT/hostb/web1"
[ "$(head -c 1M "$NEWMNT/hosta/odd1/vda.raw" | wc -c)" = 1048576 ] || fail "hosta stopped working"
ok "hosta keeps working"
ls /tmp/kvmmigfs-nbd.* 2>/dev/null && fail "temporary stderr files left in /tmp"
ok "no temporary files left"
