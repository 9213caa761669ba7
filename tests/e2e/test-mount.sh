#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Mounting like any filesystem: an /etc/fstab line (mount -T FSTAB) and
# mount -t fuse.kvmmigfs, through mount.fuse3; umount.  Without a hosts
# file, on a machine with a libvirtd, the mount shows that libvirt as one
# host named after the machine.
. "$(dirname "$0")/lib.sh"

MP=$WORK/fstab-mnt
mkdir "$MP"
cleanup() {
	mountpoint -q "$MP" && { umount "$MP" || umount -l "$MP"; }
	onhost hosta sh -c 'mountpoint -q /run/kmf-m && fusermount3 -u /run/kmf-m
		mountpoint -q /etc/kvmmigfs && umount /etc/kvmmigfs; true' </dev/null || :
}
trap cleanup EXIT

# 1. An fstab line, and mount -t fuse.kvmmigfs.  mount(8) clears PATH, so
#    mount.fuse3 finds "kvmmigfs" in the default one (/usr/local/bin,
#    where make install puts it): here a private mount namespace has a
#    /usr/local/bin holding a kvmmigfs that starts this tree's with the
#    test hosts' ssh wrapper first on PATH.
mkdir "$WORK/bin"
printf '#!/bin/sh\nPATH=%s:$PATH exec %s "$@"\n' "$STATE/bin" "$TOP/kvmmigfs" >"$WORK/bin/kvmmigfs"
chmod +x "$WORK/bin/kvmmigfs"
printf 'kvmmigfs %s fuse.kvmmigfs hosts=%s,zeroscan=%s,state=%s 0 0\n' \
	"$MP" "$STATE/hosts.conf" "$ZEROSCAN" "$WORK/state" >"$WORK/fstab"
out=$(unshare -m --propagation private sh -c '
	set -e
	mount --bind "$1" /usr/local/bin
	mount -T "$2" "$3"
	ls "$3"; echo --; ls "$3/hosta"; echo --
	umount "$3"
	if mountpoint -q "$3"; then echo still mounted; fi
	mount -t fuse.kvmmigfs -o "hosts=$4,state=$5" kvmmigfs "$3"
	ls "$3"
	umount "$3"' sh "$WORK/bin" "$WORK/fstab" "$MP" "$STATE/hosts.conf" "$WORK/state" 2>&1) ||
	fail "mount from fstab or -t fuse.kvmmigfs: $out"
[ "$(echo "$out" | sed -n 1,2p | tr '\n' ' ')" = "hosta hostb " ] || fail "the fstab mount shows: $out"
echo "$out" | sed -n '/^--$/,/^--$/p' | grep_q -x web1 || fail "no web1 on hosta: $out"
echo "$out" | grep_q "still mounted" && fail "still mounted after umount"
[ "$(echo "$out" | tail -n 2 | tr '\n' ' ')" = "hosta hostb " ] || fail "mount -t fuse.kvmmigfs shows: $out"
ok "fstab line ($(cut -d' ' -f1,3 "$WORK/fstab")) and mount -t fuse.kvmmigfs: mounted, listed, unmounted"

# 3. No hosts file, inside hosta (its own libvirtd, hostname "hosta"): an
#    /etc/kvmmigfs of this machine is hidden there by an empty tmpfs.
out=$(onhost hosta sh -c '
	set -e
	[ -d /etc/kvmmigfs ] && mount -t tmpfs tmpfs /etc/kvmmigfs
	mkdir -p /run/kmf-m
	"$1" -o state=/run/kmf-state /run/kmf-m 2>/run/kmf-m.log
	ls /run/kmf-m; echo --; ls /run/kmf-m/hosta; echo --; cat /run/kmf-m.log
	fusermount3 -u /run/kmf-m' sh "$TOP/kvmmigfs" </dev/null) || fail "mount without a hosts file: $out"
hosts=$(echo "$out" | sed -n '1,/^--$/p' | grep -v -- -- | tr '\n' ' ')
[ "$hosts" = "hosta " ] || fail "without a hosts file the mount shows '$hosts': $out"
echo "$out" | sed -n '/^--$/,/^--$/p' | grep_q -x web1 || fail "hosta's guests not shown: $out"
echo "$out" | grep_q "no hosts file /etc/kvmmigfs/hosts.conf: this machine's libvirt (qemu:///system) shows as host hosta" ||
	fail "no message saying so: $out"
ok "no hosts file: this machine's libvirt shows as host hosta, with its guests"

# 4. make install: the daemon, kvmmigfs-status and both man pages, which
#    render.
make -s -C "$TOP" install DESTDIR="$WORK/inst" PREFIX=/usr/local >/dev/null || fail "make install"
for f in bin/kvmmigfs bin/kvmmigfs-status bin/kvmmigfs-hosts; do
	[ -x "$WORK/inst/usr/local/$f" ] || fail "make install left out $f"
done
man -P cat -l "$WORK/inst/usr/local/share/man/man8/kvmmigfs.8" 2>&1 | grep_q -E "^ +kvmmigfs /mnt/kvm fuse.kvmmigfs hosts=" ||
	fail "kvmmigfs(8) does not render: $(man -P cat -l "$WORK/inst/usr/local/share/man/man8/kvmmigfs.8" 2>&1 | head -5)"
for p in status hosts; do man -P cat -l "$WORK/inst/usr/local/share/man/man1/kvmmigfs-$p.1" 2>&1 | grep_q "^EXIT STATUS" ||
	fail "kvmmigfs-$p(1) does not render"; done
"$WORK/inst/usr/local/bin/kvmmigfs-status" --help | grep_q "usage: kvmmigfs-status" || fail "kvmmigfs-status --help"
ok "make install: kvmmigfs, kvmmigfs-status, kvmmigfs-hosts and their man pages, which render"
