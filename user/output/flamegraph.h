/* SPDX-License-Identifier: MIT */
/*
 * Flame graphs of a snapshot (`tmbpf flamegraph`): folded stacks, the input
 * format of Brendan Gregg's flamegraph.pl and of speedscope, and a
 * self-contained SVG drawn the way flamegraph.pl draws one with
 * --countname bytes (or an icicle graph with --inverted).
 *
 * A stack is a traceback of the snapshot, frames OLDEST first; traces are
 * grouped by their frames, as tracemalloc groups them for
 * statistics('traceback') (Traceback equality ignores total_nframe and the
 * domain), and each group weighs the sum of its sizes, or its number of
 * traces. The caller filters the snapshot first (domains, file patterns).
 *
 * Folded stacks: one line per group, "FRAME;FRAME;...;FRAME WEIGHT\n", each
 * FRAME being "FILENAME:LINENO", lines sorted by their bytes (LC_ALL=C sort).
 * File names are written so that a line stays one line and ';' separates
 * frames only (fg_write_name, FG_NAME_FOLDED):
 *   '\\' -> "\\\\"   ';' -> "\\x3b"
 *   '\n' -> "\\n"    '\r' -> "\\r"    '\t' -> "\\t"
 *   other U+0000..U+001F and U+007F -> "\\xHH"
 *   lone surrogates (how Python keeps the undecodable bytes of a file name,
 *   U+DC80..U+DCFF) and the non-characters U+FFFE/U+FFFF -> "\\uXXXX" (as
 *   Python's 'backslashreplace' writes them); a byte that is not UTF-8 at all
 *   (a hostile native file) -> "\\udcXX" (the code point 'surrogateescape'
 *   gives it)
 * so the output is always valid UTF-8, and spaces are left as they are
 * (flamegraph.pl and speedscope take the weight after the LAST space).
 * Tracebacks truncated by the traceback limit start at their oldest KEPT
 * frame, as in tracemalloc: a CPython pickle taken with the default limit of
 * 1 gives one-frame stacks.
 *
 * SVG: flamegraph.pl's geometry (1200 px wide by default, 16 px frames, 12 px
 * Verdana, 10 px side margins), a root "all" frame, children ordered by
 * (file name, line number) -- Python's order of Frame objects -- and widths
 * proportional to the weight. Each frame has a <title> (the tooltip)
 * "FILENAME:LINENO (SIZE, PCT%)", SIZE as tracemalloc._format_size() prints
 * it (or "N traces" when counting), PCT with two decimals, and a visible
 * label: the name when it fits (flamegraph.pl's 0.59 x font size per
 * character), otherwise ".." and the END of the name (the file and line are
 * at the end of a path), or nothing below three characters. As
 * flamegraph.pl does, frames narrower than the minimum width (0.1 px) are not
 * drawn, nor their descendants; their parent keeps its full width. Names are
 * shown with the escapes above except '\\' and ';' (FG_NAME_DISPLAY), then
 * XML-escaped. Colours are flamegraph.pl's "mem" palette, chosen by a hash of
 * the file name (every frame of a file has the same colour, in every graph).
 * No JavaScript: hovering shows the tooltip.
 */
#ifndef TMBPF_FLAMEGRAPH_H
#define TMBPF_FLAMEGRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/snapshot.h"

/* Traces grouped by their frames: the stacks of the graph. */
struct fg_stack {
	tm_id traceback;                /* a traceback of the group (frames shared by all) */
	uint64_t size;                  /* sum of the sizes of its traces */
	uint64_t count;                 /* number of traces */
};

struct fg_profile {
	const struct tm_snapshot *s;    /* not owned: keep it alive */
	struct fg_stack *stacks;        /* ordered by frames, oldest first, (filename, lineno) */
	size_t nstacks;
	uint64_t total_size;
	uint64_t total_count;           /* = the snapshot's number of blocks */
};

/* Groups the traces of s. 0, or -1 with err (allocation). */
int fg_profile_build(struct fg_profile *p, const struct tm_snapshot *s, struct tm_error *err);
void fg_profile_destroy(struct fg_profile *p);

enum fg_name_mode {
	FG_NAME_DISPLAY = 0,            /* control characters, surrogates, non-UTF-8 escaped */
	FG_NAME_FOLDED = 1,             /* and '\\', ';' too */
};

/* Writes a snapshot string (a file name) with the escapes of mode. */
void fg_write_name(FILE *out, struct tm_str s, enum fg_name_mode mode);

/* Writes the folded stacks; counts = weights are numbers of traces.
 * 0, or -1 with err (allocation). */
int fg_write_folded(FILE *out, const struct fg_profile *p, bool counts, struct tm_error *err);

struct fg_svg_opts {
	const char *title;              /* NULL: "Memory Flame Graph" / "Memory Icicle Graph" */
	const char *subtitle;           /* NULL: none; shown under the totals line */
	bool inverted;                  /* icicle: the root at the top */
	bool counts;                    /* weights are numbers of traces */
	unsigned width;                 /* pixels; 0 = 1200 */
	double minwidth;                /* pixels; 0 = 0.1 */
};

/* Writes the SVG document. 0, or -1 with err (allocation). */
int fg_write_svg(FILE *out, const struct fg_profile *p, const struct fg_svg_opts *o,
		 struct tm_error *err);

#endif /* TMBPF_FLAMEGRAPH_H */
