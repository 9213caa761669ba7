#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# os.lseek(SEEK_DATA / SEEK_HOLE) on disk files of the mount answers from
# the allocation map: compared with the host's own file, read inside it.
import errno
import os
import subprocess
import sys

MNT = os.environ["MNT"]
TOP = os.environ["TOP"]
STATE = os.environ["STATE"]
WORK = os.environ["WORK"]


def fail(msg):
    print("FAIL: test-lseek.py: " + msg, file=sys.stderr)
    sys.exit(1)


def extents(path_or_fd):
    """[(data_start, data_end), ...] by SEEK_DATA/SEEK_HOLE."""
    fd = path_or_fd if isinstance(path_or_fd, int) else os.open(path_or_fd, os.O_RDONLY)
    size = os.fstat(fd).st_size
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    if fd is not path_or_fd:
        os.close(fd)
    return out


def host_extents(host, path):
    code = ("import os,sys\n"
            "fd=os.open(sys.argv[1],os.O_RDONLY); size=os.fstat(fd).st_size; off=0\n"
            "while off<size:\n"
            "  try: d=os.lseek(fd,off,os.SEEK_DATA)\n"
            "  except OSError: break\n"
            "  h=os.lseek(fd,d,os.SEEK_HOLE); print(d,h); off=h\n")
    out = subprocess.check_output(
        [TOP + "/tools/testhosts", "exec", STATE, host, "python3", "-c", code, path])
    return [tuple(map(int, l.split())) for l in out.decode().split("\n") if l]


def host_path(host, guest, dev):
    xml = subprocess.check_output(
        [TOP + "/tools/testhosts", "exec", STATE, host, "virsh", "-q", "-c",
         "qemu:///system", "dumpxml", "--inactive", guest])
    out = subprocess.run([TOP + "/tests/listdisks"], input=xml,
                         capture_output=True, check=True).stdout.decode()
    for line in out.splitlines():
        d, fmt, path = line.split()
        if d == dev:
            return path
    fail("no disk %s in %s" % (dev, guest))


def without_zero_blocks(path, data, block=64 << 10):
    """The data extents minus whole aligned blocks that are all zeros:
    what the host-side zero scan (nbd/zeroscan.c) reports."""
    fd = os.open(path, os.O_RDONLY)
    out = []
    for d, h in data:
        off = d
        while off < h:
            end = min(h, (off // block + 1) * block)
            whole = end - off == block
            zero = whole and os.pread(fd, block, off) == bytes(block)
            if not zero:
                if out and out[-1][1] == off:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((off, end))
            off = end
    os.close(fd)
    return out


f = MNT + "/hosta/web1/vda.raw"
got = extents(f)
inside = host_path("hosta", "web1", "vda")
host = host_extents("hosta", inside)
outside = STATE + "/hosta/lib/images/" + os.path.basename(inside)
want = without_zero_blocks(outside, host)
if got != want:
    fail("extents of %s:\n mount %s\n want  %s\n host  %s" % (f, got, want, host))
if len(got) < 3:
    fail("test disk should have several data extents, has %s" % got)
zeros = sum(h - d for d, h in host) - sum(h - d for d, h in got)
if zeros < (1 << 20):
    fail("web1/vda.raw should hold an allocated zero run; the scan found %d bytes" % zeros)
print("  ok: web1/vda.raw SEEK_DATA/SEEK_HOLE map equals the host file's data "
      "less its %d bytes of allocated zeros (zero scan): %d extents" % (zeros, len(got)))

# A host without the filter: the plain allocation map (the server starts
# without it).
import tempfile, time
# Its log goes into WORK, where tests/e2e/run looks for sanitizer reports.
mnt2 = tempfile.mkdtemp(dir=WORK)
log2 = open(mnt2 + ".log", "w")
proc = subprocess.Popen([TOP + "/kvmmigfs", "-f", "-o", "hosts=" + STATE + "/hosts.conf",
                         "-o", "zeroscan=/nonexistent/filter.so", mnt2], stderr=log2)
try:
    for _ in range(100):
        if os.path.ismount(mnt2):
            break
        time.sleep(0.1)
    plain = extents(mnt2 + "/hosta/web1/vda.raw")
finally:
    if subprocess.run(["fusermount3", "-u", mnt2]).returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", mnt2])
    proc.wait(timeout=30)
if plain != host:
    fail("without the filter on the host:\n mount %s\n host  %s" % (plain, host))
print("  ok: a host without the filter: the map equals the host file's (%d extents)" % len(plain))

fd = os.open(f, os.O_RDONLY)
size = os.fstat(fd).st_size
# Edge cases: inside a hole, inside data, at and past the end.
first_d, first_h = got[0]
if first_d > 0:
    if os.lseek(fd, 0, os.SEEK_HOLE) != 0:
        fail("SEEK_HOLE at 0 (a hole) should be 0")
if os.lseek(fd, first_d, os.SEEK_DATA) != first_d:
    fail("SEEK_DATA inside data should not move")
if os.lseek(fd, first_d, os.SEEK_HOLE) != first_h:
    fail("SEEK_HOLE from data should find the data's end")
for off in (size, size + 4096):
    try:
        os.lseek(fd, off, os.SEEK_DATA)
        fail("SEEK_DATA at %d (end %d) should fail" % (off, size))
    except OSError as e:
        if e.errno != errno.ENXIO:
            fail("SEEK_DATA past the end: %s, wanted ENXIO" % e)
last_d, last_h = got[-1]
if last_h == size and os.lseek(fd, last_d, os.SEEK_HOLE) != size:
    fail("SEEK_HOLE in the last extent should be the size")
os.close(fd)
print("  ok: SEEK_DATA/SEEK_HOLE edge cases (in hole, in data, at/past end)")

# A qcow2 on a backing file: the map is of the flattened view, and reads
# of ranges the map calls holes return zeros.
q = MNT + "/hosta/web1/vdb.qcow2"
qext = extents(q)
if not qext:
    fail("vdb.qcow2 reports no data at all")
with open(q, "rb") as fh:
    prev = 0
    for d, h in qext + [(os.path.getsize(q), None)]:
        if d > prev:
            fh.seek(prev)
            n = min(d - prev, 1 << 20)
            if fh.read(n) != bytes(n):
                fail("vdb.qcow2: hole at %d reads non-zero" % prev)
        if h is not None:
            prev = h
print("  ok: vdb.qcow2 (on backing file): %d data extents, holes read as zeros" % len(qext))
