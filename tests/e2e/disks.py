# SPDX-License-Identifier: GPL-2.0-or-later
# Read a libvirt domain XML on stdin; print "DEV FORMAT PATH" for every disk
# kvmmigfs lists (device disk, type file or block, with a source).
import sys
import xml.etree.ElementTree as ET

dom = ET.parse(sys.stdin).getroot()
for d in dom.findall("./devices/disk"):
    if d.get("device", "disk") != "disk":
        continue
    kind = d.get("type", "file")
    src = d.find("source")
    if kind not in ("file", "block") or src is None:
        continue
    path = src.get("file" if kind == "file" else "dev")
    drv = d.find("driver")
    fmt = drv.get("type", "raw") if drv is not None else "raw"
    print(d.find("target").get("dev"), fmt, path)
