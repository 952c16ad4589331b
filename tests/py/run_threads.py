"""Workload (tests/tracer/test_run_attach.c): 8 threads allocating at once.

Each thread keeps 300 bytes objects of its own sizes (allocated on one line,
BLOCKS below) and churns temporaries that are freed. At the end the program
prints what tracemalloc must find on that line, from sys.getsizeof() (a bytes
object made by repetition is one block of exactly that size, and nothing else
is allocated there; the test checks this against PYTHONTRACEMALLOC too):
  EXPECT FILENAME LINENO SIZE COUNT
"""
import sys
import threading

NTHREADS, NBLOCKS = 8, 300
KEPT = [None] * NTHREADS
start = threading.Barrier(NTHREADS)


def worker(t):
    blocks = [None] * NBLOCKS
    start.wait()                            # all 8 allocate at the same time
    for i in range(NBLOCKS):
        blocks[i] = b"k" * (500 + 37 * t + i)              # BLOCKS
        temporary = [str(i)] * (t + 2)      # freed at once
        del temporary
    KEPT[t] = blocks


threads = [threading.Thread(target=worker, args=(t,)) for t in range(NTHREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()

with open(__file__) as f:
    line = next(n for n, text in enumerate(f, 1) if text.rstrip().endswith("# BLOCKS"))
size = sum(sys.getsizeof(b) for blocks in KEPT for b in blocks)
print("EXPECT %s %d %d %d" % (__file__, line, size, NTHREADS * NBLOCKS))
