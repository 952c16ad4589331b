// SPDX-License-Identifier: MIT
/*
 * Filter, DomainFilter, Snapshot.filter_traces() and fnmatch: every case of
 * CPython's Lib/test/test_tracemalloc.py TestFilters and TestSnapshot.
 * test_filter_traces* (3.12) with its expected values, the filter table of
 * reference C.4 and an fnmatch edge-case table, both as CPython 3.11.2 printed.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "snapshot/filter.h"
#include "analysis_util.h"

static struct tm_filter mkfilter(bool inclusive, const char *pattern, int64_t lineno,
				 bool all_frames, int64_t domain)
{
	struct tm_filter f;
	struct tm_error err = { "" };

	cr_assert_eq(tm_filter_init(&f, inclusive, pattern, strlen(pattern), lineno, all_frames,
				    domain, &err), 0, "%s", err.msg);
	return f;
}

static struct tm_filter mkdomain(bool inclusive, uint32_t domain)
{
	struct tm_filter f;

	cr_assert_eq(tm_domain_filter_init(&f, inclusive, domain), 0);
	return f;
}

/* Filter(inclusive, pattern)._match_frame(filename, lineno) */
static bool match_frame(bool inclusive, const char *pattern, int64_t lineno,
			const char *filename, uint32_t frame_lineno)
{
	struct tm_filter f = mkfilter(inclusive, pattern, lineno, false, -1);
	bool r = tm_filter_match_frame(&f, filename, strlen(filename), frame_lineno);

	tm_filter_destroy(&f);
	return r;
}

/* Runs filter_traces on a copy of the traces and checks which survive, by
 * index into the original trace list. */
