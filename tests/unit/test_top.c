// SPDX-License-Identifier: MIT
/*
 * The screen of `tmbpf top` (output/top.c) drawn from fixed snapshots, no
 * BPF: three CPython pickles stand for the start, the previous refresh and
 * now, and tests/py/top_oracle.py computes the same screen with tracemalloc
 * (statistics() for the rows, compare_to() for their changes, _format_size,
 * linecache for the source lines). The header of live captures (exact and
 * growth tiers), which pickles cannot carry, is checked line by line.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>

#include "analysis_util.h"
#include "cli_util.h"
#include "output/top.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"

#define TOP_ORACLE "tests/py/top_oracle.py"
#define TOP_MKSNAP "tests/py/cli_mksnap.py"
#define FG_ORACLE_PY "tests/py/fg_oracle.py"

static char *dir;

static void setup(void)
{
	dir = cli_mkdtemp("top");
}

static void teardown(void)
{
	cli_rmtree(dir);
	dir = NULL;
}

TestSuite(top, .init = setup, .fini = teardown, .timeout = 300);

static void py_ok(struct cli_run *r, const char *const *args)
{
	char *argv[40];
	int n = 0;

	argv[n++] = (char *)CLI_PYTHON;
	argv[n++] = (char *)"-E";
	argv[n++] = (char *)"-s";
	for (; *args; args++) {
		cr_assert_lt(n, 39);
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	cli_run_argv(dir, argv, r);
	cr_assert_eq(r->status, 0, "%s %s: exit %d: %s", argv[3], argv[4], r->status, r->err);
}

static struct tm_snapshot *load(const char *path)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load(path, &err);

	cr_assert_not_null(s, "%s", err.msg);
	return s;
}

/* The screen after two refreshes: start, then prev, then now. */
static char *render(const char *start, const char *prev, const char *now,
		    const struct top_opts *o)
{
	struct top_state t;
	struct tm_error err = { "" };
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	cr_assert_eq(top_state_init(&t, o, load(start), &err), 0, "%s", err.msg);
	cr_assert_eq(top_state_update(&t, load(prev), &err), 0, "%s", err.msg);
	cr_assert_eq(top_state_update(&t, load(now), &err), 0, "%s", err.msg);
	m = open_memstream(&buf, &len);
	cr_assert_not_null(m);
	cr_assert_eq(top_render(m, &t, &err), 0, "%s", err.msg);
	fclose(m);
	top_state_destroy(&t);
	cli_track(buf);
	return buf;
}

