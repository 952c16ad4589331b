#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What `tmbpf flamegraph` must write, computed from CPython's tracemalloc
(tests/unit/test_flamegraph.c). Runs on CPython 3.8 and later.

  fg_oracle.py folded SNAPSHOT [--count] [FILTERS]
      The folded stacks: Snapshot.load(SNAPSHOT).filter_traces(FILTERS), its
      traces grouped by Traceback (equality of frames), sizes summed (or
      traces counted), one line per group, frames oldest first, sorted by
      bytes. Written to stdout as bytes.

  fg_oracle.py svgcheck SNAPSHOT SVG [--count] [--inverted] [--width W] [FILTERS]
      Parses SVG with xml.etree (so it must be well-formed XML) and checks
      every drawn frame against the prefix tree of the same groups, computed
      here: position, size, tooltip "NAME (SIZE, PCT%)", visible label, and
      that exactly the frames of at least 0.1 px are drawn. Prints what
      differs and exits 1, or prints "OK N frames" and exits 0.

  fg_oracle.py hostile OUT
      Writes a pickle whose file names hold what a flame graph must escape:
      '<', '&', '"', "'", ';', '\\', newline, tab, NUL, ESC, DEL, non-ASCII,
      lone surrogates (low and high), U+FFFE, and very long names.

FILTERS are cli_oracle.py's (--include/--exclude PATTERN[:LINENO][@DOMAIN],
--include-domain, --exclude-domain, --all-frames).
"""
import argparse
import os
import sys
import tracemalloc
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_oracle  # noqa: E402  (the filters, exactly as test_cli uses them)

# flamegraph.pl's geometry, as flamegraph.h documents it
XPAD = 10
FRAME_HEIGHT = 16
FRAME_PAD = 1
FONT_SIZE = 12
FONT_WIDTH = 0.59
MIN_WIDTH = 0.1
YPAD_TOP = FONT_SIZE * 5
YPAD_BOTTOM = 10
SVG_NS = "{http://www.w3.org/2000/svg}"


def escape(name, folded):
    """The escapes of flamegraph.h, character by character."""
    out = []
    for ch in name:
        cp = ord(ch)
        if folded and ch == "\\":
            out.append("\\\\")
        elif folded and ch == ";":
            out.append("\\x3b")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif cp < 0x20 or cp == 0x7F:
            out.append("\\x%02x" % cp)
        elif 0xD800 <= cp <= 0xDFFF or cp in (0xFFFE, 0xFFFF):
            out.append("\\u%04x" % cp)
        else:
            out.append(ch)
    return "".join(out)


def groups(snapshot):
    """{Traceback: [size, count]}: tracemalloc's own grouping by traceback."""
    result = {}
    for trace in snapshot.traces:
        g = result.setdefault(trace.traceback, [0, 0])
        g[0] += trace.size
        g[1] += 1
    return result


def add_common(p):
    cli_oracle.add_analysis_options(p)
    p.add_argument("--count", action="store_true")


def cmd_folded(argv):
    p = argparse.ArgumentParser(prog="fg_oracle.py folded")
    p.add_argument("snapshot")
    add_common(p)
    opts = p.parse_args(argv)
    snap = cli_oracle.load(opts.snapshot, opts)
    lines = []
    for tb, (size, count) in groups(snap).items():
        stack = ";".join("%s:%d" % (escape(f.filename, True), f.lineno) for f in tb)
        lines.append(stack.encode("utf-8") + b" %d\n" % (count if opts.count else size))
    sys.stdout.buffer.write(b"".join(sorted(lines)))


class Node:
    def __init__(self, frame):
        self.frame = frame          # (filename, lineno), None for the root
        self.weight = 0
        self.children = {}


def build_tree(snap, count):
    root = Node(None)
    for tb, (size, n) in groups(snap).items():
        w = n if count else size
        node = root
        root.weight += w
        for f in tb:                # oldest first
            key = (f.filename, f.lineno)
            node = node.children.setdefault(key, Node(key))
            node.weight += w
    return root


def fmt_weight(w, total, count):
    if count:
        text = "%d trace%s" % (w, "" if w == 1 else "s")
    else:
        text = tracemalloc._format_size(w, False)
    pct = 100.0 * float(w) / float(total) if total else 0.0
    return "%s, %.2f%%" % (text, pct)


def label(name, width_px):
    fits = int(width_px / (FONT_SIZE * FONT_WIDTH))
    if fits < 3:
        return ""
    if len(name) <= fits:
        return name
    return ".." + name[len(name) - (fits - 2):]