static void expect_kept(struct tm_snapshot *s, struct tm_filter *filters, size_t nfilters,
			const int *kept, size_t nkept)
{
	struct tm_trace *saved = malloc(s->ntraces * sizeof(*saved));
	uint64_t n = s->ntraces, i, k;
	struct tm_error err = { "" };

	memcpy(saved, s->traces, n * sizeof(*saved));
	cr_assert_eq(tm_snapshot_filter_traces(s, filters, nfilters, &err), 0, "%s", err.msg);
	cr_assert_eq(s->ntraces, nkept, "kept %llu traces, expected %zu",
		     (unsigned long long)s->ntraces, nkept);
	for (k = 0; k < nkept; k++) {
		const struct tm_trace *want = &saved[kept[k]];

		cr_assert_eq(memcmp(&s->traces[k], want, sizeof(*want)), 0,
			     "kept trace %llu is not original trace %d", (unsigned long long)k,
			     kept[k]);
	}
	/* restore: the CPython tests reuse the original snapshot */
	memcpy(s->traces, saved, n * sizeof(*saved));
	s->ntraces = n;
	free(saved);
	for (i = 0; i < nfilters; i++)
		tm_filter_destroy(&filters[i]);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define KEPT(s, filters, ...)                                                   \
	do {                                                                    \
		static const int kept_[] = { __VA_ARGS__ };                     \
		expect_kept(s, filters, N(filters), kept_, N(kept_));           \
	} while (0)

/* TestSnapshot.test_filter_traces */
Test(filter, cpython_filter_traces)
{
	struct tm_snapshot *s, *s2;
	struct tm_error err;

	analysis_create_snapshots(&s, &s2);
	/* exclude b.py: (0,10)x3, (1,2), (3,7) */
	struct tm_filter f1[] = { mkfilter(false, "b.py", -1, false, -1) };
	KEPT(s, f1, 0, 1, 2, 3, 5);

	/* snapshot3 then "only include two lines of a.py" */
	struct tm_filter f1again[] = { mkfilter(false, "b.py", -1, false, -1) };
	cr_assert_eq(tm_snapshot_filter_traces(s, f1again, 1, &err), 0);
	tm_filter_destroy(&f1again[0]);
	struct tm_filter f23[] = { mkfilter(true, "a.py", 2, false, -1),
				   mkfilter(true, "a.py", 5, false, -1) };
	KEPT(s, f23, 0, 1, 2, 3);
	tm_snapshot_free(s);
	tm_snapshot_free(s2);

	/* no filter: every trace, in order */
	analysis_create_snapshots(&s, &s2);
	cr_assert_eq(tm_snapshot_filter_traces(s, NULL, 0, &err), 0);
	cr_assert_eq(s->ntraces, 6);
	tm_snapshot_free(s);
	tm_snapshot_free(s2);
}

/* TestSnapshot.test_filter_traces_domain (+ filter2, which CPython's test builds
 * but never applies: [(1, 2, (('a.py', 5), ('b.py', 4)), 3)] in CPython 3.11.2) */
Test(filter, cpython_filter_traces_domain)
{
	struct tm_snapshot *s, *s2;

	analysis_create_snapshots(&s, &s2);
	struct tm_filter exclude_a_dom1[] = { mkfilter(false, "a.py", -1, false, 1) };
	KEPT(s, exclude_a_dom1, 0, 1, 2, 4, 5);
	struct tm_filter include_a_dom1[] = { mkfilter(true, "a.py", -1, false, 1) };
	KEPT(s, include_a_dom1, 3);
	tm_snapshot_free(s);
	tm_snapshot_free(s2);
}

/* TestSnapshot.test_filter_traces_domain_filter */
Test(filter, cpython_filter_traces_domain_filter)
{
	struct tm_snapshot *s, *s2;

	analysis_create_snapshots(&s, &s2);
	struct tm_filter exclude3[] = { mkdomain(false, 3) };
	KEPT(s, exclude3, 0, 1, 2, 3, 4);
	struct tm_filter include3[] = { mkdomain(true, 3) };
	KEPT(s, include3, 5);
	tm_snapshot_free(s);
	tm_snapshot_free(s2);
}

/* TestFilters.test_filter_attributes (the read-only attribute check has no C
 * counterpart) */
Test(filter, cpython_filter_attributes)
{
	struct tm_filter f = mkfilter(true, "abc", -1, false, -1);

	cr_assert_eq(f.inclusive, true);
	cr_assert_str_eq(f.pattern, "abc");
	cr_assert_eq(f.pattern_len, 3);
	cr_assert_eq(f.has_lineno, false);
	cr_assert_eq(f.all_frames, false);
	cr_assert_eq(f.has_domain, false);
	tm_filter_destroy(&f);

	f = mkfilter(false, "test.py", 123, true, -1);
	cr_assert_eq(f.inclusive, false);
	cr_assert_str_eq(f.pattern, "test.py");
	cr_assert_eq(f.has_lineno, true);
	cr_assert_eq(f.lineno, 123);
	cr_assert_eq(f.all_frames, true);
	tm_filter_destroy(&f);

	/* _normalize_filename: Filter(True, 'lib/c.pyc').filename_pattern == 'lib/c.py' */
	f = mkfilter(true, "lib/c.pyc", -1, false, 0);
	cr_assert_str_eq(f.pattern, "lib/c.py");
	cr_assert_eq(f.has_domain, true);
	cr_assert_eq(f.domain, 0);
	tm_filter_destroy(&f);

	f = mkdomain(false, 389047);
	cr_assert_eq(f.kind, TM_FILTER_DOMAIN);
	cr_assert_eq(f.domain, 389047);
	cr_assert_eq(f.inclusive, false);
	tm_filter_destroy(&f);
}

/* TestFilters.test_filter_match */
Test(filter, cpython_filter_match)
{
	static const uint32_t linenos[] = { 0, 5, 10 };
	/* expected _match_frame for ("abc", l) and ("12356", l), l in 0, 5, 10 */
	static const struct {
		bool inclusive;
		int64_t lineno;
		bool abc[3], other[3];
	} rows[] = {
		{ true, -1, { 1, 1, 1 }, { 0, 0, 0 } },
		{ false, -1, { 0, 0, 0 }, { 1, 1, 1 } },
		{ true, 5, { 0, 1, 0 }, { 0, 0, 0 } },
		{ false, 5, { 1, 0, 1 }, { 1, 1, 1 } },
		{ true, 0, { 1, 0, 0 }, { 0, 0, 0 } },
		{ false, 0, { 0, 1, 1 }, { 1, 1, 1 } },
	};
	size_t r, l;

	for (r = 0; r < N(rows); r++) {
		for (l = 0; l < 3; l++) {
			cr_expect_eq(match_frame(rows[r].inclusive, "abc", rows[r].lineno, "abc",
						 linenos[l]), rows[r].abc[l], "row %zu line %u", r,
				     linenos[l]);
			cr_expect_eq(match_frame(rows[r].inclusive, "abc", rows[r].lineno, "12356",
						 linenos[l]), rows[r].other[l], "row %zu line %u", r,
				     linenos[l]);
		}
	}
}

/* TestFilters.test_filter_match_filename */
Test(filter, cpython_filter_match_filename)
{
	cr_assert(match_frame(true, "abc", -1, "abc", 0));
	cr_assert(!match_frame(true, "abc", -1, "12356", 0));
	cr_assert(!match_frame(true, "abc", -1, "<unknown>", 0));
	cr_assert(!match_frame(false, "abc", -1, "abc", 0));
	cr_assert(match_frame(false, "abc", -1, "12356", 0));
	cr_assert(match_frame(false, "abc", -1, "<unknown>", 0));
}

/* TestFilters.test_filter_match_filename_joker (POSIX branches) */
Test(filter, cpython_filter_match_filename_joker)
{
#define FN(name, pattern) match_frame(true, pattern, -1, name, 0)
	/* empty string */
	cr_assert(!FN("abc", ""));
	cr_assert(!FN("", "abc"));
	cr_assert(FN("", ""));
	cr_assert(FN("", "*"));
	/* no * */
	cr_assert(FN("abc", "abc"));
	cr_assert(!FN("abc", "abcd"));
	cr_assert(!FN("abc", "def"));
	/* a* */
	cr_assert(FN("abc", "a*"));
	cr_assert(FN("abc", "abc*"));
	cr_assert(!FN("abc", "b*"));
	cr_assert(!FN("abc", "abcd*"));
	/* a*b */
	cr_assert(FN("abc", "a*c"));
	cr_assert(FN("abcdcx", "a*cx"));
	cr_assert(!FN("abb", "a*c"));
	cr_assert(!FN("abcdce", "a*cx"));
	/* a*b*c */
	cr_assert(FN("abcde", "a*c*e"));
	cr_assert(FN("abcbdefeg", "a*bd*eg"));
	cr_assert(!FN("abcdd", "a*c*e"));
	cr_assert(!FN("abcbdefef", "a*bd*eg"));
	/* replace .pyc suffix with .py */
	cr_assert(FN("a.pyc", "a.py"));
	cr_assert(FN("a.py", "a.pyc"));
	/* case sensitive */
	cr_assert(!FN("aBC", "ABc"));
	cr_assert(!FN("aBcDe", "Ab*dE"));
	cr_assert(!FN("a.pyc", "a.PY"));
	cr_assert(!FN("a.py", "a.PYC"));
	/* there is no alternate separator */
	cr_assert(!FN("a/b", "a\\b"));
	cr_assert(!FN("a\\b", "a/b"));
	cr_assert(!FN("a/b\\c", "a\\b/c"));
	cr_assert(!FN("a/b/c", "a\\b\\c"));
	/* as of 3.5, .pyo is no longer munged to .py */
	cr_assert(!FN("a.pyo", "a.py"));
#undef FN
}

/* TestFilters.test_filter_match_trace */
Test(filter, cpython_filter_match_trace)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id t1 = analysis_tb(s, 2, 2, "a.py", 2u, "b.py", 3u);
	tm_id t2 = analysis_tb(s, 2, 2, "b.py", 4u, "b.py", 5u);
	tm_id t3 = analysis_tb(s, 2, 2, "c.py", 5u, "<unknown>", 0u);
	tm_id unknown = analysis_tb(s, 1, 1, "<unknown>", 0u);
	static const struct {
		bool inclusive;
		const char *pattern;
		bool all_frames;
		bool t1, t2, t3, unknown;
	} rows[] = {
		{ true, "b.py", true, 1, 1, 0, 0 },
		{ true, "b.py", false, 0, 1, 0, 0 },
		{ false, "b.py", true, 0, 0, 1, 1 },
		{ false, "b.py", false, 1, 0, 1, 1 },
		{ false, "<unknown>", false, 1, 1, 1, 0 },
		{ true, "<unknown>", true, 0, 0, 1, 1 },
		{ false, "<unknown>", true, 1, 1, 0, 0 },
	};
	size_t r;

	for (r = 0; r < N(rows); r++) {
		struct tm_filter f = mkfilter(rows[r].inclusive, rows[r].pattern, -1,
					      rows[r].all_frames, -1);

		cr_expect_eq(tm_filter_match_traceback(&f, s, t1), rows[r].t1, "row %zu t1", r);
		cr_expect_eq(tm_filter_match_traceback(&f, s, t2), rows[r].t2, "row %zu t2", r);
		cr_expect_eq(tm_filter_match_traceback(&f, s, t3), rows[r].t3, "row %zu t3", r);
		cr_expect_eq(tm_filter_match_traceback(&f, s, unknown), rows[r].unknown,
			     "row %zu unknown", r);
		tm_filter_destroy(&f);
	}
	tm_snapshot_free(s);
}

