"""Exactness workload: run under in-process tracemalloc while tmbpf attaches.

stdin protocol (one line each): after READY the tracer attaches and sends a
line; the workload runs phase2 and prints MARK; the tracer snapshots and sends
the path of its blocks file; the workload compares and prints one RESULT line.

Blocks file: per block a line "domain address size nframe total_nframe", then
nframe lines "lineno filename" (most recent first). Blocks are compared by
(domain, size, frames, total_nframe); 3.8's tracemalloc has no total_nframe.
"""
import ctypes
import os
import sys
import tracemalloc

NFRAME = int(sys.argv[1])
tracemalloc.start(NFRAME)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracer_exact_phase2 as phase2          # imported before the tracer attaches

PHASE2 = os.path.abspath(phase2.__file__)
if PHASE2.endswith(".pyc"):
    PHASE2 = PHASE2[:-1]

get_tb = ctypes.pythonapi._PyTraceMalloc_GetTraceback
get_tb.restype = ctypes.py_object
get_tb.argtypes = [ctypes.c_uint, ctypes.c_void_p]


def in_phase2(frames):
    return any(f == PHASE2 for f, _ in frames)


# Both sides start together: tracemalloc forgets what it traced so far (a
# block allocated before the tracer attached and reused from a free list in
# phase 2 would be re-attributed by tracemalloc, but is not "allocated since
# both started"), after a full collection has emptied the free lists.
import gc
gc.collect()
tracemalloc.clear_traces()
print("READY", os.getpid(), flush=True)
sys.stdin.readline()
phase2.run()
# No collection from here on: the comparison below allocates enough to
# trigger one, which would free phase 2's cyclic garbage (its threads'
# objects) after both snapshots and reuse their addresses for the parsing,
# so that the lookup by address would find the parser's traceback there.
gc.disable()
snap = tracemalloc.take_snapshot()
print("MARK", flush=True)
path = sys.stdin.readline().strip()

ours = []
with open(path) as f:
    lines = iter(f.read().splitlines())
    for head in lines:
        domain, addr, size, nframe, total = (int(x) for x in head.split())
        frames = []
        for _ in range(nframe):
            lineno, filename = next(lines).split(" ", 1)
            frames.append((filename, int(lineno)))
        ours.append((domain, addr, size, tuple(frames), total))

# blocks allocated since both started: those phase2's code allocated
ours = [b for b in ours if in_phase2(b[3])]
theirs = [t for t in snap.traces._traces if in_phase2(t[2])]


HAS_TOTAL = sys.version_info >= (3, 9)


def key(domain, size, frames, total):
    return (domain, size, frames, total if HAS_TOTAL else None)


from collections import Counter
c_ours = Counter(key(d, s, fr, tot) for d, _, s, fr, tot in ours)
c_theirs = Counter(key(t[0], t[1], t[2], t[3] if HAS_TOTAL else None) for t in theirs)
common = c_ours & c_theirs
n_common = sum(common.values())
b_common = sum(k[1] * v for k, v in common.items())
n_ours, n_theirs = len(ours), len(theirs)
b_ours = sum(b[2] for b in ours)
b_theirs = sum(t[1] for t in theirs)

# every block of ours must be traced by tracemalloc at the same address and
# with the same traceback
addr_ok = 0
addr_missing = Counter()        # not traced by tracemalloc at that address
addr_other = Counter()          # traced there with another traceback
for domain, addr, size, frames, _ in ours:
    tb = get_tb(domain, addr)
    if tb is not None and tuple(tb) == frames:
        addr_ok += 1
    elif tb is None:
        addr_missing[(size, frames[:2])] += 1
    else:
        addr_other[(size, frames[:2], tuple(tb)[:2])] += 1

# where they differ, for the test log
diff_ours = (c_ours - c_theirs).most_common(5)
diff_theirs = (c_theirs - c_ours).most_common(5)
print("RESULT blocks_common=%d blocks_ours=%d blocks_tracemalloc=%d bytes_common=%d "
      "bytes_ours=%d bytes_tracemalloc=%d address_match=%d"
      % (n_common, n_ours, n_theirs, b_common, b_ours, b_theirs, addr_ok), flush=True)
for k, v in diff_ours:
    print("ONLY_OURS %d x domain=%d size=%d total=%s %s" % (v, k[0], k[1], k[3], k[2][:2]), flush=True)
for k, v in diff_theirs:
    print("ONLY_TRACEMALLOC %d x domain=%d size=%d total=%s %s" % (v, k[0], k[1], k[3], k[2][:2]), flush=True)
print("ADDRESS_MISMATCH %d not traced there, %d with another traceback"
      % (sum(addr_missing.values()), sum(addr_other.values())), flush=True)
for (size, frames), v in addr_missing.most_common(3):
    print("ADDRESS_NOT_TRACED %d x size=%d ours=%s" % (v, size, frames), flush=True)
for (size, frames, tb), v in addr_other.most_common(3):
    print("ADDRESS_OTHER_TRACEBACK %d x size=%d ours=%s tracemalloc=%s" % (v, size, frames, tb),
          flush=True)
