#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A running guest's disk is changing: opening it fails with EBUSY, unless
# the mount has -o allow_running.  Its folder and XML stay readable.
. "$(dirname "$0")/lib.sh"

state=$(onhost hosta virsh -c qemu:///system domstate run1)
[ "$state" = running ] || fail "run1 should be running, is '$state'"

log_mark
expect_fail "Device or resource busy" cat "$MNT/hosta/run1/vda.raw"
log_grep "hosta/run1/vda.raw: open: EBUSY: the guest is running" >/dev/null ||
	fail "no log line naming host/guest/disk and the cause"
ok "the log names host, guest, disk and cause"
grep -q "<name>run1</name>" "$MNT/hosta/run1/domain.xml" || fail "run1's XML unreadable"
stat "$MNT/hosta/run1/vda.raw" >/dev/null || fail "stat of a running guest's disk failed"
ok "a running guest's folder, XML and stat still work"

mount_extra -o allow_running
trap unmount_extra EXIT
read -r _ _ path < <(host_disks hosta run1 | grep '^vda ')
got=$(sha256sum <"$NEWMNT/hosta/run1/vda.raw" | cut -d' ' -f1)
want=$(onhost hosta sha256sum "$path" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "allow_running read $got, host file is $want"
ok "with -o allow_running the disk reads (sha256 equal)"

# A guest started after the listing was cached is still refused.
onhost hosta virsh -q -c qemu:///system start web1 >/dev/null
expect_fail "Device or resource busy" cat "$MNT/hosta/web1/vda.raw"
onhost hosta virsh -q -c qemu:///system destroy web1 >/dev/null
cat "$MNT/hosta/web1/vda.raw" >/dev/null || fail "web1 unreadable after it stopped"
ok "the running check is made at open, not from the cache"
