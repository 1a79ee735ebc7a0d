#!/usr/bin/env python3
"""Prints the first port of a range of N (default 50) consecutive loopback
ports that are free right now, so scripts can lay out several nodes' ports."""
import random
import socket
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
for _ in range(200):
    base = random.randrange(20000, 50000, 10)
    socks = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            socks.append(s)
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit("no free port range found")
