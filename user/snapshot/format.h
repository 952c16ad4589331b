/* SPDX-License-Identifier: MIT */
/*
 * Text forms of tracemalloc objects: _format_size(), str(Statistic),
 * str(StatisticDiff), str(Trace), Traceback.format(), with CPython's exact bytes.
 */
#ifndef TMBPF_FORMAT_H
#define TMBPF_FORMAT_H

#include <stdio.h>
#include "snapshot/snapshot.h"
#include "snapshot/stats.h"

#define TM_SIZE_BUF 48

/* tracemalloc._format_size(size, sign) for integer and float sizes. */
const char *tm_format_size(char buf[TM_SIZE_BUF], int64_t size, bool sign);
const char *tm_format_size_u(char buf[TM_SIZE_BUF], uint64_t size, bool sign);
const char *tm_format_size_f(char buf[TM_SIZE_BUF], double size, bool sign);

/* Writes str(stat) / str(diff) followed by '\n'. */
void tm_print_statistic(FILE *out, const struct tm_statistic *st);
void tm_print_statistic_diff(FILE *out, const struct tm_statistic_diff *d);

/* Writes the lines of Traceback(frames).format(limit, most_recent_first), one per
 * line. frames are most recent first (as stored). has_limit=false is limit=None.
 * Source lines come from linecache: files are opened under root_dir (e.g.
 * "/proc/PID/root" for a live target); NULL opens names as they are, relative
 * ones from the current directory, as Python's linecache does. */
void tm_print_traceback_format(FILE *out, const struct tm_snapshot *s, tm_id traceback,
			       bool has_limit, int64_t limit, bool most_recent_first,
			       const char *root_dir);

/* Traceback.format() of a statistic's traceback (frames most recent first, as
 * struct tm_statistic holds them); same output as tm_print_traceback_format. */
void tm_print_frames_format(FILE *out, const struct tm_stat_frame *frames, uint32_t nframe,
			    bool has_limit, int64_t limit, bool most_recent_first,
			    const char *root_dir);

/* Writes str(trace) followed by '\n': "<oldest frame>: <size>". */
void tm_print_trace(FILE *out, const struct tm_snapshot *s, const struct tm_trace *t);

/* Drops the source files that linecache keeps for the life of the process. */
void tm_linecache_clear(void);

/* linecache.getline(filename, lineno).strip(): 0 and the text in buf, or -1 when
 * the file or line does not exist (Python returns ''). */
int tm_linecache_getline(const char *root_dir, const char *filename, uint32_t lineno,
			 char *buf, size_t bufsz);

/* Prints a string the way Python prints it to a UTF-8 stdout with
 * surrogateescape: lone surrogates U+DC80..U+DCFF become the original bytes. */
void tm_fputs_pystr(FILE *out, struct tm_str s);

#endif
