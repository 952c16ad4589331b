"""(e) Fast memory growth: about 200 MiB/s of new, touched memory kept alive for about 10 s,
through Python objects (small tuples/str/int in pymalloc arenas, 8 KiB bytearrays from the
malloc heap, 256 KiB bytearrays that malloc maps) with a fixed amount of Python work between
allocations. Written for scripts/bench-growth (tmbpf); stdlib only.

Usage: wl_grow.py [MIB [WORK]]: grow by about MIB MiB (default 2000); WORK is the filler work
per MiB (default 70000: about 200 MiB/s with Debian's python3.11 on a 2-core Xeon VM;
measure it, the rate is printed).
The work per MiB is fixed, not paced, so a slower (traced) run shows as a longer loop time.
Same measurement protocol as the other workloads (WAIT_FOR, SELF_TIME, WAIT_AFTER); the
achieved rate, from the resident set size, is printed on stderr as GROWTH.
"""
import gc, os, sys, time

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
WORK = int(sys.argv[2]) if len(sys.argv) > 2 else 70000
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


if os.environ.get("WAIT_FOR"):
    print("PID", os.getpid(), "waiting", flush=True)
    while not os.path.exists(os.environ["WAIT_FOR"]):
        time.sleep(0.01)
_t0, _c0 = time.perf_counter(), time.process_time()
rss0 = rss()

# nothing here makes cycles; without the collector the rate stays steady as the heap grows
# (its full collections walk every kept container)
gc.disable()
kept = []
check = 0
for mib in range(MIB):
    # 512 KiB in two 256 KiB buffers (above malloc's mmap threshold: fresh mappings)
    kept.append(bytearray(256 * 1024))
    kept.append(bytearray(256 * 1024))
    # 256 KiB in 32 buffers of 8 KiB (malloc's heap: brk)
    kept.extend(bytearray(8 * 1024) for _ in range(32))
    # about 256 KiB of small objects (pymalloc arenas): tuples of an int and a short str
    base = mib * 1800
    kept.append([(base + i, str(base + i)) for i in range(1800)])
    # fixed Python work between allocations; creates only short-lived objects
    acc = 0
    for i in range(WORK):
        acc += (i * i) % 7
    check += acc

loop = time.perf_counter() - _t0
grown = rss() - rss0
print("grow", MIB, len(kept), check)
if os.environ.get("SELF_TIME"):
    print(f"SELF_TIME wall={loop:.3f} cpu={time.process_time() - _c0:.3f}", file=sys.stderr)
print(f"GROWTH rss=+{grown / 2**20:.0f}MiB in {loop:.2f}s = {grown / 2**20 / loop:.0f}MiB/s",
      file=sys.stderr)
if os.environ.get("WAIT_AFTER"):
    print("PID", os.getpid(), "done", flush=True)
    while not os.path.exists(os.environ["WAIT_AFTER"]):
        time.sleep(0.01)
