// SPDX-License-Identifier: MIT
/*
 * Text forms: _format_size(), str(Statistic), str(StatisticDiff), str(Trace),
 * Traceback.format() with linecache, and surrogateescape printing. The cases of
 * CPython's Lib/test/test_tracemalloc.py (test_trace_format,
 * test_statistic_format, test_statistic_diff_format, test_format_traceback),
 * reference C.8-C.10, and tables printed by CPython itself.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/format.h"
#include "snapshot/stats.h"
#include "analysis_util.h"
#include "analysis_format_table.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(format, format_size_ints_from_cpython)
{
	char b[TM_SIZE_BUF];
	size_t i;

	for (i = 0; i < N(size_ints); i++) {
		cr_expect_str_eq(tm_format_size(b, size_ints[i].size, false), size_ints[i].plain,
				 "_format_size(%lld, False)", (long long)size_ints[i].size);
		cr_expect_str_eq(tm_format_size(b, size_ints[i].size, true), size_ints[i].sign,
				 "_format_size(%lld, True)", (long long)size_ints[i].size);
		if (size_ints[i].size >= 0) {
			cr_expect_str_eq(tm_format_size_u(b, (uint64_t)size_ints[i].size, false),
					 size_ints[i].plain);
			cr_expect_str_eq(tm_format_size_u(b, (uint64_t)size_ints[i].size, true),
					 size_ints[i].sign);
		}
	}
	for (i = 0; i < N(size_uints); i++) {
		cr_expect_str_eq(tm_format_size_u(b, size_uints[i].size, false), size_uints[i].plain);
		cr_expect_str_eq(tm_format_size_u(b, size_uints[i].size, true), size_uints[i].sign);
	}
}

Test(format, format_size_floats_from_cpython)
{
	char b[TM_SIZE_BUF];
	size_t i;

	for (i = 0; i < N(size_floats); i++) {
		cr_expect_str_eq(tm_format_size_f(b, size_floats[i].size, false),
				 size_floats[i].plain, "_format_size(%.17g, False)", size_floats[i].size);
		cr_expect_str_eq(tm_format_size_f(b, size_floats[i].size, true),
				 size_floats[i].sign, "_format_size(%.17g, True)", size_floats[i].size);
	}
}

static char *statistic_str(uint64_t size, uint64_t count, const char *file, uint32_t lineno)
{
	struct tm_stat_frame f = { { file, (uint32_t)strlen(file) }, lineno };
	struct tm_statistic st = { &f, 1, size, count };
	struct analysis_capture c;

	tm_print_statistic(analysis_capture_begin(&c), &st);
	return analysis_capture_end(&c);
}

/* str(Statistic) with average = size / count (Python true division) */
Test(format, statistic_average_from_cpython)
{
	char want[128];
	size_t i;

	for (i = 0; i < N(averages); i++) {
		char *got = statistic_str(averages[i].size, averages[i].count, "x.py", 1);
		char b[TM_SIZE_BUF];

		snprintf(want, sizeof(want), "x.py:1: size=%s, count=%llu, average=%s\n",
			 tm_format_size_u(b, averages[i].size, false),
			 (unsigned long long)averages[i].count, averages[i].average);
		cr_expect_str_eq(got, want);
		free(got);
	}
}

/* test_trace_format: str(snapshot.traces[0]) == 'b.py:4: 10 B' */
Test(format, cpython_trace_format)
{
	struct tm_snapshot *s1, *s2;
	struct analysis_capture c;
	char *got;

	analysis_create_snapshots(&s1, &s2);
	tm_print_trace(analysis_capture_begin(&c), s1, &s1->traces[0]);
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "b.py:4: 10 B\n");
	free(got);
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