def expected_frames(root, total, width, count):
    """[(depth, x, width, tooltip, label)] of the frames that must be drawn."""
    ppu = (width - 2 * XPAD) / float(total)
    out = []

    def visit(node, depth, start):
        w = node.weight * ppu
        if w < MIN_WIDTH:
            return
        if node.frame is None:
            name = "all"
        else:
            name = "%s:%d" % (escape(node.frame[0], False), node.frame[1])
        x = XPAD + float(start) * ppu
        out.append((depth, "%.2f" % x, "%.2f" % w,
                    "%s (%s)" % (name, fmt_weight(node.weight, total, count)),
                    label(name, w)))
        # a stack that ends here sorts before the longer ones: its own
        # weight is at the left, then the children in Python's order of
        # Frame objects, (filename, lineno)
        t = start + node.weight - sum(c.weight for c in node.children.values())
        for key in sorted(node.children):
            child = node.children[key]
            visit(child, depth + 1, t)
            t += child.weight

    visit(root, 0, 0)
    return out


def cmd_svgcheck(argv):
    p = argparse.ArgumentParser(prog="fg_oracle.py svgcheck")
    p.add_argument("snapshot")
    p.add_argument("svg")
    p.add_argument("--inverted", action="store_true")
    p.add_argument("--width", type=int, default=1200)
    add_common(p)
    opts = p.parse_args(argv)
    snap = cli_oracle.load(opts.snapshot, opts)
    root = build_tree(snap, opts.count)
    total = root.weight
    doc = ET.parse(opts.svg).getroot()          # raises if not well-formed
    errors = []
    if doc.tag != SVG_NS + "svg":
        errors.append("root element is %s" % doc.tag)
    height = int(doc.get("height"))
    if int(doc.get("width")) != opts.width:
        errors.append("width %s, expected %d" % (doc.get("width"), opts.width))
    total_text = "".join(doc.find(".//%stext[@id='total']" % SVG_NS).itertext())
    size_total = sum(t.size for t in snap.traces)
    want_total = "Total: %s in %d trace%s" % (tracemalloc._format_size(size_total, False),
                                              len(snap.traces),
                                              "" if len(snap.traces) == 1 else "s")
    if not total_text.startswith(want_total):
        errors.append("totals %r, expected %r" % (total_text, want_total))
    got = []
    for g in doc.iter(SVG_NS + "g"):
        if g.get("class") != "f":
            continue
        title = g.find(SVG_NS + "title").text
        rect = g.find(SVG_NS + "rect")
        text = g.find(SVG_NS + "text").text or ""
        y1 = float(rect.get("y"))
        if opts.inverted:
            depth = (y1 - YPAD_TOP) / FRAME_HEIGHT
        else:
            depth = (height - YPAD_BOTTOM - FRAME_HEIGHT + FRAME_PAD - y1) / FRAME_HEIGHT
        if depth != int(depth) or float(rect.get("height")) != FRAME_HEIGHT - FRAME_PAD:
            errors.append("frame %r: y=%s height=%s" % (title, rect.get("y"), rect.get("height")))
        got.append((int(depth), rect.get("x"), rect.get("width"), title, text))
    want = expected_frames(root, total, opts.width, opts.count) if total else []
    if total == 0 and doc.find(".//%stext[@id='empty']" % SVG_NS) is None:
        errors.append("an empty graph says nothing")
    got_set, want_set = sorted(got), sorted(want)
    if got_set != want_set:
        missing = [w for w in want_set if w not in got_set]
        extra = [g for g in got_set if g not in want_set]
        errors.append("%d frames drawn, %d expected" % (len(got), len(want)))
        for m in missing[:5]:
            errors.append("missing %r" % (m,))
        for e in extra[:5]:
            errors.append("unexpected %r" % (e,))
    if errors:
        out = sys.stdout.buffer
        for e in errors:
            out.write(e.encode("utf-8", "backslashreplace") + b"\n")
        return 1
    print("OK %d frames" % len(got))
    return 0


HOSTILE = [
    "<script>&amp;\"quote\"'apos'.py",
    "semi;colon;.py",
    "back\\slash\\;x.py",
    "new\nline\r\n.py",
    "tab\there.py",
    "nul\x00byte.py",
    "esc\x1b[31mred\x7f.py",
    "caf\u00e9/\u4e2d\u6587/\U0001F600.py",
    "undecodable\udcff\udc80.py",
    "high\ud800surrogate.py",
    "nonchar\ufffe\uffff.py",
    "]]>cdata<!--comment-->.py",
    "/very/long/" + "directory/" * 40 + "file.py",
    "",
]


def cmd_hostile(argv):
    out = argv[0]
    traces = []
    # one-frame, two-frame and deep stacks through every hostile name
    for i, name in enumerate(HOSTILE):
        other = HOSTILE[(i + 1) % len(HOSTILE)]
        traces.append((0, 1000 + i, ((name, i + 1),), 1))
        traces.append((0, 50000 * (i + 1), ((other, 7), (name, i + 1)), 2))
        traces.append((0, 3, ((name, 2), (other, 3), (name, 1)), 5))
    traces.append((0, 10 ** 7, (("big.py", 1),), 1))
    tracemalloc.Snapshot(traces, 3).dump(out)
    return 0


def main():
    cmds = {"folded": cmd_folded, "svgcheck": cmd_svgcheck, "hostile": cmd_hostile}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit("usage: fg_oracle.py folded|svgcheck|hostile ...")
    return cmds[sys.argv[1]](sys.argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main())