static void same_text(const char *got, const char *want, const char *what)
{
	size_t i = 0, line = 1, start = 0;

	if (!strcmp(got, want))
		return;
	while (got[i] && got[i] == want[i]) {
		if (got[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	cr_assert_fail("%s: differs at line %zu\n  tmbpf:   %.300s\n  CPython: %.300s", what, line,
		       got + start, want + start);
}

/* One option set: our screen against top_oracle.py's. */
struct top_case {
	const char *key_type;
	bool cumulative;
	uint64_t limit;
	unsigned width, height;
};

static void check_case(const char *start, const char *prev, const char *now,
		       const struct top_case *c)
{
	struct top_opts o = {
		.limit = c->limit,
		.cumulative = c->cumulative,
		.width = c->width,
		.height = c->height,
		.interval = 2,
	};
	char limit[24], width[24], height[24], what[200];
	const char *args[24] = { TOP_ORACLE, start, prev, now, "--key-type", c->key_type,
				 "--limit", limit, "--width", width, "--height", height,
				 "--interval", "2" };
	struct cli_run want;

	cr_assert_eq(tm_key_type_parse(c->key_type, &o.key_type), 0);
	snprintf(limit, sizeof(limit), "%" PRIu64, c->limit);
	snprintf(width, sizeof(width), "%u", c->width);
	snprintf(height, sizeof(height), "%u", c->height);
	if (c->cumulative)
		args[14] = "--cumulative";
	py_ok(&want, args);
	snprintf(what, sizeof(what), "key %s%s limit %" PRIu64 " width %u height %u", c->key_type,
		 c->cumulative ? " cumulative" : "", c->limit, c->width, c->height);
	same_text(render(start, prev, now, &o), want.out, what);
	cli_run_free(&want);
}

static void mksnap(const char *out, const char *seed, const char *const *extra)
{
	const char *args[32] = { TOP_MKSNAP, out, "--seed", seed, "--pool-seed", "9" };
	int n = 6;
	struct cli_run r;

	for (; extra && *extra; extra++)
		args[n++] = *extra;
	py_ok(&r, args);
	cli_run_free(&r);
}

static const struct top_case cases[] = {
	{ "lineno", false, 10, 0, 0 },
	{ "lineno", false, 0, 0, 0 },
	{ "filename", false, 0, 0, 0 },
	{ "traceback", false, 6, 0, 0 },
	{ "lineno", true, 15, 0, 0 },
	{ "filename", true, 0, 0, 0 },
	/* fitted to a terminal */
	{ "lineno", false, 10, 120, 0 },
	{ "lineno", false, 10, 80, 24 },
	{ "lineno", false, 0, 60, 12 },
	{ "traceback", false, 0, 70, 30 },
	{ "lineno", false, 10, 30, 0 },
	{ "lineno", false, 10, 10, 5 },
};

/* Three snapshots over the same files and lines, with real source files:
 * rows appear, grow, shrink and vanish between them. */
Test(top, screen_matches_cpython_statistics_and_compare_to)
{
	const char *s0 = cli_path(dir, "s0.pickle"), *s1 = cli_path(dir, "s1.pickle");
	const char *s2 = cli_path(dir, "s2.pickle");
	const char *const extra[] = { "--weird", "--source-dir", dir, "--traces", "1500",
				      "--files", "6", NULL };
	const char *const fewer[] = { "--weird", "--source-dir", dir, "--traces", "300",
				      "--files", "6", NULL };

	mksnap(s0, "1", fewer);
	mksnap(s1, "2", extra);
	mksnap(s2, "3", extra);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(s0, s1, s2, &cases[i]);
	/* and with every refresh the same snapshot: no change at all */
	check_case(s2, s2, s2, &cases[0]);
}

/* File names that need escaping stay on one row, and are cut as characters. */
Test(top, hostile_names_stay_on_one_row)
{
	const char *h = cli_path(dir, "h.pickle"), *e = cli_path(dir, "e.pickle");
	const char *const hargs[] = { FG_ORACLE_PY, "hostile", h, NULL };
	const char *const empty[] = { "--traces", "0", NULL };
	struct cli_run r;

	py_ok(&r, hargs);
	cli_run_free(&r);
	mksnap(e, "1", empty);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(e, e, h, &cases[i]);
	check_case(h, e, h, &cases[3]);
}

/* A targeted sequence, with the numbers compare_to() gives written out. */
Test(top, changes_since_previous_and_start)
{
	const char *p[3] = { cli_path(dir, "a.pickle"), cli_path(dir, "b.pickle"),
			     cli_path(dir, "c.pickle") };
	struct tm_error err = { "" };
	struct tm_snapshot *s[3];
	struct top_opts o = { .key_type = TM_KEY_LINENO, .limit = 10 };
	char *got;

	for (int i = 0; i < 3; i++) {
		s[i] = tm_snapshot_new();
		cr_assert_not_null(s[i]);
		s[i]->traceback_limit = 1;
	}
	analysis_add(s[0], 0, 100, analysis_tb(s[0], 1, 1, "a.py", 1u));
	analysis_add(s[1], 0, 300, analysis_tb(s[1], 1, 1, "a.py", 1u));
	analysis_add(s[1], 0, 50, analysis_tb(s[1], 1, 1, "b.py", 2u));
	analysis_add(s[2], 0, 200, analysis_tb(s[2], 1, 1, "a.py", 1u));
	analysis_add(s[2], 0, 50, analysis_tb(s[2], 1, 1, "a.py", 1u));
	analysis_add(s[2], 0, 10, analysis_tb(s[2], 1, 1, "c.py", 3u));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tm_snapshot_save_pickle(s[i], p[i], TM_PICKLE_PY39, &err), 0, "%s",
			     err.msg);
		tm_snapshot_free(s[i]);
	}
	got = render(p[0], p[1], p[2], &o);
	same_text(got,
		  "tmbpf top - PID unknown, refresh 2\n"
		  "CPython version unknown, tracemalloc snapshot, coverage unknown\n"
		  "Traced memory: unknown; tmbpf memory: unknown\n"
		  "Top 2 of 2 lines; 260 B in 3 traces\n"
		  "\n"
		  "      SIZE      CHANGE  SINCE START     COUNT  LINE\n"
		  "     250 B       -50 B       +150 B         2  a.py:1\n"
		  "      10 B       +10 B        +10 B         1  c.py:3\n", "sequence");
	/* the same through CPython */
	check_case(p[0], p[1], p[2], &cases[0]);
}

/* CPython refuses cumulative statistics by traceback; so does top. */
Test(top, cumulative_traceback_is_refused)
{
	struct top_opts o = { .key_type = TM_KEY_TRACEBACK, .cumulative = true };
	struct top_state t;
	struct tm_error err = { "" };

	cr_assert_eq(top_state_init(&t, &o, tm_snapshot_new(), &err), -1);
	cr_assert_str_eq(err.msg, "cumulative mode cannot by used with key type 'traceback'");
}

/* ---- headers of live captures --------------------------------------------------- */

static struct tm_snapshot *capture(enum tm_tier tier)
{
	struct tm_snapshot *s = tm_snapshot_new();
	const char *cmd = "python3 app.py --port 8080", *py = "3.11.2 /usr/bin/python3.11";
	const char *note = "every allocator call";

	cr_assert_not_null(s);
	s->traceback_limit = 1;
	s->capture.tier = tier;
	s->capture.coverage = tier == TM_TIER_GROWTH ? TM_COVERAGE_SAMPLED : TM_COVERAGE_COMPLETE;
	s->capture.pid = 4242;
	s->capture.command = tm_intern_string(s, cmd, strlen(cmd));
	s->capture.python = tm_intern_string(s, py, strlen(py));
	s->capture.coverage_note = tm_intern_string(s, note, strlen(note));
	s->capture.start_ns = 1700000000000000000ULL;
	s->capture.taken_ns = s->capture.start_ns + 3725900000000ULL;  /* 1:02:05.9 */
	s->capture.traced_current = 1234567;
	s->capture.traced_peak = 2469134;
	s->capture.tracer_memory = 3u << 20;
	return s;
}

static char *render_one(struct tm_snapshot *s, const struct top_opts *o)
{
	struct top_state t;
	struct tm_error err = { "" };
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	cr_assert_not_null(m);
	cr_assert_eq(top_state_init(&t, o, s, &err), 0, "%s", err.msg);
	cr_assert_eq(top_render(m, &t, &err), 0, "%s", err.msg);
	fclose(m);
	top_state_destroy(&t);
	cli_track(buf);
	return buf;
}

Test(top, header_of_exact_tier)
{
	struct tm_snapshot *s = capture(TM_TIER_EXACT);
	struct top_opts o = { .key_type = TM_KEY_LINENO, .limit = 10, .interval = 0.5 };

	analysis_add(s, 0, 4096, analysis_tb(s, 1, 1, "/srv/app.py", 7u));
	cr_assert_eq(tm_set_counter(s, "lost.live_map_full", 3), 0);
	cr_assert_eq(tm_set_counter(s, "frames.unresolved", 0), 0);
	cr_assert_eq(tm_set_counter(s, "calls.brk", 5), 0);
	cr_assert_eq(tm_set_counter(s, "code.read_faults", 2), 0);
	same_text(render_one(s, &o),
		  "tmbpf top - PID 4242: python3 app.py --port 8080 - elapsed 1:02:05, refresh 0 "
		  "every 0.5 s\n"
		  "CPython 3.11.2 /usr/bin/python3.11, exact tier, coverage complete: every "
		  "allocator call\n"
		  "Traced memory: current 1206 KiB, peak 2411 KiB; tmbpf memory: 3072 KiB\n"
		  "Not seen or not resolved (counted): lost.live_map_full=3 code.read_faults=2\n"
		  "Top 1 of 1 lines; 4096 B in 1 trace\n"
		  "\n"
		  "      SIZE      CHANGE  SINCE START     COUNT  LINE\n"
		  "    4096 B        +0 B         +0 B         1  /srv/app.py:7\n", "exact header");
}

Test(top, header_of_growth_tier)
{
	struct tm_snapshot *s = capture(TM_TIER_GROWTH);
	struct top_opts o = { .key_type = TM_KEY_FILENAME, .limit = 1, .interval = 2,
			      .note = "Showing domain 1: resident pages that grew while tracing" };

	analysis_add(s, 1, 8u << 20, analysis_tb(s, 1, 1, "/srv/big.py", 3u));
	analysis_add(s, 1, 65536, analysis_tb(s, 1, 1, "/srv/small.py", 9u));
	cr_assert_eq(tm_set_counter(s, "rss.start", 10u << 20), 0);
	cr_assert_eq(tm_set_counter(s, "rss.now", 25u << 20), 0);
	same_text(render_one(s, &o),
		  "tmbpf top - PID 4242: python3 app.py --port 8080 - elapsed 1:02:05, refresh 0 "
		  "every 2 s\n"
		  "CPython 3.11.2 /usr/bin/python3.11, growth tier, coverage sampled: every "
		  "allocator call\n"
		  "RSS: 10.0 MiB at start, 25.0 MiB now (+15.0 MiB); attributed resident growth "
		  "8256 KiB; tmbpf memory: 3072 KiB\n"
		  "Showing domain 1: resident pages that grew while tracing\n"
		  "Top 1 of 2 files; 8256 KiB in 2 traces\n"
		  "\n"
		  "      SIZE      CHANGE  SINCE START     COUNT  FILE\n"
		  "  8192 KiB        +0 B         +0 B         1  /srv/big.py\n"
		  "1 other: 64.0 KiB\n", "growth header");
}

/* In a narrow terminal the header lines are cut too, and a long location
 * keeps its end. */
Test(top, narrow_terminal)
{
	struct tm_snapshot *s = capture(TM_TIER_EXACT);
	struct top_opts o = { .key_type = TM_KEY_LINENO, .limit = 10, .width = 60, .height = 9 };

	analysis_add(s, 0, 100, analysis_tb(s, 1, 1, "/very/long/path/to/some/package/module.py",
					    1234u));
	analysis_add(s, 0, 50, analysis_tb(s, 1, 1, "b.py", 1u));
	same_text(render_one(s, &o),
		  "tmbpf top - PID 4242: python3 app.py --port 8080 - elapsed 1\n"
		  "CPython 3.11.2 /usr/bin/python3.11, exact tier, coverage com\n"
		  "Traced memory: current 1206 KiB, peak 2411 KiB; tmbpf memory\n"
		  "Top 1 of 2 lines; 150 B in 2 traces\n"
		  "\n"
		  "      SIZE      CHANGE  SINCE START     COUNT  LINE\n"
		  "     100 B        +0 B         +0 B         1  ..ule.py:1234\n"
		  "1 other: 50 B\n", "narrow");
}