/* test_statistic_format and test_statistic_diff_format */
Test(format, cpython_statistic_and_diff_format)
{
	struct tm_snapshot *s1, *s2;
	struct analysis_capture c;
	struct tm_stats st;
	struct tm_error err;
	char *got;

	analysis_create_snapshots(&s1, &s2);
	cr_assert_eq(tm_statistics(s1, TM_KEY_LINENO, false, &st, &err), 0);
	tm_print_statistic(analysis_capture_begin(&c), &st.stats[0]);
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "b.py:1: size=66 B, count=1, average=66 B\n");
	free(got);
	tm_stats_free(&st);

	cr_assert_eq(tm_compare_to(s2, s1, TM_KEY_LINENO, false, &st, &err), 0);
	tm_print_statistic_diff(analysis_capture_begin(&c), &st.diffs[0]);
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B\n");
	free(got);
	/* reference C.7/C.9: no average when count is 0 */
	tm_print_statistic_diff(analysis_capture_begin(&c), &st.diffs[2]);
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "b.py:1: size=0 B (-66 B), count=0 (-1)\n");
	free(got);
	tm_stats_free(&st);

	/* a 'traceback' statistic prints its OLDEST frame: str(Traceback) */
	cr_assert_eq(tm_statistics(s1, TM_KEY_TRACEBACK, false, &st, &err), 0);
	tm_print_statistic(analysis_capture_begin(&c), &st.stats[1]);
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "b.py:4: size=30 B, count=3, average=10 B\n");
	free(got);
	tm_stats_free(&st);
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
}

static char *format_traceback(const struct tm_snapshot *s, tm_id tb, bool has_limit,
			      int64_t limit, bool most_recent_first, const char *root)
{
	struct analysis_capture c;

	tm_print_traceback_format(analysis_capture_begin(&c), s, tb, has_limit, limit,
				  most_recent_first, root);
	return analysis_capture_end(&c);
}

#define EXPECT_FORMAT(s, tb, has_limit, limit, mrf, root, want)                 \
	do {                                                                    \
		char *got_ = format_traceback(s, tb, has_limit, limit, mrf, root); \
		cr_expect_str_eq(got_, want, "format(limit=%s%lld, most_recent_first=%d)", \
				 has_limit ? "" : "None/", (long long)(limit), mrf); \
		free(got_);                                                     \
	} while (0)

/*
 * test_format_traceback. CPython's test mocks linecache.getline() to return
 * '  <FILE, LINE>'; we put exactly those lines in real files instead.
 */
Test(format, cpython_format_traceback)
{
	struct tm_snapshot *s1, *s2;
	char *dir = analysis_tmpdir();
	static const char a_py[] = "line 1\n  <a.py, 2>\n";
	static const char b_py[] = "1\n2\n3\n  <b.py, 4>\n";
	tm_id tb;

	analysis_write_file(dir, "a.py", a_py, sizeof(a_py) - 1);
	analysis_write_file(dir, "b.py", b_py, sizeof(b_py) - 1);
	analysis_create_snapshots(&s1, &s2);
	tb = s1->traces[0].traceback;
	EXPECT_FORMAT(s1, tb, false, 0, false, dir,
		      "  File \"b.py\", line 4\n    <b.py, 4>\n"
		      "  File \"a.py\", line 2\n    <a.py, 2>\n");
	EXPECT_FORMAT(s1, tb, true, 1, false, dir, "  File \"a.py\", line 2\n    <a.py, 2>\n");
	EXPECT_FORMAT(s1, tb, true, -1, false, dir, "  File \"b.py\", line 4\n    <b.py, 4>\n");
	EXPECT_FORMAT(s1, tb, false, 0, true, dir,
		      "  File \"a.py\", line 2\n    <a.py, 2>\n"
		      "  File \"b.py\", line 4\n    <b.py, 4>\n");
	EXPECT_FORMAT(s1, tb, true, 1, true, dir, "  File \"a.py\", line 2\n    <a.py, 2>\n");
	EXPECT_FORMAT(s1, tb, true, -1, true, dir, "  File \"b.py\", line 4\n    <b.py, 4>\n");
	/* no such files: no source lines */
	EXPECT_FORMAT(s1, tb, false, 0, false, "/nonexistent-tmbpf",
		      "  File \"b.py\", line 4\n  File \"a.py\", line 2\n");
	tm_snapshot_free(s1);
	tm_snapshot_free(s2);
	tm_linecache_clear();
	analysis_rmtree(dir);
}

