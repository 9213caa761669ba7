#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""crcref: zlib's crc32() of a file or block device, start to end, and of
each 1 MiB block -- a reference for kvmmigfs-crc written independently of
it: data is read (SEEK_DATA/SEEK_HOLE) and fed to zlib.crc32; a hole of n
bytes advances the CRC register by the GF(2) matrix of one zero byte
raised to the n-th power, so an 8 TiB sparse file takes milliseconds.

usage: crcref.py [-b] PATH   prints "total CRC" (with -b first "BLOCK CRC"
                             for every block that holds data)
"""
import os
import stat
import sys
import zlib

POLY = 0xEDB88320
BLOCK = 1 << 20


def mat_vec(m, v):
    r, i = 0, 0
    while v:
        if v & 1:
            r ^= m[i]
        v >>= 1
        i += 1
    return r


def mat_mul(a, b):
    return [mat_vec(a, col) for col in b]


# ZERO: the register update of one zero byte, as 32 columns.
def one_zero_byte():
    cols = []
    for bit in range(32):
        s = 1 << bit
        for _ in range(8):
            s = (s >> 1) ^ POLY if s & 1 else s >> 1
        cols.append(s)
    return cols


ZERO = one_zero_byte()


def skip_zeros(crc, n):
    """crc32 of (what gave crc) followed by n zero bytes."""
    s = crc ^ 0xFFFFFFFF
    m = ZERO
    while n:
        if n & 1:
            s = mat_vec(m, s)
        n >>= 1
        if n:
            m = mat_mul(m, m)
    return s ^ 0xFFFFFFFF


def extents(fd, size, is_file):
    if not is_file:
        return [(0, size)]
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    return out


def main():
    blocks = sys.argv[1] == "-b"
    path = sys.argv[-1]
    fd = os.open(path, os.O_RDONLY)
    st = os.fstat(fd)
    is_file = stat.S_ISREG(st.st_mode)
    size = st.st_size if is_file else os.lseek(fd, 0, os.SEEK_END)
    crc, pos = 0, 0
    data_blocks = set()
    for d, h in extents(fd, size, is_file):
        crc = skip_zeros(crc, d - pos)
        off = d
        while off < h:
            n = min(h - off, 8 << 20)
            crc = zlib.crc32(os.pread(fd, n, off), crc)
            off += n
        data_blocks.update(range(d // BLOCK, (h - 1) // BLOCK + 1))
        pos = h
    crc = skip_zeros(crc, size - pos)
    if blocks:
        for b in sorted(data_blocks):
            n = min(BLOCK, size - b * BLOCK)
            print("%d %08x" % (b, zlib.crc32(os.pread(fd, n, b * BLOCK))))
    print("total %08x" % crc)


main()