/*
 * Reference C.4 and more, on six traces (most recent frame first):
 *   0: dom 0      (a.py:5, main.py:1)     3: dom 0 (lib/y.pyc:2)
 *   1: dom 0      (b.py:3, a.py:6)        4: dom 1 (c.py:4, lib/z.py:9)
 *   2: dom 389047 (lib/x.py:1)            5: dom 0 (lib/c.pyc:7)
 * Kept indexes as CPython 3.11.2's filter_traces() returned them.
 */
static struct tm_snapshot *c4_snapshot(void)
{
	struct tm_snapshot *s = tm_snapshot_new();

	analysis_add(s, 0, 10, analysis_tb(s, 2, 2, "a.py", 5u, "main.py", 1u));
	analysis_add(s, 0, 20, analysis_tb(s, 2, 2, "b.py", 3u, "a.py", 6u));
	analysis_add(s, 389047, 30, analysis_tb(s, 1, 1, "lib/x.py", 1u));
	analysis_add(s, 0, 40, analysis_tb(s, 1, 1, "lib/y.pyc", 2u));
	analysis_add(s, 1, 50, analysis_tb(s, 2, 2, "c.py", 4u, "lib/z.py", 9u));
	analysis_add(s, 0, 60, analysis_tb(s, 1, 1, "lib/c.pyc", 7u));
	return s;
}