/* Reference C.10 with a 5-frame traceback f0 (oldest) .. f4 (most recent). */
Test(format, traceback_format_limits)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id tb = analysis_tb(s, 5, 5, "<f4>", 4u, "<f3>", 3u, "<f2>", 2u, "<f1>", 1u, "<f0>", 0u);

#define L(k) "  File \"<f" #k ">\", line " #k "\n"
	EXPECT_FORMAT(s, tb, false, 0, false, NULL, L(0) L(1) L(2) L(3) L(4));
	EXPECT_FORMAT(s, tb, true, 2, false, NULL, L(3) L(4));
	EXPECT_FORMAT(s, tb, true, -2, false, NULL, L(0) L(1) L(2));
	EXPECT_FORMAT(s, tb, true, -2, true, NULL, L(2) L(1) L(0));
	EXPECT_FORMAT(s, tb, true, 0, false, NULL, "");
	EXPECT_FORMAT(s, tb, true, 0, true, NULL, "");
	EXPECT_FORMAT(s, tb, true, 5, true, NULL, L(4) L(3) L(2) L(1) L(0));
	EXPECT_FORMAT(s, tb, true, 99, false, NULL, L(0) L(1) L(2) L(3) L(4));
	EXPECT_FORMAT(s, tb, true, -5, false, NULL, "");
	EXPECT_FORMAT(s, tb, true, -99, true, NULL, "");
	EXPECT_FORMAT(s, tb, true, INT64_MIN, false, NULL, "");
	EXPECT_FORMAT(s, tb, true, INT64_MAX, false, NULL, L(0) L(1) L(2) L(3) L(4));
#undef L
	tm_snapshot_free(s);
}

/* Source files that exercise tokenize.open() and universal newlines. Each is
 * compared line by line with linecache.getline(...).strip() of CPython. */
