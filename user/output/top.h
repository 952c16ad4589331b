/* SPDX-License-Identifier: MIT */
/*
 * The screen of `tmbpf top`: a header about the traced process and the top
 * statistics of its latest snapshot, each with its change since the
 * previous refresh and since the start, as compare_to() computes them.
 *
 * No terminal control here: top_render() writes plain lines, fitted to a
 * width and height when given (the terminal's), and the command decides
 * whether to clear the screen first or separate blocks (batch mode).
 *
 *   tmbpf top - PID 4242: python3 app.py - elapsed 0:01:05, refresh 3 every 2 s
 *   CPython 3.11.2 /usr/bin/python3.11, exact tier, coverage complete: NOTE
 *   Traced memory: current 1.2 MiB, peak 1.5 MiB; tmbpf memory: 3.1 MiB
 *   Not seen or not resolved (counted): lost.live_map_full=3      (only if any)
 *   Top 10 of 57 lines by size; 1.2 MiB in 3456 traces
 *   <empty line>
 *         SIZE      CHANGE  SINCE START     COUNT  LINE
 *     512 KiB    +64.0 KiB     +512 KiB      5120  app.py:12: cache.append(x)
 *   ...
 *   47 other: 12.0 KiB                                            (only if any)
 *
 * The growth tier's third line is "RSS: A at start, B now (+C); attributed
 * resident growth D; tmbpf memory: E" and a CPython pickle (no capture
 * information) says what is unknown. Rows are snapshot.statistics(key_type,
 * cumulative) in its order (size, count, traceback, biggest first); SIZE and
 * COUNT are the statistic's, CHANGE and SINCE START are the size_diff that
 * now.compare_to(previous) and now.compare_to(start) give for the same key
 * (the whole size when the key is new). LINE is "FILE:LINENO: SOURCE" for
 * 'lineno' and cumulative statistics, "FILE" for 'filename', and for
 * 'traceback' the most recent frame with its source, then one indented
 * "from FILE:LINENO" line per older frame. File names and source text are
 * shown with the escapes of flamegraph.h (FG_NAME_DISPLAY), so a row stays
 * one line. With a width, a line longer than it is cut; a location that does
 * not fit is shortened from the left ("..e/app.py:12", the end of a path
 * says most) and the source dropped. With a height, rows that would not fit
 * are left out (the "other" line counts them).
 */
#ifndef TMBPF_TOP_H
#define TMBPF_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/snapshot.h"
#include "snapshot/stats.h"

struct top_opts {
	enum tm_key_type key_type;
	bool cumulative;
	uint64_t limit;                 /* rows; 0 = all */
	unsigned width;                 /* columns; 0 = lines are not cut (batch) */
	unsigned height;                /* rows of the screen; 0 = no limit */
	const char *root_dir;           /* source files are read under it (NULL = /) */
	double interval;                /* seconds between refreshes, for the header */
	const char *note;               /* an extra header line, e.g. the domain shown; or NULL */
};

struct top_view;                        /* a snapshot, its statistics and their index */

struct top_state {
	struct top_opts opts;
	struct top_view *start;         /* the first snapshot (at attach time) */
	struct top_view *prev;          /* the previous refresh (== start at first) */
	struct top_view *now;           /* the latest */
	unsigned refresh;               /* updates since the start */
};

/* Takes ownership of start (filtered as the caller wants every snapshot).
 * 0, or -1 with err (e.g. CPython's cumulative/traceback refusal). */
int top_state_init(struct top_state *t, const struct top_opts *o, struct tm_snapshot *start,
		   struct tm_error *err);
/* A new refresh: takes ownership of now. 0, or -1 with err (now is freed). */
int top_state_update(struct top_state *t, struct tm_snapshot *now, struct tm_error *err);
void top_state_destroy(struct top_state *t);

/* Writes the screen of the latest refresh. 0, or -1 with err (allocation). */
int top_render(FILE *out, const struct top_state *t, struct tm_error *err);


#endif /* TMBPF_TOP_H */
