"""Snapshots dumped by the running CPython, and what CPython reads back from them.

usage: pythonX.Y files_dump.py DIR

For tests/unit/test_pickle.c and test_roundtrip.c. Writes, for each case NAME,
DIR/NAME.pickle (Snapshot.dump(), or pickle.dump() with another protocol) and
DIR/NAME.expected: the traces that tracemalloc.Snapshot.load() returns for
that file, in the line format below, so that the C side compares every field
with what CPython itself sees. Prints one line per case:

    case NAME OPCODE,OPCODE,...     (the pickle opcodes the file uses)

Expected format (strings as hex of their UTF-8 'surrogatepass' bytes, so that
surrogate-escaped filenames and NUL bytes survive):

    limit TRACEBACK_LIMIT
    trace DOMAIN SIZE TOTAL_NFRAME|- NFRAME     ('-': 3.8's 3-tuples)
    frame LINENO HEX                            NFRAME lines, most recent first
    end NTRACES
"""
import os
import pickle
import pickletools
import sys
import tracemalloc

out = sys.argv[1]
# 3.8's snapshots hold 3-tuples (no total_nframe)
FOUR = sys.version_info >= (3, 9)


def trace(domain, size, frames, total):
    return (domain, size, frames, total) if FOUR else (domain, size, frames)


def expected_text(snap):
    lines = ["limit %d" % snap.traceback_limit]
    for t in snap.traces._traces:
        domain, size, frames = t[:3]
        total = t[3] if len(t) > 3 else None
        lines.append("trace %d %d %s %d" % (domain, size, "-" if total is None else total,
                                             len(frames)))
        for filename, lineno in frames:
            lines.append("frame %d %s" % (lineno, filename.encode("utf-8", "surrogatepass").hex()))
    lines.append("end %d" % len(snap.traces._traces))
    return "\n".join(lines) + "\n"


def emit(name, snap=None, data=None):
    path = os.path.join(out, name + ".pickle")
    if data is None:
        snap.dump(path)         # what tmbpf must read: Snapshot.dump() itself
    else:
        with open(path, "wb") as f:
            f.write(data)
    # the truth is what CPython loads back from the file
    loaded = tracemalloc.Snapshot.load(path)
    with open(os.path.join(out, name + ".expected"), "w") as f:
        f.write(expected_text(loaded))
    with open(path, "rb") as f:
        ops = sorted({op.name for op, arg, pos in pickletools.genops(f.read())})
    print("case %s %s" % (name, ",".join(ops)))


# ---- real traces -------------------------------------------------------------
def alloc_at_depth(depth, keep):
    if depth:
        return alloc_at_depth(depth - 1, keep)
    keep.append(bytearray(100 + len(keep)))
    return keep


# code whose filename is not plain ASCII, and one with an undecodable byte
# (how Python names a file whose name is not UTF-8: surrogate escapes)
ODD_NAMES = ["/tmp/mod\u00e9\u4e2d.py", "/tmp/bad\udcff\udc80name.py"]
ODD_SRC = "keep.append([bytes(64) for i in range(3)])\nkeep.append('x' * 1000)\n"


def real_workload():
    keep = []
    for depth in range(0, 40, 3):
        alloc_at_depth(depth, keep)
    for name in ODD_NAMES:
        exec(compile(ODD_SRC, name, "exec"), {"keep": keep})
    return keep


for limit in (25, 1):
    tracemalloc.start(limit)
    kept = real_workload()
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    emit("real_limit%d" % limit, snap)
    del kept

# ---- synthetic traces ----------------------------------------------------------
A = ("/usr/lib/python3/a.py", 10)
B = ("b\udcff\u00e9.py", 20)
C = ("<frozen importlib._bootstrap>", 2**32 - 1)
D = ("", 0)
E = ("\U0001f600\x00.py", 7)