Test(filter, reference_c4_table)
{
	struct tm_snapshot *s = c4_snapshot();

	struct tm_filter inc_a[] = { mkfilter(true, "a.py", -1, false, -1) };
	KEPT(s, inc_a, 0);
	struct tm_filter inc_a_all[] = { mkfilter(true, "a.py", -1, true, -1) };
	KEPT(s, inc_a_all, 0, 1);
	struct tm_filter exc_a[] = { mkfilter(false, "a.py", -1, false, -1) };
	KEPT(s, exc_a, 1, 2, 3, 4, 5);
	struct tm_filter star_exc_b_exc_a[] = { mkfilter(true, "*", -1, false, -1),
						mkfilter(false, "b.py", -1, false, -1),
						mkfilter(false, "a.py", -1, false, -1) };
	KEPT(s, star_exc_b_exc_a, 2, 3, 4, 5);
	struct tm_filter exc_star_numpy[] = { mkfilter(false, "*", -1, false, 389047) };
	KEPT(s, exc_star_numpy, 0, 1, 3, 4, 5);
	struct tm_filter exc_lib_dom0[] = { mkfilter(false, "lib/*", -1, false, 0) };
	KEPT(s, exc_lib_dom0, 0, 1, 2, 4);
	struct tm_filter inc_lib_py[] = { mkfilter(true, "lib/*.py", -1, false, -1) };
	KEPT(s, inc_lib_py, 2, 3, 5);
	struct tm_filter inc_lib_c_pyc[] = { mkfilter(true, "lib/c.pyc", -1, false, -1) };
	KEPT(s, inc_lib_c_pyc, 5);
	struct tm_filter inc_a_line6_all[] = { mkfilter(true, "a.py", 6, true, -1) };
	KEPT(s, inc_a_line6_all, 1);
	struct tm_filter exc_lib_all[] = { mkfilter(false, "lib/*", -1, true, -1) };
	KEPT(s, exc_lib_all, 0, 1);
	struct tm_filter inc_dom1_or_a[] = { mkdomain(true, 1), mkfilter(true, "a.py", -1, false, -1) };
	KEPT(s, inc_dom1_or_a, 0, 4);
	struct tm_filter inc_dom0_exc_b[] = { mkdomain(true, 0), mkfilter(false, "b.py", -1, false, -1) };
	KEPT(s, inc_dom0_exc_b, 0, 3, 5);
	struct tm_filter exc_dom0[] = { mkdomain(false, 0) };
	KEPT(s, exc_dom0, 2, 4);
	struct tm_filter inc_star_dom0[] = { mkfilter(true, "*", -1, false, 0) };
	KEPT(s, inc_star_dom0, 0, 1, 3, 5);
	tm_snapshot_free(s);
}

Test(filter, bad_filter_arguments)
{
	struct tm_filter f;
	struct tm_error err = { "" };

	cr_assert_eq(tm_filter_init(&f, true, "a", 1, (int64_t)UINT32_MAX + 1, false, -1, &err), -1);
	cr_assert(strstr(err.msg, "line number"), "%s", err.msg);
	cr_assert_eq(tm_filter_init(&f, true, "a", 1, -1, false, (int64_t)UINT32_MAX + 1, &err), -1);
	cr_assert(strstr(err.msg, "domain"), "%s", err.msg);
}

#include "analysis_fnmatch_table.h"

/* fnmatch.fnmatch() edge cases: classes, ranges, '!' and ']' placement,
 * unclosed '[', regex metacharacters, newlines, non-ASCII and surrogates. */
Test(filter, fnmatch_table_from_cpython)
{
	size_t r, k, nnames = N(fnmatch_names);

	for (r = 0; r < N(fnmatch_rows); r++) {
		const char *pat = fnmatch_rows[r].pattern;

		cr_assert_eq(strlen(fnmatch_rows[r].matches), nnames);
		for (k = 0; k < nnames; k++) {
			const char *name = fnmatch_names[k];
			bool want = fnmatch_rows[r].matches[k] == '1';

			cr_expect_eq(tm_fnmatch(pat, strlen(pat), name, strlen(name)), want,
				     "fnmatch(%s, %s) should be %d", name, pat, want);
		}
	}
}
