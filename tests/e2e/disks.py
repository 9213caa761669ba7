# SPDX-License-Identifier: GPL-2.0-or-later
# Read a libvirt domain XML on stdin; print "DEV FORMAT PATH" for every disk
# kvmmigfs lists.  No rule of its own: it runs tests/listdisks, built from
# the mount's code (fs/domxml.c domxml_disk_rule).  Kept only for the tests
# that still call it by this name; new callers use host_disks (lib.sh) or
# tests/listdisks.
import os
import sys

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.execv(os.path.join(top, "tests", "listdisks"), ["listdisks"] + sys.argv[1:])
