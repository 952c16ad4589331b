#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What `tmbpf` must print, computed by CPython's tracemalloc (test_cli.c).

Reads CPython pickles with tracemalloc.Snapshot.load and takes the same
arguments as the tmbpf command it stands for:

  cli_oracle.py stats SNAPSHOT [--key-type T] [--cumulative] [--limit N] [--json] [FILTERS]
  cli_oracle.py diff OLD NEW [same options]
  cli_oracle.py show SNAPSHOT
  cli_oracle.py trace SNAPSHOT INDEX     str(trace) + Traceback.format() of traces[INDEX]
  cli_oracle.py top SNAPSHOT KEY_TYPE LIMIT
                                         display_top() of the tracemalloc documentation
                                         (LIMIT 0: all statistics, as tmbpf's --limit 0)
  cli_oracle.py same A B [--py38]        A and B hold the same traces and limit, and
                                         B's statistics() work on this Python
                                         (--py38: B has 3-tuples, compare without total_nframe)

FILTERS: --include/--exclude PATTERN[:LINENO][@DOMAIN], --all-frames,
--include-domain D, --exclude-domain D, applied in command-line order.

Text goes to stdout as bytes: str() lines encoded in UTF-8 with
'surrogateescape' (how tmbpf writes file names holding undecodable bytes).
Runs on CPython 3.8 and later.
"""
import argparse
import json
import linecache
import re
import sys
import tracemalloc

out = sys.stdout.buffer


def emit(line):
    out.write(line.encode("utf-8", "surrogateescape") + b"\n")


class FilterAction(argparse.Action):
    """Keeps every filter option, in command-line order, in one list."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.filter_opts.append((self.dest, values))


def split_spec(spec):
    """PATTERN[:LINENO][@DOMAIN]: each suffix from the right, digits only."""
    domain = lineno = None
    m = re.fullmatch(r"(.*)@([0-9]+)", spec, re.S)
    if m:
        spec, domain = m.group(1), int(m.group(2))
    m = re.fullmatch(r"(.*):([0-9]+)", spec, re.S)
    if m:
        spec, lineno = m.group(1), int(m.group(2))
    return spec, lineno, domain


def build_filters(opts):
    filters = []
    for kind, value in opts.filter_opts:
        if kind in ("include", "exclude"):
            pattern, lineno, domain = split_spec(value)
            kwargs = {"all_frames": opts.all_frames}
            if domain is not None:
                kwargs["domain"] = domain
            filters.append(tracemalloc.Filter(kind == "include", pattern, lineno, **kwargs))
        else:
            filters.append(tracemalloc.DomainFilter(kind == "include_domain", int(value)))
    return filters


def add_analysis_options(p):
    p.add_argument("--key-type", default="lineno")
    p.add_argument("--cumulative", action="store_true")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--all-frames", action="store_true")
    for name in ("include", "exclude", "include-domain", "exclude-domain"):
        p.add_argument("--" + name, action=FilterAction, dest=name.replace("-", "_"))
    p.set_defaults(filter_opts=[])


def load(path, opts=None):
    snap = tracemalloc.Snapshot.load(path)
    if opts is not None and opts.filter_opts:
        snap = snap.filter_traces(build_filters(opts))
    return snap


def frames_json(traceback):
    return [{"filename": f.filename, "lineno": f.lineno} for f in traceback]


def print_stats(opts, stats, is_diff):
    shown = stats if opts.limit == 0 else stats[:opts.limit]
    if not opts.json:
        for stat in shown:
            emit(str(stat))
        return
    entries = []
    for stat in shown:
        e = {"traceback": frames_json(stat.traceback), "size": stat.size}
        if is_diff:
            e["size_diff"] = stat.size_diff
        e["count"] = stat.count
        if is_diff:
            e["count_diff"] = stat.count_diff
        entries.append(e)
    doc = {"key_type": opts.key_type, "cumulative": opts.cumulative, "statistics": entries}
    out.write(json.dumps(doc).encode("ascii") + b"\n")


def cmd_stats(argv):
    p = argparse.ArgumentParser(prog="stats")
    p.add_argument("snapshot")
    add_analysis_options(p)
    opts = p.parse_args(argv)
    snap = load(opts.snapshot, opts)
    print_stats(opts, snap.statistics(opts.key_type, opts.cumulative), False)


def cmd_diff(argv):
    p = argparse.ArgumentParser(prog="diff")
    p.add_argument("old")
    p.add_argument("new")
    add_analysis_options(p)
    opts = p.parse_args(argv)
    old = load(opts.old, opts)
    new = load(opts.new, opts)
    print_stats(opts, new.compare_to(old, opts.key_type, opts.cumulative), True)


def sized(size):
    return "%s (%d B)" % (tracemalloc._format_size(size, False), size)


def cmd_show(argv):
    """The summary tmbpf prints for a CPython pickle (no capture info in it)."""
    snap = tracemalloc.Snapshot.load(argv[0])
    traces = snap.traces._traces
    domains = {}
    for trace in traces:
        count, size = domains.get(trace[0], (0, 0))
        domains[trace[0]] = (count + 1, size + trace[1])
    emit("traces: %d" % len(traces))
    emit("total size: " + sized(sum(t[1] for t in traces)))
    emit("traceback_limit: %d" % snap.traceback_limit)
    emit("domains: %d" % len(domains))
    for domain in sorted(domains):
        count, size = domains[domain]
        emit("  domain %d: %d traces, %s" % (domain, count, sized(size)))
    emit("capture:")
    emit("  tier: tracemalloc (in-process tracemalloc, e.g. a CPython pickle)")
    emit("  coverage: unknown")
    emit("  sampling period: none (every event)")
    emit("  pid: unknown")
    emit("  command: unknown")
    emit("  python: unknown")
    emit("  started: unknown")
    emit("  taken: unknown")
    emit("  traced memory: unknown")
    emit("  tracer memory: unknown")
    emit("  counters: none non-zero")


def cmd_trace(argv):
    snap = tracemalloc.Snapshot.load(argv[0])
    trace = snap.traces[int(argv[1])]
    emit(str(trace))
    for line in trace.traceback.format():
        emit(line)


def display_top(snapshot, key_type="lineno", limit=10):
    """The "Pretty top" recipe of the tracemalloc documentation."""
    snapshot = snapshot.filter_traces((
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<unknown>"),
    ))
    top_stats = snapshot.statistics(key_type)

    emit("Top %s lines" % limit)
    for index, stat in enumerate(top_stats[:limit], 1):
        frame = stat.traceback[0]
        emit("#%s: %s:%s: %.1f KiB"
             % (index, frame.filename, frame.lineno, stat.size / 1024))
        line = linecache.getline(frame.filename, frame.lineno).strip()
        if line:
            emit('    %s' % line)

    other = top_stats[limit:]
    if other:
        size = sum(stat.size for stat in other)
        emit("%s other: %.1f KiB" % (len(other), size / 1024))
    total = sum(stat.size for stat in top_stats)
    emit("Total allocated size: %.1f KiB" % (total / 1024))


def cmd_top(argv):
    snapshot = tracemalloc.Snapshot.load(argv[0])
    limit = int(argv[2])
    if limit == 0:
        # tmbpf's --limit 0 means all: the recipe with limit = every statistic
        limit = len(snapshot.filter_traces((
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"),
        )).statistics(argv[1]))
    display_top(snapshot, argv[1], limit)


def cmd_same(argv):
    a = tracemalloc.Snapshot.load(argv[0])
    b = tracemalloc.Snapshot.load(argv[1])
    ta = list(a.traces._traces)
    tb = list(b.traces._traces)
    py38 = len(argv) > 2 and argv[2] == "--py38"
    if py38:
        ta = [t[:3] for t in ta]
    if ta != tb:
        diff = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
        emit("DIFFERENT traces (%d vs %d traces, first difference at %d: %r vs %r)"
             % (len(ta), len(tb), diff, ta[diff:diff + 1], tb[diff:diff + 1]))
        return 1
    if a.traceback_limit != b.traceback_limit:
        emit("DIFFERENT traceback_limit %r vs %r" % (a.traceback_limit, b.traceback_limit))
        return 1
    # the Python running this must be able to analyse what was written (B);
    # with --py38 that Python is 3.8, whose statistics() want 3-tuples
    b.statistics("traceback")
    emit("SAME %d traces" % len(ta))
    return 0


COMMANDS = {"stats": cmd_stats, "diff": cmd_diff, "show": cmd_show, "trace": cmd_trace,
            "top": cmd_top, "same": cmd_same}

if __name__ == "__main__":
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
