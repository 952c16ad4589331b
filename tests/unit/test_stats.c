// SPDX-License-Identifier: MIT
/*
 * Snapshot.statistics() and compare_to(): every case of CPython's
 * Lib/test/test_tracemalloc.py TestSnapshot.test_snapshot_group_by_* (3.12,
 * same in 3.9..3.13), with its expected values, plus the semantics probes of
 * reference C.5-C.7 (cumulative counts each occurrence, total_nframe ignored by
 * grouping, tuple order of tracebacks) whose values were printed by CPython.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "snapshot/stats.h"
#include "analysis_util.h"

/* An expected statistic: its key as "file:line|file:line" MOST RECENT FIRST
 * (as CPython's test writes raw frames), size, count (and diffs). */
struct exp_stat {
	const char *key;
	uint64_t size;
	int64_t size_diff;
	uint64_t count;
	int64_t count_diff;
};

static void key_of(char *buf, size_t bufsz, const struct tm_stat_frame *f, uint32_t n)
{
	size_t o = 0;
	uint32_t i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, bufsz - o, "%s%.*s:%u", i ? "|" : "",
				      (int)f[i].filename.len, f[i].filename.data, f[i].lineno);
}

static void check_stats(const struct tm_stats *st, const struct exp_stat *exp, size_t n)
{
	char key[256];
	size_t i;

	cr_assert(!st->is_diff);
	cr_assert_eq(st->n, n, "got %zu statistics, expected %zu", st->n, n);
	for (i = 0; i < n; i++) {
		key_of(key, sizeof(key), st->stats[i].frames, st->stats[i].nframe);
		cr_expect_str_eq(key, exp[i].key, "stat %zu", i);
		cr_expect_eq(st->stats[i].size, exp[i].size, "stat %zu (%s) size", i, key);
		cr_expect_eq(st->stats[i].count, exp[i].count, "stat %zu (%s) count", i, key);
	}
}

