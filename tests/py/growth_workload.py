"""Workloads for the growth tier's tests (tests/tracer/test_growth.c).

    growth_workload.py grow SECONDS      memory grows at known lines
    growth_workload.py steady SECONDS    allocates and frees, holds a fixed amount
    growth_workload.py burst MIB         faults MIB of new pages at once, then waits
    growth_workload.py exec SECONDS      grows (bytes) for SECONDS, then execs
                                         growth_short.py (another program, same PID)

The script prints "FILE <co_filename>" and one "SITE <name> <lineno>" per
line the test expects (found from the "# SITE:" markers below, so the numbers
are CPython's own), then "READY <pid>", and waits for a line on stdin before
it starts. When done it prints "MARK <name>=<value>..." and waits for a line
again (the test snapshots meanwhile); EOF or any line ends it.

grow: every tick (0.1 s) each site makes its memory grow and keeps it:
objects     a list of instances (pymalloc arenas)
bytes       a bytearray filled by repetition (malloc, filled by memset)
cache       a dict cache of strings (dict tables and pymalloc)
cbuf        a C buffer from libc malloc, filled with ctypes.memset
kernel      a bytes object read from /dev/zero: the kernel writes its pages
thread      a Python thread that keeps bytes objects
MARK gives, for the buffer sites, the bytes they requested in total.

steady: the same kinds of allocation, each freed soon after, so that what
is held stays within a fixed bound; MARK gives that bound (bytes).
"""
import ctypes
import os
import sys
import threading
import time

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]

TICK = 0.1
BYTES = 384 << 10
CBUF = 256 << 10
KREAD = 256 << 10
THREAD_BLOB = 96 << 10

keep = []
cache = {}
blobs = []
zero = open("/dev/zero", "rb", buffering=0)


class Item:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a
        self.b = None


def grow_objects():
    keep.append([Item(i) for i in range(8000)])                 # SITE:objects


def grow_bytes():
    keep.append(bytearray(b"\x5a") * BYTES)                     # SITE:bytes


def grow_cache():
    base = len(cache)
    for k in range(base, base + 3000):
        cache[k] = ("value-%d-" % k) * 4                         # SITE:cache


def grow_cbuf():
    p = libc.malloc(CBUF)
    ctypes.memset(p, 0x5A, CBUF)                                # SITE:cbuf
    keep.append(p)


def grow_kernel():
    keep.append(zero.read(KREAD))                               # SITE:kernel


def thread_main(stop):
    while not stop.is_set():
        blobs.append(b"\x7e" * THREAD_BLOB)                     # SITE:thread
        time.sleep(TICK)


def churn(buffers):
    """One tick of steady work: everything allocated here is freed by the
    next call (the previous tick's buffers are released first)."""
    for p in buffers:
        libc.free(p)
    buffers.clear()
    items = [Item(i) for i in range(8000)]                      # SITE:s_objects
    data = bytearray(b"\x5a") * BYTES                           # SITE:s_bytes
    table = {}
    for k in range(3000):
        table[k] = ("value-%d-" % k) * 4                         # SITE:s_cache
    p = libc.malloc(CBUF)
    ctypes.memset(p, 0x5A, CBUF)                                # SITE:s_cbuf
    buffers.append(p)
    blob = zero.read(KREAD)                                     # SITE:s_kernel
    return len(items) + len(data) + len(table) + len(blob)


def sites():
    with open(__file__, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if "# SITE:" in line and "SITE:\"" not in line:
                yield line.split("# SITE:")[1].strip(), lineno


def wait_line():
    return sys.stdin.readline()


def main():
    mode = sys.argv[1]
    print("FILE", grow_objects.__code__.co_filename)
    for name, lineno in sites():
        print("SITE", name, lineno)
    print("READY", os.getpid(), flush=True)
    if not wait_line():
        return
    marks = {}
    if mode == "grow":
        seconds = float(sys.argv[2])
        stop = threading.Event()
        t = threading.Thread(target=thread_main, args=(stop,))
        t.start()
        ticks = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            grow_objects()
            grow_bytes()
            grow_cache()
            grow_cbuf()
            grow_kernel()
            ticks += 1
            time.sleep(TICK)
        stop.set()
        t.join()
        marks = {"ticks": ticks, "bytes": ticks * BYTES, "cbuf": ticks * CBUF,
                 "kernel": ticks * KREAD, "thread": len(blobs) * THREAD_BLOB}
    elif mode == "steady":
        seconds = float(sys.argv[2])
        buffers = []
        ticks = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            churn(buffers)
            ticks += 1
            time.sleep(TICK / 4)
        marks = {"ticks": ticks}
    elif mode == "exec":
        end = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < end:
            grow_bytes()
            time.sleep(TICK)
        short = os.path.join(os.path.dirname(os.path.abspath(__file__)), "growth_short.py")
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, short, "0.3", "_exit", "after-exec"])
    elif mode == "burst":
        n = int(sys.argv[2]) << 20
        p = libc.malloc(n)
        ctypes.memset(p, 0x5A, n)                               # SITE:burst
        keep.append(p)
        marks = {"bytes": n}
    print("MARK", " ".join("%s=%d" % kv for kv in marks.items()), flush=True)
    wait_line()


if __name__ == "__main__":
    main()