static const struct {
	const char *name;
	const char *data;
	size_t len;
} sources[] = {
#define SRC(name, lit) { name, lit, sizeof(lit) - 1 }
	SRC("plain.py", "import os\n    x = 1   \n\n\tdef f():\r\n\t\treturn 2\rlast line"),
	SRC("spaces.py", "\xe3\x80\x80 h\xc3\xa9llo \xe2\x80\xa8\n\x0c form feed\x0b\n"
			 "\xc2\x85nel\xc2\xa0\n\x1c\x1d\x1e\x1f sep \x1f\n\xe2\x80\x8bzwsp\xe2\x80\x8b\n"
			 "\xe1\x9a\x80ogham\xe2\x80\x80\xe2\x80\x8a\xe2\x80\xaf\xe2\x81\x9f\n"),
	SRC("bom.py", "\xef\xbb\xbfx = 1\n  y = 2  \n"),
	SRC("bom_only.py", "\xef\xbb\xbf"),
	SRC("latin1.py", "# -*- coding: latin-1 -*-\nname = '\xe9\xa0'\n\xa0 x \xa0\n"),
	SRC("latin1_2nd.py", "#!/usr/bin/python\n# vim: set fileencoding=iso-8859-1 :\ns = '\xff'\n"),
	SRC("latin1_upper.py", "# coding=ISO_8859_1\ns = '\xe0'\n"),
	SRC("bad_utf8.py", "ok = 1\nbad = '\xff'\n"),
	SRC("unknown_cookie.py", "# coding: klingon\nx = 1\n"),
	SRC("bom_latin1.py", "\xef\xbb\xbf# coding: latin-1\nx = 1\n"),
	SRC("bom_utf8_cookie.py", "\xef\xbb\xbf# coding: utf-8\nx = 1\n"),
	SRC("late_cookie.py", "x = 1\n# coding: latin-1\ny = '\xe9'\n"),
	SRC("blank_then_cookie.py", "  \n# -*- coding: latin-1 -*-\ny = '\xe9'\n"),
	SRC("ascii_bad.py", "# coding: ascii\nx = '\xc3\xa9'\n"),
	SRC("us_ascii.py", "# coding: us-ascii\nx = 1\n"),
	SRC("utf8sig_cookie.py", "# coding: utf-8-sig\nx = '\xc3\xa9'\n"),
	SRC("cookie_not_utf8.py", "# coding: latin-1 \xe9\nx = 1\n"),
	SRC("surrogate.py", "x = '\xed\xb2\x80'\n"),
	SRC("crlf.py", "a\r\n\r\n  b  \r\nc"),
	SRC("empty.py", ""),
	SRC("only_newlines.py", "\n\n\r\r\n"),
	SRC("caf\xff.py", "undecodable = 'name'\n"),
	SRC("alias_latin1.py", "# -*- coding: latin1 -*-\nx = '\xe9'\n"),
	SRC("alias_l1.py", "# coding: L1\nx = '\xe9'\n"),
	SRC("alias_iso8859.py", "# coding: ISO8859-1\nx = '\xe9'\n"),
	SRC("alias_utf8.py", "# coding: UTF8\nx = '\xc3\xa9'\n"),
	SRC("alias_u8_bom.py", "\xef\xbb\xbf# coding: u8\nx = 1\n"),
	SRC("alias_646.py", "# coding: 646\nx = 1\n"),
	SRC("alias_ansi.py", "# coding: ANSI_X3.4-1968\nx = 1\n"),
	SRC("alias_dots.py", "# coding: ..utf8\nx = 1\n"),
	SRC("alias_dashes.py", "# coding: utf--8\nx = 1\n"),
	SRC("long_utf8.py", "# coding: utf-8-and-a-very-long-suffix-that-goes-on-and-on-and-on-and-on-x\nx = 1\n"),
#undef SRC
};

static void hex_of(char *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
	out[2 * n] = '\0';
}

Test(format, linecache_matches_cpython)
{
	ANALYSIS_REQUIRE_PYTHON();
	enum { MAXLINE = 7 };
	/* names as they reach us: UTF-8 with the undecodable byte as U+DCFF */
	static const char *const extra[] = { "<string>", "", "missing.py", "subdir", "caf\xed\xb3\xbf.py" };
	char *dir = analysis_tmpdir(), *out, *line, *save = NULL;
	char *argv[N(sources) + N(extra) + 4];
	const char *names[N(sources) + N(extra)];
	size_t i, nnames = 0, outlen, checked = 0;
	char sub[4200];

	snprintf(sub, sizeof(sub), "%s/subdir", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	argv[0] = ANALYSIS_PYTHON;
	argv[1] = "tests/py/analysis_linecache.py";
	argv[2] = "7";
	for (i = 0; i < N(sources); i++) {
		analysis_write_file(dir, sources[i].name, sources[i].data, sources[i].len);
		names[nnames] = sources[i].name;
		argv[3 + nnames++] = (char *)sources[i].name;
	}
	for (i = 0; i < N(extra); i++) {
		names[nnames] = extra[i];
		/* argv carries the raw name: Python decodes it with surrogateescape */
		argv[3 + nnames++] = (char *)(strcmp(extra[i], "caf\xed\xb3\xbf.py") ? extra[i]
										  : "caf\xff.py");
	}
	argv[3 + nnames] = NULL;
	/* absolute script path: Python runs in dir, relative names resolve there */
	char script[4096];
	cr_assert_not_null(realpath("tests/py/analysis_linecache.py", script));
	argv[1] = script;
	cr_assert_eq(analysis_run(dir, NULL, argv, &out, &outlen), 0);

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned idx, lineno;
		char want[1024] = "", got_hex[1024], text[512];
		int r;

		cr_assert(sscanf(line, "%u %u %1023s", &idx, &lineno, want) >= 2, "%s", line);
		cr_assert_lt(idx, nnames);
		r = tm_linecache_getline(dir, names[idx], lineno, text, sizeof(text));
		hex_of(got_hex, r == 0 ? text : "", r == 0 ? strlen(text) : 0);
		cr_expect_str_eq(got_hex, want, "getline(%s, %u).strip()", names[idx], lineno);
		checked++;
	}
	cr_assert_eq(checked, nnames * (MAXLINE + 1));
	free(out);
	tm_linecache_clear();
	analysis_rmtree(dir);
}

