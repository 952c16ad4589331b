"""Top lines of a tmbpf snapshot against CPython's own, for
tests/tracer/test_run_attach.c. Runs with the traced interpreter itself, so
both pickles load with the tracemalloc that wrote the ground truth.

Usage: run_compare.py OURS.pickle TRUTH.pickle TMBPF_STATS.json N TOLERANCE OWN
                      INTERPRETER_TOLERANCE

Both snapshots are filtered as the docs' display_top() does (without
"<frozen importlib._bootstrap>" and "<unknown>") and grouped by 'lineno'.
TMBPF_STATS.json is `tmbpf stats --json --limit 0` with the same filters on
OURS: it must equal what this tracemalloc computes from the same file.

The N biggest lines of each side must agree: every line in either top N is
on the other side with a size within TOLERANCE (relative to the larger of
the two) if it is the workload's own, INTERPRETER_TOLERANCE if it is not:
what the interpreter's own lines hold varies between runs of the same
program without any tracer (3.10, text workload, PYTHONTRACEMALLOC=1 runs:
abc.py:123 held 14,198, 14,513 or 14,765 B, whole 63-byte blocks apart).
A line may be in one top N only when it is at the boundary: within its
tolerance of the N-th size on both sides (two nearly equal lines can swap
ranks N and N+1). Lines whose file name contains OWN are the workload's own.

Prints one "LINE rank file:lineno ours=B truth=B diff=P% STATUS" per line of
the truth's top N, "EXTRA ..." for lines only in our top N, then
  RESULT n=N bad=B own_bad=O absent=A worst_pct=W stats_equal=0|1 worst=FILE:LINENO
(bad: lines beyond their tolerance or ranked apart; own_bad: those of OWN, except
rank swaps; absent: lines missing on one side altogether).
"""
import json
import sys
import tracemalloc

ours_path, truth_path, stats_path, n, tol, own, tol_other = sys.argv[1:8]
N, TOL_OWN, TOL_OTHER = int(n), float(tol), float(tol_other)
FILTERS = (tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
           tracemalloc.Filter(False, "<unknown>"))


def stats(path):
    snap = tracemalloc.Snapshot.load(path).filter_traces(FILTERS)
    return snap.statistics("lineno")


def key(stat):
    frame = stat.traceback[0]
    return "%s:%d" % (frame.filename, frame.lineno)


ours, truth = stats(ours_path), stats(truth_path)
with open(stats_path) as f:
    tmbpf = json.load(f)
tmbpf_list = [("%s:%d" % (s["traceback"][0]["filename"], s["traceback"][0]["lineno"]),
               s["size"], s["count"]) for s in tmbpf["statistics"]]
tm_list = [(key(s), s.size, s.count) for s in ours]
stats_equal = tmbpf_list == tm_list
if not stats_equal:
    first = next((i for i, (a, b) in enumerate(zip(tmbpf_list, tm_list)) if a != b),
                 min(len(tmbpf_list), len(tm_list)))
    print("STATS_DIFF at #%d: tmbpf %r, tracemalloc %r; %d vs %d statistics"
          % (first + 1, tmbpf_list[first:first + 1], tm_list[first:first + 1],
             len(tmbpf_list), len(tm_list)))

size_ours = {key(s): s.size for s in ours}
size_truth = {key(s): s.size for s in truth}
top_ours, top_truth = [key(s) for s in ours[:N]], [key(s) for s in truth[:N]]
edge_ours = ours[min(N, len(ours)) - 1].size if ours else 0
edge_truth = truth[min(N, len(truth)) - 1].size if truth else 0
bad = own_bad = absent = 0
worst, worst_line = 0.0, "-"


def check(line, tag, rank):
    global bad, own_bad, absent, worst, worst_line
    o, t = size_ours.get(line, 0), size_truth.get(line, 0)
    tol = TOL_OWN if own in line else TOL_OTHER
    pct = 100.0 * abs(o - t) / max(o, t, 1)
    if pct > worst:
        worst, worst_line = pct, line
    status = "ok"
    if not o or not t:
        status = "ABSENT"
        absent += 1
    elif pct > 100 * tol:
        status = "DIFF"
    elif (line in top_ours) != (line in top_truth) and not (
            o >= (1 - tol) * edge_ours and t >= (1 - tol) * edge_truth):
        status = "RANK"
    if status != "ok":
        bad += 1
        if own in line and status != "RANK":
            own_bad += 1
    print("%s %d %s ours=%d truth=%d diff=%.2f%% %s" % (tag, rank, line, o, t, pct, status))


for rank, line in enumerate(top_truth, 1):
    check(line, "LINE", rank)
for rank, line in enumerate(top_ours, 1):
    if line not in top_truth:
        check(line, "EXTRA", rank)
print("RESULT n=%d bad=%d own_bad=%d absent=%d worst_pct=%.3f stats_equal=%d worst=%s"
      % (len(top_truth), bad, own_bad, absent, worst, stats_equal, worst_line.replace(" ", "_")))
