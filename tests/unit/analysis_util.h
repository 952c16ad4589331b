/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the analysis suites (test_model, test_stats, test_filter,
 * test_format, test_property): build snapshots the way CPython's tests write
 * raw trace tuples, and capture printed output.
 */
#ifndef TMBPF_TESTS_ANALYSIS_UTIL_H
#define TMBPF_TESTS_ANALYSIS_UTIL_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"

/* Traceback from (filename, lineno) pairs, MOST RECENT FIRST like the raw
 * tuples of _tracemalloc._get_traces(): tb(s, 3, 2, "a.py", 2, "b.py", 4). */
static inline tm_id analysis_tb(struct tm_snapshot *s, uint32_t total_nframe, int n, ...)
{
	tm_id frames[64];
	va_list ap;
	int i;

	cr_assert(n > 0 && n <= 64);
	va_start(ap, n);
	for (i = 0; i < n; i++) {
		const char *f = va_arg(ap, const char *);
		unsigned lineno = va_arg(ap, unsigned);
		tm_id fid = tm_intern_string(s, f, strlen(f));

		cr_assert_neq(fid, TM_ID_NONE);
		frames[i] = tm_intern_frame(s, fid, lineno);
		cr_assert_neq(frames[i], TM_ID_NONE);
	}
	va_end(ap);
	tm_id id = tm_intern_traceback(s, frames, (uint32_t)n, total_nframe);
	cr_assert_neq(id, TM_ID_NONE);
	return id;
}

static inline void analysis_add(struct tm_snapshot *s, uint32_t domain, uint64_t size, tm_id tb)
{
	cr_assert_eq(tm_add_trace(s, domain, size, tb, 0), 0);
}

/*
 * CPython's Lib/test/test_tracemalloc.py create_snapshots(), trace for trace
 * (traceback_limit = 2). Raw traces are (domain, size, frames, total_nframe).
 */
static inline void analysis_create_snapshots(struct tm_snapshot **s1, struct tm_snapshot **s2)
{
	struct tm_snapshot *a = tm_snapshot_new(), *b = tm_snapshot_new();
	tm_id t;

	cr_assert(a && b);
	a->traceback_limit = 2;
	t = analysis_tb(a, 3, 2, "a.py", 2u, "b.py", 4u);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 1, 2, analysis_tb(a, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(a, 2, 66, analysis_tb(a, 1, 1, "b.py", 1u));
	analysis_add(a, 3, 7, analysis_tb(a, 1, 1, "<unknown>", 0u));

	b->traceback_limit = 2;
	t = analysis_tb(b, 3, 2, "a.py", 2u, "b.py", 4u);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 2, 2, analysis_tb(b, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(b, 2, 5000, analysis_tb(b, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(b, 4, 400, analysis_tb(b, 1, 1, "c.py", 578u));
	*s1 = a;
	*s2 = b;
}

/* Collects what a printing function writes, as one NUL-terminated string. */
struct analysis_capture {
	FILE *fp;
	char *buf;
	size_t len;
};

static inline FILE *analysis_capture_begin(struct analysis_capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->buf, &c->len);
	cr_assert_not_null(c->fp);
	return c->fp;
}

/* Returns the text (caller frees). */
static inline char *analysis_capture_end(struct analysis_capture *c)
{
	fclose(c->fp);
	return c->buf;
}

#endif