/* A few of those, spelled out: what Traceback.format() shows. */
Test(format, linecache_examples)
{
	char *dir = analysis_tmpdir(), text[256];

	for (size_t i = 0; i < N(sources); i++)
		analysis_write_file(dir, sources[i].name, sources[i].data, sources[i].len);
	cr_assert_eq(tm_linecache_getline(dir, "plain.py", 2, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "x = 1");
	cr_assert_eq(tm_linecache_getline(dir, "plain.py", 5, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "return 2");                     /* a lone \r ends a line */
	cr_assert_eq(tm_linecache_getline(dir, "plain.py", 6, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "last line");
	cr_assert_eq(tm_linecache_getline(dir, "plain.py", 7, text, sizeof(text)), -1);
	cr_assert_eq(tm_linecache_getline(dir, "plain.py", 0, text, sizeof(text)), -1);
	cr_assert_eq(tm_linecache_getline(dir, "latin1.py", 2, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "name = '\xc3\xa9\xc2\xa0'");    /* decoded, printed as UTF-8 */
	cr_assert_eq(tm_linecache_getline(dir, "bad_utf8.py", 1, text, sizeof(text)), -1);
	cr_assert_eq(tm_linecache_getline(dir, "<string>", 1, text, sizeof(text)), -1);
	/* absolute names go under root_dir too */
	char abs_name[4300];
	snprintf(abs_name, sizeof(abs_name), "%s/bom.py", dir);
	cr_assert_eq(tm_linecache_getline(NULL, abs_name, 1, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "x = 1");
	cr_assert_eq(tm_linecache_getline("/", abs_name, 2, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "y = 2");
	tm_linecache_clear();
	analysis_rmtree(dir);
}

/* print('x\udc80y\udcffz') on a UTF-8 stdout with surrogateescape writes the
 * bytes 78 80 79 ff 7a; other lone surrogates cannot be encoded by Python and
 * are shown as \udXXX. */
Test(format, fputs_pystr_surrogateescape)
{
	static const char s1[] = "x\xed\xb2\x80y\xed\xb3\xbfz";
	static const char s2[] = "a\xed\xa0\x80" "b\xed\xb2\x7f";     /* U+D800, then junk */
	static const char s3[] = "caf\xc3\xa9 \xf0\x9f\x98\x80\0nul";
	struct analysis_capture c;
	char *got;

	tm_fputs_pystr(analysis_capture_begin(&c), (struct tm_str){ s1, sizeof(s1) - 1 });
	got = analysis_capture_end(&c);
	cr_assert_eq(c.len, 5);
	cr_assert_eq(memcmp(got, "x\x80y\xffz", 5), 0);
	free(got);
	tm_fputs_pystr(analysis_capture_begin(&c), (struct tm_str){ s2, sizeof(s2) - 1 });
	got = analysis_capture_end(&c);
	cr_assert_str_eq(got, "a\\ud800b\xed\xb2\x7f");
	free(got);
	tm_fputs_pystr(analysis_capture_begin(&c), (struct tm_str){ s3, sizeof(s3) - 1 });
	got = analysis_capture_end(&c);
	cr_assert_eq(c.len, sizeof(s3) - 1);
	cr_assert_eq(memcmp(got, s3, sizeof(s3) - 1), 0);
	free(got);
}
