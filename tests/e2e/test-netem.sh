#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hosts behind a real link: a network namespace made here, joined to this
# one by a veth pair.  The mount reaches hosta and hostb a second time, as
# "neta" and "netb", through it: ssh's ProxyCommand runs in the namespace
# and connects over the veth to second sshds of the hosts.  This kernel has
# no sch_netem, so the link is made bad the same way by other means:
# packets are lost on the veth by nftables rules in the namespace (numgen
# random; all of them to cut the link), and latency is added in both
# directions by the proxy (relay.py).
#  - A slow, lossy link (delay, jitter, loss, reordering): a migration
#    completes and is byte for byte equal to the source.
#  - A link that drops everything: listing and reading fail within a
#    bound, the hosts reached directly keep working, and once the link is
#    back the same operations succeed.
. "$(dirname "$0")/lib.sh"

NS=kmf-netem-$$
A0=10.199.$(( $$ % 200 )).1
A1=10.199.$(( $$ % 200 )).2
VIRSH=(virsh -q -c qemu:///system)
LIMIT=14 # seconds: -o timeout=10 plus scheduling slack

cleanup() {
	set +e
	[ -n "${NEWMNT:-}" ] && fusermount3 -u "$NEWMNT" 2>/dev/null
	for h in hosta hostb; do
		onhost $h sh -c 'kill $(cat /run/sshd-netem.pid) 2>/dev/null' </dev/null
	done
	ip netns del "$NS" 2>/dev/null
	ip link del kmfn0-$$ 2>/dev/null
	onhost hosta "${VIRSH[@]}" undefine net1 </dev/null >/dev/null 2>&1
	onhost hosta "${VIRSH[@]}" vol-delete --pool default net1-vda.raw </dev/null >/dev/null 2>&1
	clean_host hostb
}
trap cleanup EXIT

# The link.
ip netns add "$NS"
ip link add kmfn0-$$ type veth peer name kmfn1 netns "$NS"
ip addr add "$A0/30" dev kmfn0-$$
ip link set kmfn0-$$ up
ip -n "$NS" addr add "$A1/30" dev kmfn1
ip -n "$NS" link set kmfn1 up
ip -n "$NS" link set lo up
# loss PERCENT: drop that share of the packets both ways on the veth.
loss() {
	ip netns exec "$NS" nft delete table inet kmfloss 2>/dev/null || true
	[ "$1" = 0 ] && return 0
	local match="numgen random mod 100 < $1"
	[ "$1" -ge 100 ] && match=""
	ip netns exec "$NS" nft -f - <<NFT
table inet kmfloss {
	chain in { type filter hook input priority 0; iifname "kmfn1" $match counter drop; }
	chain out { type filter hook output priority 0; oifname "kmfn1" $match counter drop; }
}
NFT
}
dropped() {
	ip netns exec "$NS" nft list table inet kmfloss |
		awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}
DELAY_MS=0

# A second sshd per host on the veth's address (hosta port 2201, hostb
# 2202), with the host's own configuration and key.
port=2200
for h in hosta hostb; do
	port=$((port + 1))
	onhost $h /usr/sbin/sshd -f "$STATE/$h/sshd_config" -E "$WORK/sshd-$h.log" \
		-o ListenAddress="$A0:$port" -o PidFile=/run/sshd-netem.pid </dev/null
done

# Client side: "neta"/"netb" are hosta/hostb through the namespace.
mkdir -p "$WORK/bin"
{
	for h in a b; do
		p=$([ $h = a ] && echo 2201 || echo 2202)
		printf 'Host net%s\n    HostName %s\n    Port %s\n    HostKeyAlias host%s\n' "$h" "$A0" "$p" "$h"
		printf '    ProxyCommand ip netns exec %s python3 %s %%h %%p $(cat %s)\n' "$NS" "$TOP/tests/e2e/relay.py" "$WORK/delay"
		printf '    User root\n    IdentityFile %s/id_ed25519\n    UserKnownHostsFile %s/known_hosts\n' "$STATE" "$STATE"
		printf '    StrictHostKeyChecking yes\n    BatchMode yes\n    ConnectTimeout 5\n'
		printf '    ServerAliveInterval 2\n    ServerAliveCountMax 3\n\n'
	done
	cat "$STATE/ssh_config"
} >"$WORK/ssh_config"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$WORK/ssh_config" >"$WORK/bin/ssh"
echo 0 >"$WORK/delay"
chmod +x "$WORK/bin/ssh"
{
	cat "$STATE/hosts.conf"
	for h in neta netb; do
		printf '[%s]\nlibvirt = qemu+ssh://root@%s/system\nshell = ssh root@%s\npool = default\n\n' $h $h $h
	done
} >"$WORK/hosts.conf"
PATH=$WORK/bin:$PATH ssh netb true || fail "ssh through the namespace does not work"

# A small guest on hosta: 4 MiB of data in a 64 MiB disk.
define_raw_guest net1 net1-vda.raw 64 'head -c 4M /dev/urandom | dd of=$f bs=1M seek=8 conv=notrunc status=none'

NEWMNT=$(mktemp -d "$WORK/mnt.XXXXXX")
PATH=$WORK/bin:$PATH "$TOP/kvmmigfs" -f -o hosts="$WORK/hosts.conf" -o state="$KMF_STATE" \
	-o zeroscan="$ZEROSCAN" "$NEWMNT" 2>"$WORK/netem.log" &
for _ in $(seq 100); do mountpoint -q "$NEWMNT" && break; sleep 0.1; done
mountpoint -q "$NEWMNT" || fail "mount: $(cat "$WORK/netem.log")"

# 1. Slow and lossy: 20-30 ms added each way, 2% of the packets lost.
echo 20 >"$WORK/delay"
loss 2
t0=$(now)
cp -r "$NEWMNT/neta/net1" "$NEWMNT/netb/" || fail "copy over the lossy link"
took=$(echo "$(now) - $t0" | bc)
defined hostb net1 || fail "net1 not defined on hostb"
[ "$(host_sha256 hostb raw /var/lib/libvirt/images/net1-vda.raw)" = \
  "$(host_sha256 hosta raw /var/lib/libvirt/images/net1-vda.raw)" ] || fail "net1 differs after the lossy link"
drops=$(dropped)
[ "$drops" -gt 0 ] || fail "no packet was lost: the link was not lossy"
ok "lossy link (20-30 ms each way, 2% loss: $drops packets dropped): copy completes in ${took} s, equal to the source"
clean_host hostb

# 2. The link drops everything: listing and reading fail within a bound.
echo 0 >"$WORK/delay"
loss 100
TIMED_FAIL_ERRORS="Host is down|Connection timed out|Input/output error"
sleep 2.5 # the listing cache
timed_fail "ls netb/ (link dropping everything)" ls "$NEWMNT/netb"
timed_fail "reading neta/net1/vda.raw" sha256sum "$NEWMNT/neta/net1/vda.raw"
ls "$NEWMNT/hosta" | grep_q -x web1 || fail "hosta (direct) stopped working"
head -c 1M "$NEWMNT/hosta/odd1/vda.raw" | wc -c | grep_q -x 1048576 || fail "reading hosta (direct) stopped working"
ok "hosta reached directly keeps working"

# 3. The link is back: the same operations succeed.
loss 0
wait_until 25 succeeds ls "$NEWMNT/netb" # netb comes back
[ "$(sha256sum <"$NEWMNT/neta/net1/vda.raw" | cut -d' ' -f1)" = \
  "$(host_sha256 hosta raw /var/lib/libvirt/images/net1-vda.raw)" ] || fail "reading net1 after the link is back"
ok "link back: listing and reading work again"