static void check_diffs(const struct tm_stats *st, const struct exp_stat *exp, size_t n)
{
	char key[256];
	size_t i;

	cr_assert(st->is_diff);
	cr_assert_eq(st->n, n, "got %zu diffs, expected %zu", st->n, n);
	for (i = 0; i < n; i++) {
		const struct tm_statistic_diff *d = &st->diffs[i];

		key_of(key, sizeof(key), d->frames, d->nframe);
		cr_expect_str_eq(key, exp[i].key, "diff %zu", i);
		cr_expect_eq(d->size, exp[i].size, "diff %zu (%s) size", i, key);
		cr_expect_eq(d->size_diff, exp[i].size_diff, "diff %zu (%s) size_diff", i, key);
		cr_expect_eq(d->count, exp[i].count, "diff %zu (%s) count", i, key);
		cr_expect_eq(d->count_diff, exp[i].count_diff, "diff %zu (%s) count_diff", i, key);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void stats_of(const struct tm_snapshot *s, enum tm_key_type k, bool cumulative,
		     const struct exp_stat *exp, size_t n)
{
	struct tm_stats st;
	struct tm_error err = { "" };

	cr_assert_eq(tm_statistics(s, k, cumulative, &st, &err), 0, "%s", err.msg);
	check_stats(&st, exp, n);
	tm_stats_free(&st);
}

static void diffs_of(const struct tm_snapshot *s_new, const struct tm_snapshot *s_old,
		     enum tm_key_type k, bool cumulative, const struct exp_stat *exp, size_t n)
{
	struct tm_stats st;
	struct tm_error err = { "" };

	cr_assert_eq(tm_compare_to(s_new, s_old, k, cumulative, &st, &err), 0, "%s", err.msg);
	check_diffs(&st, exp, n);
	tm_stats_free(&st);
}

/* test_snapshot_group_by_line */
Test(stats, cpython_group_by_line)
{
	struct tm_snapshot *s1, *s2;
	static const struct exp_stat stats1[] = {
		{ "b.py:1", 66, 0, 1, 0 },
		{ "a.py:2", 30, 0, 3, 0 },
		{ "<unknown>:0", 7, 0, 1, 0 },
		{ "a.py:5", 2, 0, 1, 0 },
	};
	static const struct exp_stat stats2[] = {
		{ "a.py:5", 5002, 0, 2, 0 },
		{ "c.py:578", 400, 0, 1, 0 },
		{ "a.py:2", 30, 0, 3, 0 },
	};
	static const struct exp_stat diff[] = {
		{ "a.py:5", 5002, 5000, 2, 1 },
		{ "c.py:578", 400, 400, 1, 1 },
		{ "b.py:1", 0, -66, 0, -1 },
		{ "<unknown>:0", 0, -7, 0, -1 },
		{ "a.py:2", 30, 0, 3, 0 },
	};

	analysis_create_snapshots(&s1, &s2);
	stats_of(s1, TM_KEY_LINENO, false, stats1, N(stats1));
	stats_of(s2, TM_KEY_LINENO, false, stats2, N(stats2));
	diffs_of(s2, s1, TM_KEY_LINENO, false, diff, N(diff));
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

/* test_snapshot_group_by_file */
Test(stats, cpython_group_by_file)
{
	struct tm_snapshot *s1, *s2;
	static const struct exp_stat stats1[] = {
		{ "b.py:0", 66, 0, 1, 0 },
		{ "a.py:0", 32, 0, 4, 0 },
		{ "<unknown>:0", 7, 0, 1, 0 },
	};
	static const struct exp_stat stats2[] = {
		{ "a.py:0", 5032, 0, 5, 0 },
		{ "c.py:0", 400, 0, 1, 0 },
	};
	static const struct exp_stat diff[] = {
		{ "a.py:0", 5032, 5000, 5, 1 },
		{ "c.py:0", 400, 400, 1, 1 },
		{ "b.py:0", 0, -66, 0, -1 },
		{ "<unknown>:0", 0, -7, 0, -1 },
	};

	analysis_create_snapshots(&s1, &s2);
	stats_of(s1, TM_KEY_FILENAME, false, stats1, N(stats1));
	stats_of(s2, TM_KEY_FILENAME, false, stats2, N(stats2));
	diffs_of(s2, s1, TM_KEY_FILENAME, false, diff, N(diff));
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

/* test_snapshot_group_by_traceback (keys written most recent first) */
Test(stats, cpython_group_by_traceback)
{
	struct tm_snapshot *s1, *s2;
	struct tm_stats st;
	struct tm_error err = { "" };
	static const struct exp_stat stats1[] = {
		{ "b.py:1", 66, 0, 1, 0 },                      /* tb3 */
		{ "a.py:2|b.py:4", 30, 0, 3, 0 },               /* tb1 */
		{ "<unknown>:0", 7, 0, 1, 0 },                  /* tb4 */
		{ "a.py:5|b.py:4", 2, 0, 1, 0 },                /* tb2 */
	};
	static const struct exp_stat stats2[] = {
		{ "a.py:5|b.py:4", 5002, 0, 2, 0 },
		{ "c.py:578", 400, 0, 1, 0 },
		{ "a.py:2|b.py:4", 30, 0, 3, 0 },
	};
	static const struct exp_stat diff[] = {
		{ "a.py:5|b.py:4", 5002, 5000, 2, 1 },
		{ "c.py:578", 400, 400, 1, 1 },
		{ "b.py:1", 0, -66, 0, -1 },
		{ "<unknown>:0", 0, -7, 0, -1 },
		{ "a.py:2|b.py:4", 30, 0, 3, 0 },
	};

	analysis_create_snapshots(&s1, &s2);
	stats_of(s1, TM_KEY_TRACEBACK, false, stats1, N(stats1));
	stats_of(s2, TM_KEY_TRACEBACK, false, stats2, N(stats2));
	diffs_of(s2, s1, TM_KEY_TRACEBACK, false, diff, N(diff));
	/* assertRaises(ValueError, snapshot.statistics, 'traceback', cumulative=True) */
	cr_assert_eq(tm_statistics(s1, TM_KEY_TRACEBACK, true, &st, &err), -1);
	cr_assert_str_eq(err.msg, "cumulative mode cannot by used with key type 'traceback'");
	cr_assert_eq(tm_compare_to(s2, s1, TM_KEY_TRACEBACK, true, &st, &err), -1);
	cr_assert_str_eq(err.msg, "cumulative mode cannot by used with key type 'traceback'");
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

/* test_snapshot_group_by_cumulative */
Test(stats, cpython_group_by_cumulative)
{
	struct tm_snapshot *s1, *s2;
	static const struct exp_stat by_file[] = {
		{ "b.py:0", 98, 0, 5, 0 },
		{ "a.py:0", 32, 0, 4, 0 },
		{ "<unknown>:0", 7, 0, 1, 0 },
	};
	static const struct exp_stat by_line[] = {
		{ "b.py:1", 66, 0, 1, 0 },
		{ "b.py:4", 32, 0, 4, 0 },
		{ "a.py:2", 30, 0, 3, 0 },
		{ "<unknown>:0", 7, 0, 1, 0 },
		{ "a.py:5", 2, 0, 1, 0 },
	};

	analysis_create_snapshots(&s1, &s2);
	stats_of(s1, TM_KEY_FILENAME, true, by_file, N(by_file));
	stats_of(s1, TM_KEY_LINENO, true, by_line, N(by_line));
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

/*
 * Reference C.5: a recursive traceback (a.py:5, a.py:5, a.py:5, main.py:1) of
 * 100 B counts a.py:5 three times; file a.py collects 100*3 + 30*2 = 360 B,
 * count 5. CPython 3.11.2 printed:
 *   statistics('lineno', True):  a.py:5 300/3, main.py:1 130/2, a.py:7 60/2
 *   statistics('filename', True): a.py:0 360/5, main.py:0 130/2
 */
Test(stats, cumulative_counts_every_occurrence)
{
	struct tm_snapshot *s = tm_snapshot_new();
	static const struct exp_stat by_line[] = {
		{ "a.py:5", 300, 0, 3, 0 },
		{ "main.py:1", 130, 0, 2, 0 },
		{ "a.py:7", 60, 0, 2, 0 },
	};
	static const struct exp_stat by_file[] = {
		{ "a.py:0", 360, 0, 5, 0 },
		{ "main.py:0", 130, 0, 2, 0 },
	};

	analysis_add(s, 0, 100, analysis_tb(s, 4, 4, "a.py", 5u, "a.py", 5u, "a.py", 5u,
					    "main.py", 1u));
	analysis_add(s, 0, 30, analysis_tb(s, 3, 3, "a.py", 7u, "a.py", 7u, "main.py", 1u));
	stats_of(s, TM_KEY_LINENO, true, by_line, N(by_line));
	stats_of(s, TM_KEY_FILENAME, true, by_file, N(by_file));
	tm_snapshot_free(s);
}

/*
 * Traceback equality ignores total_nframe: traces whose frames are equal but
 * whose total_nframe differ share one 'traceback' group (values from CPython:
 * Snapshot([(0,10,(('a.py',1),),1),(0,5,(('a.py',1),),9)],1).statistics('traceback')
 * -> [a.py:1 size=15 count=2]).
 */
Test(stats, traceback_key_ignores_total_nframe)
{
	struct tm_snapshot *s = tm_snapshot_new();
	static const struct exp_stat exp[] = { { "a.py:1", 15, 0, 2, 0 } };

	analysis_add(s, 0, 10, analysis_tb(s, 1, 1, "a.py", 1u));
	analysis_add(s, 0, 5, analysis_tb(s, 9, 1, "a.py", 1u));
	cr_assert_eq(s->ntracebacks, 2);
	stats_of(s, TM_KEY_TRACEBACK, false, exp, N(exp));
	tm_snapshot_free(s);
}

/*
 * Reference C.6: equal sizes and counts sort by traceback, descending, in
 * tuple order of OLDEST-FIRST frames: b.py:1, a.py:10, a.py:2, a.py:1.
 * For 'traceback' keys the oldest frames decide first, and a prefix sorts
 * lower. Keys below are written most recent first; oldest-first they are
 * (z,x) > (a,z) > (a,y) > (a,a) > (a,) -- the order /usr/bin/python3 (3.11.2)
 * printed for this snapshot.
 */
Test(stats, ties_sort_by_traceback_tuple)
{
	struct tm_snapshot *s = tm_snapshot_new();
	static const struct exp_stat lines[] = {
		{ "b.py:1", 8, 0, 1, 0 },
		{ "a.py:10", 8, 0, 1, 0 },
		{ "a.py:2", 8, 0, 1, 0 },
		{ "a.py:1", 8, 0, 1, 0 },
	};
	static const struct exp_stat tbs[] = {
		{ "x.py:1|z.py:1", 8, 0, 1, 0 },
		{ "z.py:1|a.py:1", 8, 0, 1, 0 },
		{ "y.py:1|a.py:1", 8, 0, 1, 0 },
		{ "a.py:1|a.py:1", 8, 0, 1, 0 },
		{ "a.py:1", 8, 0, 1, 0 },
	};

	analysis_add(s, 0, 8, analysis_tb(s, 1, 1, "a.py", 2u));
	analysis_add(s, 0, 8, analysis_tb(s, 1, 1, "a.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 1, 1, "b.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 1, 1, "a.py", 10u));
	stats_of(s, TM_KEY_LINENO, false, lines, N(lines));
	tm_snapshot_free(s);

	s = tm_snapshot_new();
	analysis_add(s, 0, 8, analysis_tb(s, 2, 2, "y.py", 1u, "a.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 1, 1, "a.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 2, 2, "x.py", 1u, "z.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 2, 2, "a.py", 1u, "a.py", 1u));
	analysis_add(s, 0, 8, analysis_tb(s, 2, 2, "z.py", 1u, "a.py", 1u));
	stats_of(s, TM_KEY_TRACEBACK, false, tbs, N(tbs));
	tm_snapshot_free(s);
}

/* Reference C.7: a group only in the old snapshot has size 0 (-50 B), count 0
 * (-1). Order as CPython 3.11.2 printed it: abs(size_diff) 50, 40, 20. */
Test(stats, compare_to_matches_by_content_across_string_tables)
{
	struct tm_snapshot *old = tm_snapshot_new(), *new = tm_snapshot_new();
	static const struct exp_stat diff[] = {
		{ "gone.py:1", 0, -50, 0, -1 },
		{ "b.py:7", 60, -40, 2, 1 },
		{ "new.py:3", 20, 20, 1, 1 },
	};

	/* different string and frame ids on each side */
	analysis_add(old, 0, 50, analysis_tb(old, 1, 1, "gone.py", 1u));
	analysis_add(old, 0, 100, analysis_tb(old, 1, 1, "b.py", 7u));
	analysis_add(new, 0, 20, analysis_tb(new, 1, 1, "new.py", 3u));
	analysis_add(new, 0, 30, analysis_tb(new, 1, 1, "b.py", 7u));
	analysis_add(new, 0, 30, analysis_tb(new, 1, 1, "b.py", 7u));
	diffs_of(new, old, TM_KEY_LINENO, false, diff, N(diff));
	tm_snapshot_free(old);
	tm_snapshot_free(new);
}

/* A loaded string table may hold a value twice: groups still form by value. */
Test(stats, duplicate_table_values_group_by_content)
{
	struct tm_snapshot *s = tm_snapshot_new();
	static const struct exp_stat lines[] = { { "a.py:1", 30, 0, 3, 0 } };
	static const struct exp_stat files[] = { { "a.py:0", 30, 0, 3, 0 } };
	tm_id tb;

	analysis_add(s, 0, 10, analysis_tb(s, 1, 1, "a.py", 1u));
	/* append a second "a.py" string and a frame and traceback on it by hand,
	 * as a loader filling the arrays could */
	s->str_pool = realloc(s->str_pool, s->str_pool_len + 5);
	memcpy(s->str_pool + s->str_pool_len, "a.py", 5);
	s->str_pool_len += 5;
	s->str_off = realloc(s->str_off, (s->nstrings + 2) * sizeof(uint64_t));
	s->str_off[++s->nstrings] = s->str_pool_len;
	s->str_cap = s->nstrings;
	s->frames = realloc(s->frames, (s->nframes + 1) * sizeof(struct tm_frame));
	s->frames[s->nframes++] = (struct tm_frame){ s->nstrings - 1, 1 };
	s->frames_cap = s->nframes;
	s->frame_ids = realloc(s->frame_ids, (s->nframe_ids + 1) * sizeof(tm_id));
	s->frame_ids[s->nframe_ids++] = s->nframes - 1;
	s->frame_ids_cap = s->nframe_ids;
	s->tracebacks = realloc(s->tracebacks, (s->ntracebacks + 1) * sizeof(struct tm_traceback));
	tb = s->ntracebacks++;
	s->tracebacks[tb] = (struct tm_traceback){ s->nframe_ids - 1, 1, 1 };
	s->tracebacks_cap = s->ntracebacks;
	analysis_add(s, 0, 10, tb);
	analysis_add(s, 0, 10, tb);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	stats_of(s, TM_KEY_LINENO, false, lines, N(lines));
	stats_of(s, TM_KEY_FILENAME, false, files, N(files));
	stats_of(s, TM_KEY_TRACEBACK, false, lines, N(lines));
	stats_of(s, TM_KEY_LINENO, true, lines, N(lines));
	tm_snapshot_free(s);
}

Test(stats, empty_snapshot_and_unused_tracebacks)
{
	struct tm_snapshot *s = tm_snapshot_new(), *t = tm_snapshot_new();
	struct tm_stats st;
	struct tm_error err;

	analysis_tb(s, 1, 1, "never.py", 1u);   /* a traceback no trace uses */
	cr_assert_eq(tm_statistics(s, TM_KEY_LINENO, false, &st, &err), 0);
	cr_assert_eq(st.n, 0);
	tm_stats_free(&st);
	cr_assert_eq(tm_compare_to(s, t, TM_KEY_TRACEBACK, false, &st, &err), 0);
	cr_assert_eq(st.n, 0);
	tm_stats_free(&st);
	tm_snapshot_free(s);
	tm_snapshot_free(t);
}

Test(stats, key_type_names)
{
	enum tm_key_type k;

	cr_assert_eq(tm_key_type_parse("lineno", &k), 0);
	cr_assert_eq(k, TM_KEY_LINENO);
	cr_assert_eq(tm_key_type_parse("filename", &k), 0);
	cr_assert_eq(k, TM_KEY_FILENAME);
	cr_assert_eq(tm_key_type_parse("traceback", &k), 0);
	cr_assert_eq(k, TM_KEY_TRACEBACK);
	cr_assert_eq(tm_key_type_parse("Lineno", &k), -1);
	cr_assert_eq(tm_key_type_parse("", &k), -1);
	cr_assert_str_eq(tm_key_type_name(TM_KEY_FILENAME), "filename");
}
