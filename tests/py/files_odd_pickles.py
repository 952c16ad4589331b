"""Writes valid but unusual snapshot pickles into DIR, for the aggregated
loading tests (tests/unit/test_aggregate.c): what Snapshot.dump() never writes
but pickle.load() reads all the same.

  extra-list: the Snapshot's state holds another list of traces before
      'traces' (the reader's first list is not the snapshot's);
  shared: one trace tuple object appended several times (memo references to
      a trace);
  split: the traces of one traceback made of several equal but distinct
      frames tuples (no memo sharing between them);
  domains: one traceback with many domains, and many total_nframe values;
  big: sizes of 2**28 and more (past the reader's memo placeholders), almost
      2**63 in total.
Each with every pickle protocol.

usage: python3 files_odd_pickles.py DIR
"""
import os
import pickle
import sys
import tracemalloc

out = sys.argv[1]
four = sys.version_info >= (3, 9)


def trace(domain, size, frames, total):
    return (domain, size, frames, total) if four else (domain, size, frames)


def snapshot(traces, limit, extra=None):
    s = tracemalloc.Snapshot.__new__(tracemalloc.Snapshot)
    if extra is not None:
        s.__dict__["extra"] = extra
    s.__dict__["traces"] = tracemalloc._Traces(traces)
    s.__dict__["traceback_limit"] = limit
    return s


a = ("a.py", 1)
b = ("b\udcff.py", 2)
c = ("c.py", 3)
ab = (a, b)
cases = {}
t1 = trace(0, 100, ab, 2)
t2 = trace(1, 7, (c,), 1)
cases["extra-list"] = snapshot([t1, t2, trace(0, 5, ab, 2)], 5,
                               extra=[trace(3, 1, (c, a), 4), t2, t1])
cases["shared"] = snapshot([t1, t1, t2, t1, t2, trace(0, 1, ab, 2)], 5)
cases["split"] = snapshot([trace(d % 3, 10 + i, tuple(list(ab)), 2 if i % 4 else 3)
                           for i, d in enumerate(range(40))], 5)
cases["domains"] = snapshot([trace(d, d + 1, (c,) if d % 2 else ab, 1 + d % 5)
                             for d in list(range(20)) * 3], 5)
cases["big"] = snapshot([trace(0, 2**28, ab, 2), trace(0, 2**28 - 1, ab, 2),
                         trace(2, 2**61, (c,), 1), trace(2, 2**61 - 2**28, (c,), 1),
                         trace(0, 2**62 - 2**29, ab, 2)], 5)
for name, snap in cases.items():
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        with open(os.path.join(out, "%s-proto%d.pickle" % (name, proto)), "wb") as f:
            pickle.dump(snap, f, proto)
