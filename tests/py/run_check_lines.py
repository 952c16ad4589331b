"""Checks a snapshot against the exact figures a workload printed, for
tests/tracer/test_run_attach.c. Loads the snapshot with this interpreter's
tracemalloc (so the file must load) and groups by 'lineno'.

Usage: run_check_lines.py SNAPSHOT FILE_WITH_EXPECT_LINES
  each "EXPECT FILENAME LINENO SIZE COUNT" line of the file is checked:
  prints "OK ..." or "BAD ... got SIZE COUNT", then "CHECKED n=N bad=B".
"""
import sys
import tracemalloc

snap = tracemalloc.Snapshot.load(sys.argv[1])
by_line = {(s.traceback[0].filename, s.traceback[0].lineno): (s.size, s.count)
           for s in snap.statistics("lineno")}
n = bad = 0
with open(sys.argv[2]) as f:
    for text in f:
        words = text.split()
        if not words or words[0] != "EXPECT":
            continue
        filename, lineno, size, count = words[1], int(words[2]), int(words[3]), int(words[4])
        got = by_line.get((filename, lineno), (0, 0))
        n += 1
        if got != (size, count):
            bad += 1
        print("%s %s:%d expect size=%d count=%d got size=%d count=%d"
              % ("OK" if got == (size, count) else "BAD", filename, lineno, size, count, *got))
print("CHECKED n=%d bad=%d" % (n, bad))
