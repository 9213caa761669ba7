#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ssh ProxyCommand that adds latency: relay.py HOST PORT DELAY_MS.

Connects to HOST:PORT and relays stdin/stdout to it, every chunk held
DELAY_MS milliseconds (plus up to half of that again, at random) in each
direction, in order.  Throughput is not capped: chunks wait in a queue.
With packet loss on the path (nftables), this makes a slow, lossy link
on a kernel without sch_netem.
"""
import os
import queue
import random
import socket
import sys
import threading
import time


def pump(read, write, delay):
    q = queue.Queue()

    def sender():
        while True:
            due, data = q.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if data is None:
                write(None)
                return
            write(data)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    last = 0.0
    while True:
        data = read()
        due = max(last, time.monotonic() + delay * (1 + random.random() / 2))
        last = due
        q.put((due, data if data else None))
        if not data:
            break
    t.join()


def main():
    host, port, ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(None)
    delay = ms / 1000.0

    def to_sock(data):
        if data is None:
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(data)

    def to_stdout(data):
        if data is None:
            os.close(1)
        else:
            os.write(1, data)

    up = threading.Thread(
        target=pump, args=(lambda: os.read(0, 65536), to_sock, delay),
        daemon=True)
    up.start()
    pump(lambda: s.recv(65536), to_stdout, delay)


if __name__ == "__main__":
    main()
