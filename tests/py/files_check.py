"""Does CPython load pickles written by tmbpf, with exactly the expected traces?

usage: pythonX.Y files_check.py FLAVOUR OURS EXPECTED [OURS EXPECTED ...]

OURS is a pickle tmbpf wrote. EXPECTED is what it must hold: either a
pickle (a Snapshot.dump() made by some CPython: the truth is what this CPython
loads from it) or a .expected text file in files_dump.py's format. FLAVOUR is
38 (tmbpf wrote 3-tuples, for CPython 3.8) or 39 (4-tuples; a trace without
total_nframe is written with total_nframe = len(frames)).

Checks, with tracemalloc.Snapshot.load(OURS): _traces is a list of tuples
equal to the expected ones, traceback_limit is the expected int, and
statistics('filename'|'lineno'|'traceback'), the cumulative ones, compare_to()
and str() of every trace work and give the same results as a Snapshot built
directly from the expected traces. Prints "OK NTRACES OURS OPCODE,..." per
pair (the opcodes OURS uses), or the first difference (exit status 1).
"""
import pickletools
import sys
import tracemalloc

flavour = sys.argv[1]


def parse_expected(path):
    traces, limit = [], None
    with open(path) as f:
        lines = iter(f.read().splitlines())
    for line in lines:
        word = line.split(" ")
        if word[0] == "limit":
            limit = int(word[1])
        elif word[0] == "trace":
            domain, size, total, nframe = int(word[1]), int(word[2]), word[3], int(word[4])
            frames = []
            for _ in range(nframe):
                fw = next(lines).split(" ")
                assert fw[0] == "frame", fw
                hexname = fw[2] if len(fw) > 2 else ""
                frames.append((bytes.fromhex(hexname).decode("utf-8", "surrogatepass"),
                               int(fw[1])))
            traces.append((domain, size, tuple(frames), None if total == "-" else int(total)))
        elif word[0] == "end":
            assert int(word[1]) == len(traces)
    return traces, limit


def fail(msg):
    print("DIFFERENT: %s: %s" % (current, msg))
    sys.exit(1)


def check(ours_path, expected_path):
    global current
    current = ours_path
    if expected_path.endswith(".pickle"):
        orig = tracemalloc.Snapshot.load(expected_path)
        expected = [t if len(t) > 3 else t + (None,) for t in orig.traces._traces]
        limit = orig.traceback_limit
    else:
        expected, limit = parse_expected(expected_path)

    # the tuples tmbpf is meant to write for this flavour
    if flavour == "38":
        expected = [t[:3] for t in expected]
    else:
        expected = [t[:3] + (len(t[2]) if t[3] is None else t[3],) for t in expected]

    ours = tracemalloc.Snapshot.load(ours_path)
    got = ours.traces._traces
    if type(got) is not list:
        fail("_traces is a %s" % type(got).__name__)
    if type(ours.traceback_limit) is not int or ours.traceback_limit != limit:
        fail("traceback_limit %r, expected %r" % (ours.traceback_limit, limit))
    if len(got) != len(expected):
        fail("%d traces, expected %d" % (len(got), len(expected)))
    for i, (g, e) in enumerate(zip(got, expected)):
        # == on tuples also compares the nested frame tuples; check the types too
        if g != e or type(g) is not tuple or type(g[2]) is not tuple or \
                any(type(f) is not tuple or type(f[0]) is not str or type(f[1]) is not int
                    for f in g[2]):
            fail("trace %d is %r, expected %r" % (i, g, e))

    # the analysis CPython runs on it must work and agree with the expected traces
    reference = tracemalloc.Snapshot(expected, limit)
    for key in ("filename", "lineno", "traceback"):
        if ours.statistics(key) != reference.statistics(key):
            fail("statistics(%r) differ" % key)
    for key in ("filename", "lineno"):
        if ours.statistics(key, cumulative=True) != reference.statistics(key, cumulative=True):
            fail("statistics(%r, cumulative=True) differ" % key)
    if ours.compare_to(reference, "lineno") != reference.compare_to(reference, "lineno"):
        fail("compare_to differs")
    # (not Traceback.format(): linecache itself fails on filenames with a NUL)
    for t in ours.traces:
        str(t)
    with open(ours_path, "rb") as f:
        ops = sorted({op.name for op, arg, pos in pickletools.genops(f.read())})
    print("OK %d %s %s" % (len(got), ours_path, ",".join(ops)))


pairs = sys.argv[2:]
assert pairs and len(pairs) % 2 == 0, "OURS EXPECTED pairs"
for k in range(0, len(pairs), 2):
    check(pairs[k], pairs[k + 1])
