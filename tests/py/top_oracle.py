#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The screen `tmbpf top` must draw for three CPython pickles taken at the
start, the previous refresh and now (tests/unit/test_top.c), computed with
tracemalloc: the rows are now.statistics(KEY_TYPE, CUMULATIVE), and their
changes the size_diff of now.compare_to(previous) and now.compare_to(start)
for the same traceback. Runs on CPython 3.8 and later.

  top_oracle.py START PREV NOW [--key-type T] [--cumulative] [--limit N]
                [--refresh N] [--interval S] [--width W] [--height H]

Pickles carry no capture information: the header says so (PID unknown,
traced memory unknown). Output: the screen's bytes, UTF-8.
"""
import argparse
import linecache
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fg_oracle import escape  # noqa: E402  (the display escapes of flamegraph.h)

NUMBERS_WIDTH = 47


def fit(line, width):
    return line[:width] if width else line


def location(frame, with_line, prefix, room):
    loc = escape(frame.filename, False)
    if with_line:
        loc += ":%d" % frame.lineno
    room = (room - len(prefix) if room > len(prefix) else 1) if room else 0
    if room and len(loc) > room:
        keep = room - 2 if room > 2 else 0
        return prefix + ".." + loc[len(loc) - keep:]
    text = prefix + loc
    if with_line and "\0" not in frame.filename:
        try:
            src = linecache.getline(frame.filename, frame.lineno).strip()
        except UnicodeEncodeError:
            src = ""    # a lone surrogate that is not an undecodable byte: no file
        if src:
            text += ": " + escape(src, False)
    return text


def diffs_by_key(new, old, key_type, cumulative):
    return {d.traceback: d.size_diff for d in new.compare_to(old, key_type, cumulative)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("start")
    p.add_argument("prev")
    p.add_argument("now")
    p.add_argument("--key-type", default="lineno")
    p.add_argument("--cumulative", action="store_true")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--refresh", type=int, default=2)
    p.add_argument("--interval", default=None)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--height", type=int, default=0)
    o = p.parse_args()
    start, prev, now = (tracemalloc.Snapshot.load(x) for x in (o.start, o.prev, o.now))
    stats = now.statistics(o.key_type, o.cumulative)
    since_prev = diffs_by_key(now, prev, o.key_type, o.cumulative)
    since_start = diffs_by_key(now, start, o.key_type, o.cumulative)
    n = len(stats)
    shown = min(o.limit, n) if o.limit else n
    traceback_rows = o.key_type == "traceback"
    if o.height:
        left = max(o.height - (3 + 3 + 2), 0)
        lines = 0
        for i in range(shown):
            lines += len(stats[i].traceback) if traceback_rows else 1
            if lines > left:
                shown = i
                break
    room = max(o.width - NUMBERS_WIDTH, 1) if o.width else 0
    out = []
    head = "tmbpf top - PID unknown, refresh %d" % o.refresh
    if o.interval:
        head += " every %s s" % o.interval
    out.append(head)
    out.append("CPython version unknown, tracemalloc snapshot, coverage unknown")
    out.append("Traced memory: unknown; tmbpf memory: unknown")
    noun = {"lineno": "lines", "filename": "files", "traceback": "tracebacks"}[o.key_type]
    total = sum(t.size for t in now.traces)
    out.append("Top %d of %d %s%s; %s in %d trace%s" % (
        shown, n, noun, " (cumulative)" if o.cumulative else "",
        tracemalloc._format_size(total, False), len(now.traces),
        "" if len(now.traces) == 1 else "s"))
    out.append("")
    out.append("%10s %11s %12s %9s  %s" % ("SIZE", "CHANGE", "SINCE START", "COUNT",
                                         "FILE" if o.key_type == "filename" else "LINE"))
    for st in stats[:shown]:
        tb = st.traceback
        frames = list(reversed(tb))             # most recent first
        row = "%10s %11s %12s %9d  " % (
            tracemalloc._format_size(st.size, False),
            tracemalloc._format_size(since_prev[tb], True),
            tracemalloc._format_size(since_start[tb], True), st.count)
        row += location(frames[0], o.key_type != "filename", "", room)
        out.append(row)
        if traceback_rows:
            for f in frames[1:]:
                out.append(" " * NUMBERS_WIDTH + location(f, True, "from ", room))
    if shown < n:
        other = sum(st.size for st in stats[shown:])
        out.append("%d other: %s" % (n - shown, tracemalloc._format_size(other, False)))
    text = "".join(fit(line, o.width) + "\n" for line in out)
    sys.stdout.buffer.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
