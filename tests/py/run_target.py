"""Attach target for tests/tracer/test_run_attach.c: a long-running program
driven by commands on stdin. Prints "READY PID" first, then one line per
command, then exits 0 at "exit" or end of input.

  alloc TAG N   keeps N new bytes objects, allocated on the BLOCKS line below;
                prints "EXPECT FILE LINENO SIZE COUNT", the blocks they add to
                that line (sys.getsizeof() of each: a repeated bytes object is
                exactly one block), and, when tracemalloc is tracing, what it
                saw on the line: "TRACEMALLOC FILE LINENO SIZE COUNT" (the
                test's calibration that the model is CPython's own figure)
  work N        prints "WORKING", then does N rounds of allocating and
                freeing and prints "WORK VALUE", a checksum a healthy
                interpreter always computes the same
"""
import os
import sys
import tracemalloc

KEPT = {}


def alloc(tag, n):
    seed = sum(tag.encode())
    blocks = [None] * n
    for i in range(n):
        blocks[i] = b"t" * (200 + seed % 50 + 3 * i)        # BLOCKS
    KEPT[tag] = blocks
    return blocks


def work(n):
    total, table = 0, {}
    for i in range(n):
        key = "k%d" % (i % 1000)
        table[key] = [key * (i % 5 + 1), i]
        total = (total * 31 + len(table[key][0]) + i) % 1000000007
    return total


with open(__file__) as f:
    LINE = next(n for n, text in enumerate(f, 1) if text.rstrip().endswith("# BLOCKS"))
FILE = os.path.abspath(__file__)
alloc("warm-up", 3)                 # the first call's one-time allocations
print("READY", os.getpid(), flush=True)
for command in sys.stdin:
    words = command.split()
    if not words or words[0] == "exit":
        break
    if words[0] == "alloc":
        before = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
        blocks = alloc(words[1], int(words[2]))
        print("EXPECT %s %d %d %d" % (FILE, LINE, sum(map(sys.getsizeof, blocks)), len(blocks)))
        if before is not None:
            diff = [d for d in tracemalloc.take_snapshot().compare_to(before, "lineno")
                    if (d.traceback[0].filename, d.traceback[0].lineno) == (FILE, LINE)]
            print("TRACEMALLOC %s %d %d %d" % (FILE, LINE, diff[0].size_diff if diff else 0,
                                               diff[0].count_diff if diff else 0))
    elif words[0] == "work":
        print("WORKING", flush=True)
        print("WORK", work(int(words[1])))
    sys.stdout.flush()
