#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes a random but seeded tracemalloc snapshot with CPython's own
Snapshot.dump(), for the CLI tests and scripts/bench-analysis.

  cli_mksnap.py OUT [--seed N] [--pool-seed N] [--traces N] [--files N]
                [--lines N] [--tracebacks N] [--max-frames N] [--limit N]
                [--weird] [--source-dir DIR]

The pool of frames (files x line numbers) depends on --pool-seed only, the
traces on --seed: two snapshots with the same pool and different seeds share
files, lines and some tracebacks, as an 'old' and a 'new' snapshot do.

Sizes are drawn from a few small values so that many statistics tie on size
and count (the traceback then decides the order), plus some large ones (above
2**32, and 0). Domains are mostly 0, with a few 1, 389047 (NumPy) and 2**32-1.
Tracebacks have 1..--max-frames frames, sometimes with a repeated frame
(recursion, which cumulative statistics count once per occurrence), and a
total_nframe that is sometimes larger than the frames kept.

--weird adds file names that stress the formatting and the filters: ':' and
'@' followed by digits, fnmatch metacharacters, quotes, backslashes, spaces,
non-ASCII, an undecodable byte (as os.fsdecode gives it: a lone surrogate
U+DCxx), '.pyc' names, '<unknown>' and '<frozen importlib._bootstrap>'.

Run by CPython 3.8, it writes 3.8's 3-tuple traces (no total_nframe).

--source-dir DIR writes real source files for the first files of the pool
(under DIR, named there by absolute path) so that Traceback.format() and
display_top print source lines.
"""
import argparse
import os
import random
import sys
import tracemalloc

WEIRD_NAMES = [
    "lib/v2:3@4.py",
    "lib/at@17",
    "lib/colon:99",
    "lib/star*name.py",
    "lib/[brackets].py",
    "lib/q?mark.py",
    'lib/quote"and\\backslash.py',
    "lib/with space.py",
    "lib/caf\u00e9/\u4e2d\u6587.py",
    "lib/emoji\U0001F600.py",
    "lib/undecodable\udcff.py",
    "lib/compiled.pyc",
    "<unknown>",
    "<frozen importlib._bootstrap>",
    "<string>",
]

SMALL_SIZES = [0, 1, 16, 32, 48, 64, 64, 64, 100, 512, 1024, 4096]
LARGE_SIZES = [10240, 102399, 102400, 1048576, 3 * 2**30, 5 * 2**32 + 7]
DOMAINS = [0] * 20 + [1, 389047, 2**32 - 1]


def make_pool(args):
    rnd = random.Random(args.pool_seed)
    files = []
    for i in range(args.files):
        depth = rnd.randint(1, 3)
        parts = ["pkg%d" % rnd.randint(0, 9) for _ in range(depth)]
        files.append("/srv/app/" + "/".join(parts) + "/mod%d.py" % i)
    if args.weird:
        files.extend(WEIRD_NAMES)
    if args.source_dir:
        src = os.path.abspath(args.source_dir)
        for i in range(min(3, len(files))):
            files[i] = os.path.join(src, "src%d.py" % i)
            with open(files[i], "w") as f:
                for n in range(1, args.lines + 1):
                    f.write("    value_%d = [%d] * %d   \n" % (n, i, n))
    frames = []
    for name in files:
        for _ in range(args.lines):
            frames.append((name, rnd.randint(0, args.lines)))
    return sorted(set(frames))


def make_tracebacks(args, pool, rnd):
    tracebacks = []
    for _ in range(args.tracebacks):
        n = rnd.randint(1, args.max_frames)
        frames = [rnd.choice(pool) for _ in range(n)]
        if n >= 2 and rnd.random() < 0.2:
            frames[1] = frames[0]                       # recursion
        total = n if rnd.random() < 0.7 else n + rnd.randint(1, 20)
        tracebacks.append((tuple(frames), total))
    return tracebacks


def make_traces(args, pool):
    rnd = random.Random(args.seed)
    tracebacks = make_tracebacks(args, pool, rnd)
    traces = []
    for _ in range(args.traces):
        frames, total = rnd.choice(tracebacks)
        if rnd.random() < 0.995:
            size = rnd.choice(SMALL_SIZES)
        else:
            size = rnd.choice(LARGE_SIZES)
        traces.append((rnd.choice(DOMAINS), size, frames, total))
    return traces


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pool-seed", type=int, default=1)
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--lines", type=int, default=8)
    p.add_argument("--tracebacks", type=int, default=300)
    p.add_argument("--max-frames", type=int, default=5)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--weird", action="store_true")
    p.add_argument("--source-dir")
    args = p.parse_args()

    pool = make_pool(args)
    traces = make_traces(args, pool)
    if sys.version_info < (3, 9):
        # CPython 3.8's traces are (domain, size, frames): no total_nframe
        traces = [t[:3] for t in traces]
    limit = args.limit if args.limit is not None else args.max_frames
    tracemalloc.Snapshot(traces, limit).dump(args.out)


if __name__ == "__main__":
    sys.exit(main())
