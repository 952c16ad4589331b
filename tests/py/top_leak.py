#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A process that leaks at one known line, for tests/tracer/test_top.c.

Prints READY, then appends a 4 KiB bytearray to a list every few
milliseconds (the line marked TOP_LEAK_LINE) until its standard input is
closed. Runs on CPython 3.8 and later.
"""
import select
import sys

keep = []
print("READY", flush=True)
while True:
    keep.append(bytearray(4096))  # TOP_LEAK_LINE
    ready, _, _ = select.select([sys.stdin], [], [], 0.005)
    if ready and not sys.stdin.read(1):
        break
