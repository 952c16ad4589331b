#!/usr/bin/python3
"""CPython oracle for tests/unit/test_property.c.

Usage: analysis_oracle.py CASES.json

CASES.json (written by the C test) holds random snapshots in the raw form of
tracemalloc._get_traces(): traces [domain, size, frames, total_nframe] with
frames [[filename, lineno], ...] most recent first and total_nframe possibly
null; filters; fnmatch pairs; Traceback.format() calls. For every case this
prints what the real tracemalloc module computes -- str() of every Statistic and
StatisticDiff, the indexes of the traces filter_traces() keeps, fnmatch results,
str(Trace) and Traceback.format() lines -- in the exact layout the C test prints
for its own results, so that the two outputs can be compared line by line.

Strings are printed as Python prints them to a UTF-8 stdout with
surrogateescape (the test's file names only hold lone surrogates U+DC80..U+DCFF).
"""
import fnmatch
import json
import sys
import tracemalloc
import warnings

warnings.simplefilter("ignore")  # sre's FutureWarning on "[[" or "--" in classes

COMBOS = [("traceback", False), ("filename", False), ("filename", True),
          ("lineno", False), ("lineno", True)]


def snapshot(raw):
    traces = [(t[0], t[1], tuple((f[0], f[1]) for f in t[2]), t[3]) for t in raw["traces"]]
    return tracemalloc.Snapshot(traces, raw["limit"]), traces


def make_filter(f):
    if f["kind"] == "domain":
        return tracemalloc.DomainFilter(f["inclusive"], f["domain"])
    return tracemalloc.Filter(f["inclusive"], f["pattern"], f["lineno"], f["all_frames"],
                              f["domain"])


def main():
    with open(sys.argv[1], encoding="utf-8") as fp:
        data = json.load(fp)
    out = []
    emit = out.append
    for index, case in enumerate(data["cases"]):
        new, new_traces = snapshot(case["new"])
        old, _ = snapshot(case["old"])
        emit("# case %d" % index)
        for key_type, cumulative in COMBOS:
            emit("## statistics %s %d" % (key_type, cumulative))
            for stat in new.statistics(key_type, cumulative):
                emit(str(stat))
            emit("## compare_to %s %d" % (key_type, cumulative))
            for stat in new.compare_to(old, key_type, cumulative):
                emit(str(stat))
        filters = [make_filter(f) for f in case["filters"]]
        filtered = new.filter_traces(filters)
        position = {id(t): i for i, t in enumerate(new_traces)}
        emit("## filter_traces")
        emit(" ".join(str(position[id(t)]) for t in filtered.traces._traces))
        emit("## filtered statistics lineno")
        for stat in filtered.statistics("lineno"):
            emit(str(stat))
        emit("## fnmatch")
        emit("".join("1" if fnmatch.fnmatch(name, pattern) else "0"
                     for pattern, name in case["fnmatch"]))
        emit("## traces")
        for i in case["str_traces"]:
            emit(str(new.traces[i]))
        emit("## format")
        for i, limit, most_recent_first in case["formats"]:
            emit("### %d %s %d" % (i, "None" if limit is None else limit, most_recent_first))
            out.extend(new.traces[i].traceback.format(limit, bool(most_recent_first)))
    text = "\n".join(out) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))


if __name__ == "__main__":
    main()
