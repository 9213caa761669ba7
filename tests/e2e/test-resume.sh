#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Resume: a cp -r killed at about 60% and run again keeps the volume it
# wrote; blocks already there (the same CRC32, computed on the new host)
# are not sent again: the second run sends at most 45% of the data to the
# new host (bytes to its sshd, counted by nftables), and the guest is
# defined, verified and byte-identical.  Copied again by copy_file_range,
# those blocks are not read from the source either (its CRCs computed on
# the source host).
. "$(dirname "$0")/lib.sh"

T=kmfres$$
IMG=/var/lib/libvirt/images
ADDR=$(host_addr hostb) SRC=$(host_addr hosta)
[ -n "$ADDR" ] && [ -n "$SRC" ] || fail "no addresses for the hosts in $STATE/ssh_config"
cpid=
cleanup() {
	[ -z "$cpid" ] || kill -9 "$cpid" 2>/dev/null || :
	wait 2>/dev/null || :
	nft delete table inet "$T" 2>/dev/null || :
	nbdkit_plain hosta 2>/dev/null || :
	clean_host hostb
	onhost hosta sh -c "virsh -q -c qemu:///system undefine res1 >/dev/null 2>&1; rm -f $IMG/res1-vda.raw" </dev/null || :
	rm -f "$WORK/cfr.py"
}
trap cleanup EXIT

# Bytes sent to hostb's sshd so far.
nft -f - <<NFT
table inet $T {
	chain out {
		type filter hook output priority 0;
		ip daddr $ADDR tcp dport 22 counter
	}
	chain in {
		type filter hook input priority 0;
		ip saddr $SRC tcp sport 22 counter
	}
}
NFT
counted() { nft list chain inet "$T" "$1" | sed -n 's/.* counter packets [0-9]* bytes \([0-9]*\).*/\1/p'; }
to_hostb() { counted out; }
from_hosta() { counted in; }

# kill_at_60: cp -r res1 to hostb in the background, killed (SIGKILL) once
# its running write line in .status.json has 60% of the data; sets pct.
# (An ended line of an earlier copy stays listed: only a running one
# counts.)
kill_at_60() {
	local d
	cp -r "$MNT/hosta/res1" "$MNT/hostb/" &
	cpid=$!
	pct=0
	for _ in $(seq 200); do
		cat "$MNT/.status.json" >"$WORK/s.json"
		d=$(status_field "$WORK/s.json" write hostb res1 vda.raw done)
		[ "$(status_field "$WORK/s.json" write hostb res1 vda.raw result)" = running ] || d=
		if [ -n "$d" ]; then
			pct=$((d * 100 / DATA))
			[ "$pct" -ge 60 ] && break
		fi
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$cpid" 2>/dev/null || fail "cp ended before 60% ($pct%)"
	wait "$cpid" 2>/dev/null || :
	cpid=
	# What the killed copy had in flight (readahead from hosta, writes
	# to hostb) still drains for a while: count from after it.
	wait_until 20 settled
}

# settled: both counters stand still for half a second.
settled() {
	local a b
	a="$(to_hostb) $(from_hosta)"
	sleep 0.5
	b="$(to_hostb) $(from_hosta)"
	[ "${a// /}" -ge 0 ] 2>/dev/null || fail "no nftables counters: '$a'"
	[ "$a" = "$b" ]
}

DATA=$((64 << 20))
define_raw_guest res1 res1-vda.raw 96 \
	'head -c 64M /dev/urandom | dd of="$f" bs=1M seek=16 conv=notrunc status=none'

# 1. A copy slowed down on its source, killed at about 60%.
nbdkit_with hosta --filter=rate "rate=16M"
kill_at_60
[ "$pct" -ge 60 ] && [ "$pct" -lt 95 ] || fail "killed at $pct%"
defined hostb res1 && fail "res1 defined after a killed copy"
nbdkit_plain hosta
ok "cp -r killed with $pct% of the data written; nothing defined"

# 2. The same cp -r again: what is there is not sent.
log_mark
b0=$(to_hostb)
cp -r "$MNT/hosta/res1" "$MNT/hostb/" || fail "the second cp -r failed"
sent=$(($(to_hostb) - b0))
defined hostb res1 || fail "res1 not defined after the second copy"
line=$(log_grep -F "hostb/res1/vda.raw: resumed: ") || fail "no resumed line: $(log_since_mark | tail -5)"
log_grep -F "hostb/res1/vda.raw: verified: crc32" >/dev/null || fail "not verified"
cmp "$STATE/hosta/lib/images/res1-vda.raw" "$STATE/hostb/lib/images/res1-vda.raw" ||
	fail "the copy differs from the source"
[ "$sent" -le $((DATA * 45 / 100)) ] ||
	fail "the second copy sent $sent bytes to hostb, over 45% of $DATA"
ok "again: $sent bytes to hostb ($((sent * 100 / DATA))% of the data); ${line#*resumed: }; defined, verified, byte-identical"

# 3. Killed again, then copied by copy_file_range (as cp does for a dense
#    file): the blocks there are neither read from hosta nor sent to hostb.
clean_host hostb
nbdkit_with hosta --filter=rate "rate=16M"
kill_at_60
nbdkit_plain hosta
log_mark
b0=$(to_hostb) a0=$(from_hosta)
python3 - "$MNT/hosta/res1/vda.raw" "$MNT/hostb/res1/vda.raw" <<'PY' || fail "copy_file_range into the folder again"
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
while os.copy_file_range(src, dst, 1 << 30):
    pass
os.close(dst)
PY
# (cp -r had copied domain.xml: the close of vda.raw defines the guest.)
sent=$(($(to_hostb) - b0)) read_=$(($(from_hosta) - a0))
defined hostb res1 || fail "res1 not defined after copy_file_range"
log_grep -F "hostb/res1/vda.raw: resumed: " >/dev/null || fail "no resumed line"
cmp "$STATE/hosta/lib/images/res1-vda.raw" "$STATE/hostb/lib/images/res1-vda.raw" ||
	fail "the copy differs from the source"
[ "$sent" -le $((DATA * 45 / 100)) ] || fail "copy_file_range sent $sent bytes to hostb"
# What is left (100 - pct %), and ssh's and the checksums' share: a copy
# that read the source again would take over 100%.
[ "$read_" -le $((DATA * (110 - pct) / 100)) ] ||
	fail "copy_file_range read $read_ bytes from hosta, killed at $pct%"
ok "killed at $pct%, then copy_file_range: $read_ bytes from hosta, $sent to hostb ($((read_ * 100 / DATA))%, $((sent * 100 / DATA))% of the data); defined, byte-identical"