emit("empty", tracemalloc.Snapshot([], 1))
emit("one", tracemalloc.Snapshot([trace(0, 1, (A,), 1)], 1))
emit("big_values", tracemalloc.Snapshot([
    trace(0, 2**31, (A, B), 2),
    trace(0, 2**32, (B,), 1),
    trace(389047, 2**32 + 1, (A, B), 2),
    trace(2**32 - 1, 2**40, (C, A, B, A), 65535),
    trace(7, 2**62, (D, E), 2**32 - 2),
    trace(1, 0, (E,), 1),
], 65535))
# sizes adding up to exactly INT64_MAX: the largest snapshot tmbpf accepts
emit("max_total", tracemalloc.Snapshot([
    trace(0, 2**62, (A,), 1), trace(0, 2**62 - 1, (B,), 1)], 3))
for limit in (0, 2**31 - 1, 2**32 - 1):
    emit("limit_%d" % limit, tracemalloc.Snapshot([trace(0, 5, (A,), 1)], limit))

# enough traces, files and frames for every opcode a big dump uses: APPENDS in
# several batches, LONG_BINGET (memo beyond 255), several FRAMEs
files = ["/srv/app/pkg%d/module_%d.py" % (i % 7, i) for i in range(60)]
frames = [(files[i % len(files)], 1 + (i * 37) % 5000) for i in range(400)]
tbs = []
for i in range(150):
    n = 1 + i % 9
    tbs.append(tuple(frames[(i * 13 + k * 7) % len(frames)] for k in range(n)))
many = [trace((0, 0, 0, 389047, 5)[i % 5], 16 + (i * 7919) % 100000 + (2**33 if i % 97 == 0 else 0),
              tbs[(i * 31) % len(tbs)], len(tbs[(i * 31) % len(tbs)]) + i % 3)
        for i in range(2600)]
emit("many", tracemalloc.Snapshot(many, 9))

# the same snapshot with every pickle protocol, and without a memo
small = tracemalloc.Snapshot([trace(0, 10, (A, B), 2), trace(389047, 3000000000, (A,), 1),
                              trace(5, 48, (A, B), 2), trace(0, 1, (E, D, C, A), 4)], 5)
for proto in range(pickle.HIGHEST_PROTOCOL + 1):
    emit("proto%d" % proto, data=pickle.dumps(small, proto))
emit("optimized", data=pickletools.optimize(pickle.dumps(small, 4)))
emit("optimized_many", data=pickletools.optimize(pickle.dumps(tracemalloc.Snapshot(many, 9), 2)))


# a hand-written pickle without memo, FRAME or batching (the writer recipe of
# cpython-internals.md C.11): protocol 2, GLOBAL, one MARK ... APPENDS with
# every trace, every string and tuple written out in full
def recipe_pickle(snap):
    def uint(v):
        if v < 2**31:
            return b"J" + v.to_bytes(4, "little")
        n = (v.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + v.to_bytes(n, "little")

    def ustr(s):
        b = s.encode("utf-8", "surrogatepass")
        return b"X" + len(b).to_bytes(4, "little") + b

    out = [b"\x80\x02ctracemalloc\nSnapshot\n)\x81}(", ustr("traces"),
           b"ctracemalloc\n_Traces\n)\x81}", ustr("_traces"), b"](" if snap.traces._traces else b"]"]
    for t in snap.traces._traces:
        out.append(b"(" + uint(t[0]) + uint(t[1]) + b"(")
        for filename, lineno in t[2]:
            out.append(b"(" + ustr(filename) + uint(lineno) + b"t")
        out.append(b"t" + (uint(t[3]) if len(t) > 3 else b"") + b"t")
    out += [b"e" if snap.traces._traces else b"", b"sb", ustr("traceback_limit"),
            uint(snap.traceback_limit), b"ub."]
    return b"".join(out)


emit("recipe_many", data=recipe_pickle(tracemalloc.Snapshot(many, 9)))
emit("recipe_empty", data=recipe_pickle(tracemalloc.Snapshot([], 4)))
