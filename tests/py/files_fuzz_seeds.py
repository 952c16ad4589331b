"""Writes small seed pickles for tests/fuzz/fuzz_pickle into DIR, as the
running CPython pickles tracemalloc snapshots: Snapshot.dump() of real and
synthetic traces, every pickle protocol, an optimized (memo-less) variant.

usage: pythonX.Y files_fuzz_seeds.py DIR
"""
import os
import pickle
import pickletools
import sys
import tracemalloc

out = sys.argv[1]
ver = "py%d%d" % sys.version_info[:2]
# 3.8 writes 3-tuples (no total_nframe)
four = sys.version_info >= (3, 9)


def trace(domain, size, frames, total):
    return (domain, size, frames, total) if four else (domain, size, frames)


def write(name, data):
    with open(os.path.join(out, "%s-%s" % (ver, name)), "wb") as f:
        f.write(data)


a = ("/usr/lib/python3/a.py", 10)
b = ("b\udcff\u00e9.py", 20)
c = ("<frozen importlib._bootstrap>\U0001f600", 2**32 - 1)
synthetic = tracemalloc.Snapshot(
    [trace(0, 1024, (a, b), 2), trace(0, 48, (b,), 1), trace(389047, 4096, (a, b), 2),
     trace(2**32 - 1, 3000000000, (c, a, b, a), 9), trace(7, 2**40, (a,), 1)], 25)
for proto in range(pickle.HIGHEST_PROTOCOL + 1):
    write("proto%d.pickle" % proto, pickle.dumps(synthetic, proto))
write("optimized.pickle", pickletools.optimize(pickle.dumps(synthetic, 4)))
write("empty.pickle", pickle.dumps(tracemalloc.Snapshot([], 1), pickle.HIGHEST_PROTOCOL))
write("one.pickle", pickle.dumps(tracemalloc.Snapshot([trace(0, 1, (a,), 1)], 1),
                                 pickle.HIGHEST_PROTOCOL))

# real traces, few enough for a small seed
tracemalloc.start(4)
junk = [str(i) * 3 for i in range(20)]
snap = tracemalloc.take_snapshot()
tracemalloc.stop()
snap = snap.filter_traces([tracemalloc.Filter(True, __file__)])
path = os.path.join(out, "%s-real.pickle" % ver)
snap.dump(path)
