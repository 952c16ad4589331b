/* SPDX-License-Identifier: MIT */
/*
 * Text and JSON renderings of analysis results: statistics and diffs (what
 * `tmbpf stats` / `tmbpf diff` print), the tracemalloc documentation's
 * "display top" report (printed at the end of `run` / `attach`), and the
 * summary and per-block view of `tmbpf show`.
 *
 * Every function writes to a FILE the caller owns (the CLI passes a memory
 * stream and prints it only when the whole result is ready).
 */
#ifndef TMBPF_REPORT_H
#define TMBPF_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "snapshot/snapshot.h"
#include "snapshot/stats.h"

/* The first `limit` entries of st (0 = all), one str(Statistic) or
 * str(StatisticDiff) line each, in st's order. */
void report_stats_text(FILE *out, const struct tm_stats *st, uint64_t limit);

/*
 * The same entries as one JSON document (json.dumps() bytes, then a newline):
 *   {"key_type": "lineno", "cumulative": false, "statistics": [
 *     {"traceback": [{"filename": "a.py", "lineno": 5}, ...], "size": N, "count": N}, ...]}
 * Tracebacks are oldest frame first, as Python iterates a Traceback. Entries of
 * a diff are {"traceback", "size", "size_diff", "count", "count_diff"}.
 * 0, or -1 when the JSON writer cannot be allocated.
 */
int report_stats_json(FILE *out, const struct tm_stats *st, uint64_t limit);

/*
 * display_top(snapshot, key_type, limit) of the tracemalloc documentation
 * ("Pretty top"): excludes "<frozen importlib._bootstrap>" and "<unknown>",
 * prints "Top N lines", then "#i: FILE:LINE: X.X KiB" and the source line
 * (read under root_dir, NULL = "/") for the first `limit` statistics, then
 * "K other: X.X KiB" and "Total allocated size: X.X KiB". A limit of 0 means
 * all of them, as --limit 0 does everywhere in tmbpf (the recipe called with
 * limit = the number of statistics). 0, or -1 with err set.
 */
int report_display_top(FILE *out, const struct tm_snapshot *s, enum tm_key_type key_type,
		       uint64_t limit, const char *root_dir, struct tm_error *err);

/* `tmbpf show`: trace count, total size, traceback limit, per-domain counts
 * and sizes, and the capture information. 0, or -1 with err (allocation). */
int report_snapshot_summary(FILE *out, const struct tm_snapshot *s, struct tm_error *err);

/* `tmbpf show --address`: for every trace of the block at `address`, a line
 * str(Trace) then the lines of Traceback.format(). Returns how many traces
 * were printed (0 when the address is not in the snapshot). */
uint64_t report_traces_at(FILE *out, const struct tm_snapshot *s, uint64_t address);

#endif /* TMBPF_REPORT_H */
