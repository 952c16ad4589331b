// SPDX-License-Identifier: MIT
/*
 * The tmbpf command line, run as a subprocess (build/san/tmbpf, the ASan +
 * UBSan build, so a leak or an overflow fails the test through stderr), and
 * compared with real CPython: tests/py/cli_oracle.py loads the same pickle
 * with tracemalloc.Snapshot.load, applies the same filters, key type,
 * cumulative flag and limit, and prints str() lines or json.dumps() bytes.
 * Snapshots are random but seeded, written by CPython (tests/py/cli_mksnap.py),
 * so every test also goes through the pickle reader (and through the native
 * format, after `tmbpf convert`).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>

#include "cli_util.h"
#include "output/report.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"

#define ORACLE "tests/py/cli_oracle.py"
#define MKSNAP "tests/py/cli_mksnap.py"

static char *dir;

static void setup(void)
{
	dir = cli_mkdtemp("cli");
}

static void teardown(void)
{
	cli_rmtree(dir);
	dir = NULL;
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 300);

/* ---- argument lists ------------------------------------------------------- */

#define MAX_ARGV 48

struct argv_list {
	char *v[MAX_ARGV + 1];
	int n;
};

static void av_add(struct argv_list *a, const char *s)
{
	cr_assert(a->n < MAX_ARGV);
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static void av_add_list(struct argv_list *a, const char *const *list)
{
	for (; *list; list++)
		av_add(a, *list);
}

/* "a b c" for messages */
static const char *av_str(const char *const *list)
{
	static char buf[1024];
	size_t n = 0;

	buf[0] = '\0';
	for (; *list && n < sizeof(buf) - 2; list++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "", *list);
	return buf;
}

/* ---- running ----------------------------------------------------------- */

static void run_python(struct cli_run *r, const char *python, const char *script,
		       const char *const *args)
{
	struct argv_list a = { .n = 0 };

	av_add(&a, python);
	av_add(&a, "-E");
	av_add(&a, "-s");
	av_add(&a, script);
	av_add_list(&a, args);
	cli_run_argv(dir, a.v, r);
}

static void run_tmbpf(struct cli_run *r, const char *const *args)
{
	struct argv_list a = { .n = 0 };

	av_add(&a, CLI_TMBPF);
	av_add_list(&a, args);
	cli_run_argv(dir, a.v, r);
}

/* Runs a successful command: exit 0 and nothing on stderr. */
static void expect_ok(struct cli_run *r, const char *who, const char *const *args)
{
	cr_assert_eq(r->status, 0, "%s %s: exit %d, stderr: %s", who, av_str(args), r->status,
		     r->err);
	cr_assert_eq(r->err_len, 0, "%s %s: stderr: %s", who, av_str(args), r->err);
}

static void tmbpf_ok(const char *const *args)
{
	struct cli_run r;

	run_tmbpf(&r, args);
	expect_ok(&r, "tmbpf", args);
	cli_run_free(&r);
}

/* cli_mksnap.py OUT --seed S --pool-seed 7 EXTRA... */
static void mksnap(const char *out, const char *seed, const char *const *extra)
{
	struct argv_list a = { .n = 0 };
	struct cli_run r;

	av_add(&a, out);
	av_add(&a, "--seed");
	av_add(&a, seed);
	av_add(&a, "--pool-seed");
	av_add(&a, "7");
	if (extra)
		av_add_list(&a, extra);
	run_python(&r, CLI_PYTHON, MKSNAP, (const char *const *)a.v);
	expect_ok(&r, "cli_mksnap.py", (const char *const *)a.v);
	cli_run_free(&r);
}

/* Reports the first differing line of two outputs. */
static void assert_same_output(const struct cli_run *got, const struct cli_run *want,
			       const char *what)
{
	if (got->out_len == want->out_len && !memcmp(got->out, want->out, got->out_len))
		return;
	size_t i = 0, line_start = 0, line = 1;

	while (i < got->out_len && i < want->out_len && got->out[i] == want->out[i]) {
		if (got->out[i] == '\n') {
			line++;
			line_start = i + 1;
		}
		i++;
	}
	cr_assert_fail("%s: output differs from CPython at line %zu\n  tmbpf:   %.200s\n"
		       "  CPython: %.200s", what, line, got->out + line_start,
		       want->out + line_start);
}

/* ---- fixtures: snapshots ------------------------------------------------- */

/* old.pickle / new.pickle (same pool of files and lines, different traces,
 * odd file names, real source files for the first ones) and their native
 * conversions old.tmbpf / new.tmbpf. */
static void make_pair(void)
{
	const char *const extra[] = { "--weird", "--source-dir", dir, "--traces", "3000", NULL };
	const char *old_p = cli_path(dir, "old.pickle"), *new_p = cli_path(dir, "new.pickle");
	const char *old_n = cli_path(dir, "old.tmbpf"), *new_n = cli_path(dir, "new.tmbpf");

	mksnap(old_p, "11", extra);
	mksnap(new_p, "12", extra);
	tmbpf_ok((const char *const[]){ "convert", old_p, old_n, NULL });
	tmbpf_ok((const char *const[]){ "convert", new_p, new_n, NULL });
}

/* ---- stats and diff against CPython ----------------------------------------- */

/* Every option and filter form; each set runs on every input format. */
static const char *const analysis_sets[][14] = {
	{ NULL },
	{ "--limit", "0", NULL },
	{ "--limit", "1", NULL },
	{ "--limit", "7", "--key-type", "traceback", NULL },
	{ "--limit", "1000000", NULL },
	{ "--key-type", "lineno", "--limit", "0", NULL },
	{ "--key-type", "filename", "--limit", "0", NULL },
	{ "--key-type", "traceback", "--limit", "0", NULL },
	{ "--key-type=filename", "--limit=0", NULL },
	{ "--cumulative", "--limit", "0", NULL },
	{ "--key-type", "filename", "--cumulative", "--limit", "0", NULL },
	{ "--json", NULL },
	{ "--json", "--limit", "0", "--key-type", "traceback", NULL },
	{ "--json", "--cumulative", "--key-type", "filename", "--limit", "0", NULL },
	{ "--json", "--cumulative", "--limit", "0", "--exclude", "/srv/*", NULL },
	/* filters */
	{ "--include", "/srv/app/pkg1/*", "--limit", "0", NULL },
	{ "--include", "*mod1*.py", "--include", "lib/*", "--limit", "0", NULL },
	{ "--exclude", "/srv/*", "--limit", "0", NULL },
	{ "--exclude", "/srv/*", "--exclude", "lib/*", "--key-type", "traceback", "--limit", "0",
	  NULL },
	{ "--include", "*:3", "--limit", "0", NULL },
	{ "--exclude", "*:0", "--key-type", "filename", "--limit", "0", NULL },
	{ "--include", "*@0", "--limit", "0", NULL },
	{ "--include", "*:2@389047", "--include", "lib/*@1", "--limit", "0", NULL },
	{ "--exclude", "*@389047", "--limit", "0", NULL },
	{ "--exclude", "/srv/app/*:5@0", "--limit", "0", NULL },
	{ "--include", "lib/v2:3@4.py", "--limit", "0", NULL },
	{ "--include", "lib/colon:99", "--include", "lib/at@17", "--limit", "0", NULL },
	{ "--include", "lib/colon:9?", "--limit", "0", NULL },
	{ "--include", "lib/compiled.pyc", "--include", "lib/*.py:4", "--limit", "0", NULL },
	{ "--include", "lib/[b]rackets].py", "--include", "lib/[!a-z]*", "--limit", "0", NULL },
	{ "--include", "lib/q?mark.py", "--include", "lib/star[*]name.py", "--limit", "0", NULL },
	{ "--include", "lib/caf\xc3\xa9/*", "--limit", "0", NULL },
	{ "--include", "lib/undecodable\xff.py", "--limit", "0", NULL },
	{ "--include", "lib/quote\"and\\backslash.py", "--include", "lib/with space.py", "--limit",
	  "0", NULL },
	{ "--exclude", "<unknown>", "--exclude", "<frozen importlib._bootstrap>", "--limit", "0",
	  NULL },
	{ "--include", "lib/*", "--all-frames", "--limit", "0", NULL },
	{ "--all-frames", "--exclude", "/srv/app/pkg6/*", "--cumulative", "--limit", "0", NULL },
	{ "--all-frames", "--include", "*:1", "--exclude", "lib/*@0", "--key-type", "traceback",
	  "--limit", "0", NULL },
	{ "--include-domain", "389047", "--limit", "0", NULL },
	{ "--exclude-domain", "0", "--key-type", "traceback", "--limit", "0", NULL },
	{ "--include-domain", "4294967295", "--include", "lib/*", "--limit", "0", NULL },
	{ "--exclude-domain", "1", "--exclude-domain", "0", "--include", "*", "--limit", "0",
	  NULL },
	{ "--include-domain", "5", NULL },                    /* keeps nothing */
	{ "--include", "/srv/app/pkg3/*", "--json", "--key-type", "traceback", "--limit", "0",
	  NULL },
};

#define NSETS (sizeof(analysis_sets) / sizeof(analysis_sets[0]))

/* stats or diff on `inputs` (pickles, for CPython) and on each alternative
 * input list for tmbpf, for the option sets [first, last). */
static void check_analysis(const char *cmd, const char *const *oracle_inputs,
			   const char *const *const *tmbpf_inputs, size_t first, size_t last)
{
	for (size_t i = first; i < last && i < NSETS; i++) {
		struct argv_list oa = { .n = 0 };
		struct cli_run want;

		av_add(&oa, cmd);
		av_add_list(&oa, oracle_inputs);
		av_add_list(&oa, analysis_sets[i]);
		run_python(&want, CLI_PYTHON, ORACLE, (const char *const *)oa.v);
		expect_ok(&want, "cli_oracle.py", (const char *const *)oa.v);

		for (const char *const *const *in = tmbpf_inputs; *in; in++) {
			struct argv_list ta = { .n = 0 };
			struct cli_run got;
			char what[1200];

			av_add(&ta, cmd);
			av_add_list(&ta, *in);
			av_add_list(&ta, analysis_sets[i]);
			run_tmbpf(&got, (const char *const *)ta.v);
			expect_ok(&got, "tmbpf", (const char *const *)ta.v);
			snprintf(what, sizeof(what), "tmbpf %s", av_str((const char *const *)ta.v));
			assert_same_output(&got, &want, what);
			cli_run_free(&got);
		}
		cli_run_free(&want);
	}
}

static void check_stats_sets(size_t first, size_t last)
{
	const char *pk = cli_path(dir, "old.pickle"), *nat = cli_path(dir, "old.tmbpf");
	const char *const oracle_in[] = { pk, NULL };
	const char *const in_pickle[] = { pk, NULL }, *const in_native[] = { nat, NULL };
	const char *const *const tmbpf_in[] = { in_pickle, in_native, NULL };

	make_pair();
	check_analysis("stats", oracle_in, tmbpf_in, first, last);
}

static void check_diff_sets(size_t first, size_t last)
{
	const char *op = cli_path(dir, "old.pickle"), *np = cli_path(dir, "new.pickle");
	const char *on = cli_path(dir, "old.tmbpf"), *nn = cli_path(dir, "new.tmbpf");
	const char *const oracle_in[] = { op, np, NULL };
	const char *const pp[] = { op, np, NULL }, *const nat[] = { on, nn, NULL };
	const char *const mixed[] = { op, nn, NULL };
	const char *const *const tmbpf_in[] = { pp, nat, mixed, NULL };

	make_pair();
	check_analysis("diff", oracle_in, tmbpf_in, first, last);
}

/* split in parts so that Criterion runs them in parallel */
Test(cli, stats_options_part1) { check_stats_sets(0, 15); }
Test(cli, stats_filters_part2) { check_stats_sets(15, 30); }
Test(cli, stats_filters_part3) { check_stats_sets(30, NSETS); }
Test(cli, diff_options_part1) { check_diff_sets(0, 15); }
Test(cli, diff_filters_part2) { check_diff_sets(15, 30); }
Test(cli, diff_filters_part3) { check_diff_sets(30, NSETS); }

/* A diff against itself, and between unrelated pools (groups only in one side). */
Test(cli, diff_same_and_disjoint_snapshots)
{
	const char *a = cli_path(dir, "a.pickle"), *b = cli_path(dir, "b.pickle");
	const char *const extra_b[] = { "--pool-seed", "99", "--files", "5", NULL };
	const char *const same[] = { a, a, NULL }, *const disjoint[] = { a, b, NULL };
	const char *const *const same_in[] = { same, NULL };
	const char *const *const disjoint_in[] = { disjoint, NULL };

	mksnap(a, "3", NULL);
	mksnap(b, "4", extra_b);
	check_analysis("diff", same, same_in, 0, 15);
	check_analysis("diff", disjoint, disjoint_in, 0, 15);
}

/* Bigger snapshot, deep tracebacks: what the benchmark does, smaller. */
Test(cli, stats_larger_snapshot)
{
	const char *pk = cli_path(dir, "big.pickle"), *nat = cli_path(dir, "big.tmbpf");
	const char *const extra[] = { "--traces", "40000", "--files", "300", "--tracebacks", "4000",
				      "--max-frames", "10", "--limit", "10", NULL };
	const char *const in_p[] = { pk, NULL }, *const in_n[] = { nat, NULL };
	const char *const *const tmbpf_in[] = { in_p, in_n, NULL };

	mksnap(pk, "5", extra);
	tmbpf_ok((const char *const[]){ "convert", pk, nat, NULL });
	check_analysis("stats", in_p, tmbpf_in, 0, 15);
}

/* An empty snapshot (no traces) */
Test(cli, empty_snapshot)
{
	const char *pk = cli_path(dir, "empty.pickle"), *nat = cli_path(dir, "empty.tmbpf");
	const char *const extra[] = { "--traces", "0", NULL };
	const char *const in_p[] = { pk, NULL }, *const in_n[] = { nat, NULL };
	const char *const *const tmbpf_in[] = { in_p, in_n, NULL };
	const char *const pair[] = { pk, pk, NULL };
	const char *const *const pair_in[] = { pair, NULL };

	mksnap(pk, "6", extra);
	tmbpf_ok((const char *const[]){ "convert", pk, nat, NULL });
	check_analysis("stats", in_p, tmbpf_in, 0, 15);
	check_analysis("diff", pair, pair_in, 0, 3);
}

/* ---- show ------------------------------------------------------------------ */

Test(cli, show_summary_of_pickle_and_native)
{
	const char *pk = cli_path(dir, "old.pickle"), *nat = cli_path(dir, "old.tmbpf");
	const char *const oa[] = { "show", pk, NULL };
	struct cli_run want, got;

	make_pair();
	run_python(&want, CLI_PYTHON, ORACLE, oa);
	expect_ok(&want, "cli_oracle.py", oa);
	for (int i = 0; i < 2; i++) {
		const char *const ta[] = { "show", i ? nat : pk, NULL };

		run_tmbpf(&got, ta);
		expect_ok(&got, "tmbpf", ta);
		assert_same_output(&got, &want, av_str(ta));
		cli_run_free(&got);
	}
	cli_run_free(&want);
}

/*
 * A snapshot as the tracer makes it: block addresses and capture information.
 * Built with the snapshot library, saved native (with addresses) and as a
 * pickle (without) so that CPython can print str(trace) and format().
 */
static struct tm_snapshot *make_traced_snapshot(const char *src)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id f_src = tm_intern_string(s, src, strlen(src));
	const char *other = "lib/undecodable\xed\xb3\xbf.py";
	tm_id f_other = tm_intern_string(s, other, strlen(other));
	tm_id fr[4], tb1, tb2;

	cr_assert(s && f_src != TM_ID_NONE && f_other != TM_ID_NONE);
	s->traceback_limit = 4;
	fr[0] = tm_intern_frame(s, f_src, 3);           /* most recent first */
	fr[1] = tm_intern_frame(s, f_other, 7);
	fr[2] = tm_intern_frame(s, f_src, 1);
	fr[3] = tm_intern_frame(s, f_src, 999);         /* no such line */
	tb1 = tm_intern_traceback(s, fr, 4, 9);
	tb2 = tm_intern_traceback(s, fr + 1, 1, 1);
	cr_assert(tb1 != TM_ID_NONE && tb2 != TM_ID_NONE);
	cr_assert_eq(tm_add_trace(s, 0, 48, tb1, 0x7f0000001000), 0);
	cr_assert_eq(tm_add_trace(s, 0, 5000000, tb2, 0x7f0000002000), 0);
	cr_assert_eq(tm_add_trace(s, 389047, 4096, tb1, 0x7f0000003000), 0);

	s->capture.tier = TM_TIER_EXACT;
	s->capture.coverage = TM_COVERAGE_PARTIAL;
	s->capture.coverage_note = tm_intern_string(s, "raw domain not traced", 21);
	s->capture.sample_period = 0;
	s->capture.pid = 4242;
	s->capture.command = tm_intern_string(s, "python3 app.py --serve", 22);
	s->capture.python = tm_intern_string(s, "3.11.2 /usr/bin/python3.11", 26);
	s->capture.start_ns = 1700000000123456789ULL;
	s->capture.taken_ns = 1700000012623456789ULL;
	s->capture.traced_current = 5004144;
	s->capture.traced_peak = 123456789;
	s->capture.tracer_memory = 10485760;
	cr_assert_eq(tm_set_counter(s, "lost.live_map_full", 12), 0);
	cr_assert_eq(tm_set_counter(s, "lost.zero", 0), 0);
	cr_assert_eq(tm_set_counter(s, "frames.unreadable", 3), 0);
	return s;
}

static void save_traced(const char *native, const char *pickle)
{
	const char *src = cli_path(dir, "app.py");
	char abs_src[4096];
	const char *text = "import os\n\nblock = bytearray(48)  \n";
	struct tm_error err = { "" };
	struct tm_snapshot *s;

	cli_write_file(src, text, strlen(text));
	cr_assert(realpath(src, abs_src));
	s = make_traced_snapshot(abs_src);
	cr_assert_eq(tm_snapshot_save_native(s, native, &err), 0, "%s", err.msg);
	cr_assert_eq(tm_snapshot_save_pickle(s, pickle, TM_PICKLE_PY39, &err), 0, "%s", err.msg);
	tm_snapshot_free(s);
}

Test(cli, show_address_matches_str_trace_and_format)
{
	const char *nat = cli_path(dir, "t.tmbpf"), *pk = cli_path(dir, "t.pickle");
	static const char *const addrs[3][2] = {
		{ "0x7f0000001000", "0" }, { "139637976735744", "1" }, { "0X7F0000003000", "2" },
	};

	save_traced(nat, pk);
	for (int i = 0; i < 3; i++) {
		const char *const oa[] = { "trace", pk, addrs[i][1], NULL };
		const char *const ta[] = { "show", nat, "--address", addrs[i][0], NULL };
		struct cli_run want, got;

		run_python(&want, CLI_PYTHON, ORACLE, oa);
		expect_ok(&want, "cli_oracle.py", oa);
		run_tmbpf(&got, ta);
		expect_ok(&got, "tmbpf", ta);
		assert_same_output(&got, &want, av_str(ta));
		cli_run_free(&want);
		cli_run_free(&got);
	}
}

Test(cli, show_capture_information)
{
	const char *nat = cli_path(dir, "t.tmbpf"), *pk = cli_path(dir, "t.pickle");
	const char *const ta[] = { "show", nat, NULL };
	/* sizes as CPython's _format_size writes them:
	 * 5000000+48 B: 4883 KiB; 4096: 4096 B; 5004144: 4887 KiB; 123456789: 118 MiB;
	 * 10485760: 10.0 MiB; 1700000000.123456789 = 2023-11-14T22:13:20 UTC */
	const char *want =
		"traces: 3\n"
		"total size: 4887 KiB (5004144 B)\n"
		"traceback_limit: 4\n"
		"domains: 2\n"
		"  domain 0: 2 traces, 4883 KiB (5000048 B)\n"
		"  domain 389047: 1 traces, 4096 B (4096 B)\n"
		"capture:\n"
		"  tier: exact (CPython allocator domains, every call)\n"
		"  coverage: partial (raw domain not traced)\n"
		"  sampling period: none (every event)\n"
		"  pid: 4242\n"
		"  command: python3 app.py --serve\n"
		"  python: 3.11.2 /usr/bin/python3.11\n"
		"  started: 2023-11-14T22:13:20.123456789Z\n"
		"  taken: 2023-11-14T22:13:32.623456789Z (12.500 s after the start)\n"
		"  traced memory: current 4887 KiB (5004144 B), peak 118 MiB (123456789 B)\n"
		"  tracer memory: 10.0 MiB (10485760 B)\n"
		"  counters:\n"
		"    lost.live_map_full: 12\n"
		"    frames.unreadable: 3\n";
	struct cli_run got, py;
	const char *check =
		"import tracemalloc as t, datetime as d\n"
		"f = t._format_size\n"
		"assert f(5004144, False) == '4887 KiB' and f(5000048, False) == '4883 KiB'\n"
		"assert f(4096, False) == '4096 B' and f(123456789, False) == '118 MiB'\n"
		"assert f(10485760, False) == '10.0 MiB'\n"
		"u = d.datetime.fromtimestamp(1700000000, d.timezone.utc)\n"
		"assert u.strftime('%Y-%m-%dT%H:%M:%S') == '2023-11-14T22:13:20', u\n"
		"print('OK')\n";
	const char *check_py = cli_path(dir, "check.py");

	/* the figures in `want` are CPython's */
	cli_write_file(check_py, check, strlen(check));
	run_python(&py, CLI_PYTHON, check_py, (const char *const[]){ NULL });
	expect_ok(&py, "check.py", (const char *const[]){ NULL });
	cr_assert_str_eq(py.out, "OK\n");
	cli_run_free(&py);

	save_traced(nat, pk);
	run_tmbpf(&got, ta);
	expect_ok(&got, "tmbpf", ta);
	cr_assert_str_eq(got.out, want);
	cli_run_free(&got);
}

/* ---- convert ---------------------------------------------------------------- */

static void oracle_same(const char *python, const char *a, const char *b, bool py38)
{
	const char *const args[] = { "same", a, b, py38 ? "--py38" : NULL, NULL };
	struct cli_run r;

	run_python(&r, python, ORACLE, args);
	expect_ok(&r, python, args);
	cr_assert(!strncmp(r.out, "SAME ", 5), "%s: %s", python, r.out);
	cli_run_free(&r);
}

/* pickle -> native -> pickle gives CPython back the very same traces */
Test(cli, convert_round_trip_is_exact)
{
	const char *pk = cli_path(dir, "old.pickle"), *nat = cli_path(dir, "old.tmbpf");
	const char *back = cli_path(dir, "back.pickle"), *back2 = cli_path(dir, "back2.pkl");
	const char *nat2 = cli_path(dir, "again.tmbpf");

	make_pair();
	tmbpf_ok((const char *const[]){ "convert", nat, back, NULL });
	oracle_same(CLI_PYTHON, pk, back, false);
	/* pickle -> pickle, native -> native, and --to overriding the name */
	tmbpf_ok((const char *const[]){ "convert", back, back2, NULL });
	oracle_same(CLI_PYTHON, pk, back2, false);
	tmbpf_ok((const char *const[]){ "convert", nat, nat2, "--to", "native", NULL });
	tmbpf_ok((const char *const[]){ "convert", nat2, cli_path(dir, "x.bin"), "--to",
					"pickle", NULL });
	oracle_same(CLI_PYTHON, pk, cli_path(dir, "x.bin"), false);
}

/* The output format follows the name: .pickle/.pkl -> pickle, else native. */
Test(cli, convert_picks_format_from_name_and_option)
{
	const char *pk = cli_path(dir, "a.pickle");
	struct {
		const char *out;
		const char *to;
		enum tm_file_format want;
	} cases[] = {
		{ "o1.pkl", NULL, TM_FORMAT_PICKLE },
		{ "o2.pickle", NULL, TM_FORMAT_PICKLE },
		{ "o3.tmbpf", NULL, TM_FORMAT_NATIVE },
		{ "o4", NULL, TM_FORMAT_NATIVE },
		{ "o5.pickle.bak", NULL, TM_FORMAT_NATIVE },
		{ "o6.pickle", "native", TM_FORMAT_NATIVE },
		{ "o7.dat", "pickle", TM_FORMAT_PICKLE },
	};

	mksnap(pk, "8", NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *out = cli_path(dir, cases[i].out);
		size_t len;
		char *data;

		if (cases[i].to)
			tmbpf_ok((const char *const[]){ "convert", pk, out, "--to", cases[i].to,
							NULL });
		else
			tmbpf_ok((const char *const[]){ "convert", pk, out, NULL });
		data = cli_read_file(out, &len);
		cr_assert_eq(tm_detect_format(data, len), cases[i].want, "%s", cases[i].out);
		cli_free(data);
		if (cases[i].want == TM_FORMAT_PICKLE)
			oracle_same(CLI_PYTHON, pk, out, false);
	}
	/* reading goes by content, whatever the name says ("o6.pickle" is native) */
	{
		const char *const in_o6[] = { cli_path(dir, "o6.pickle"), NULL };
		const char *const in_o7[] = { cli_path(dir, "o7.dat"), NULL };
		const char *const *const tmbpf_in[] = { in_o6, in_o7, NULL };
		const char *const oracle_in[] = { pk, NULL };

		check_analysis("stats", oracle_in, tmbpf_in, 0, 3);
	}
}

/* A pyenv interpreter: $PYENV_ROOT, else ~/.pyenv (root's when HOME is unset),
 * as the tracer suites find them. false (said loudly) when it is missing. */
static bool pyenv_python(const char *version, const char *minor, char *path, size_t size)
{
	const char *root = getenv("PYENV_ROOT"), *home = getenv("HOME");

	if (root)
		snprintf(path, size, "%s/versions/%s/bin/python%s", root, version, minor);
	else
		snprintf(path, size, "%s/.pyenv/versions/%s/bin/python%s", home ? home : "/root",
			 version, minor);
	if (access(path, X_OK) == 0)
		return true;
	cr_log_info("SKIPPED: CPython %s not found at %s: its check was not run", version, path);
	fprintf(stderr, "cli: SKIPPED CPython %s (%s missing)\n", version, path);
	return false;
}

/* --python-version 3.8 writes the 3-tuple traces CPython 3.8 needs: load it
 * in 3.8 and compare its statistics with tmbpf's on the original. */
Test(cli, convert_for_python38_loads_in_38)
{
	const char *pk = cli_path(dir, "old.pickle"), *nat = cli_path(dir, "old.tmbpf");
	const char *p38 = cli_path(dir, "for38.pickle");
	char py38[512];

	make_pair();
	tmbpf_ok((const char *const[]){ "convert", nat, p38, "--python-version", "3.8", NULL });
	if (!pyenv_python("3.8.18", "3.8", py38, sizeof(py38)))
		return;
	oracle_same(py38, pk, p38, true);
	for (size_t i = 0; i < 12; i++) {
		struct argv_list oa = { .n = 0 }, ta = { .n = 0 };
		struct cli_run want, got;

		av_add(&oa, "stats");
		av_add(&oa, p38);
		av_add_list(&oa, analysis_sets[i]);
		run_python(&want, py38, ORACLE, (const char *const *)oa.v);
		expect_ok(&want, "python3.8 cli_oracle.py", (const char *const *)oa.v);
		av_add(&ta, "stats");
		av_add(&ta, pk);
		av_add_list(&ta, analysis_sets[i]);
		run_tmbpf(&got, (const char *const *)ta.v);
		expect_ok(&got, "tmbpf", (const char *const *)ta.v);
		assert_same_output(&got, &want, av_str((const char *const *)ta.v));
		cli_run_free(&want);
		cli_run_free(&got);
	}
}

/* The default pickle loads, and analyses the same, in every CPython 3.9+. */
Test(cli, convert_pickle_loads_in_every_python)
{
	static const char *const versions[][2] = {
		{ "3.9.18", "3.9" }, { "3.10.13", "3.10" }, { "3.11.7", "3.11" },
		{ "3.12.1", "3.12" }, { "3.13.0", "3.13" },
	};
	const char *pk = cli_path(dir, "old.pickle"), *nat = cli_path(dir, "old.tmbpf");
	const char *out = cli_path(dir, "out.pickle");
	char py[512];
	int ran = 0;

	make_pair();
	tmbpf_ok((const char *const[]){ "convert", nat, out, NULL });
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		if (!pyenv_python(versions[v][0], versions[v][1], py, sizeof(py)))
			continue;
		oracle_same(py, pk, out, false);
		ran++;
	}
	cr_assert_gt(ran, 0, "no pyenv CPython 3.9+ found: nothing was checked");
}

/* A CPython 3.8 pickle (3-tuples) is read by every command. */
Test(cli, reads_python38_pickles)
{
	const char *p38 = cli_path(dir, "made38.pickle");
	const char *const extra[] = { "--weird", NULL };
	struct argv_list a = { .n = 0 };
	char py38[512];
	struct cli_run r;

	if (!pyenv_python("3.8.18", "3.8", py38, sizeof(py38)))
		return;
	av_add(&a, p38);
	av_add(&a, "--seed");
	av_add(&a, "21");
	av_add_list(&a, extra);
	run_python(&r, py38, MKSNAP, (const char *const *)a.v);
	expect_ok(&r, "python3.8 cli_mksnap.py", (const char *const *)a.v);
	cli_run_free(&r);
	/* CPython 3.8's own statistics are the reference */
	for (size_t i = 0; i < 15; i++) {
		struct argv_list oa = { .n = 0 }, ta = { .n = 0 };
		struct cli_run want, got;

		av_add(&oa, "stats");
		av_add(&oa, p38);
		av_add_list(&oa, analysis_sets[i]);
		run_python(&want, py38, ORACLE, (const char *const *)oa.v);
		expect_ok(&want, "python3.8 cli_oracle.py", (const char *const *)oa.v);
		av_add_list(&ta, (const char *const *)oa.v);
		run_tmbpf(&got, (const char *const *)ta.v);
		expect_ok(&got, "tmbpf", (const char *const *)ta.v);
		assert_same_output(&got, &want, av_str((const char *const *)ta.v));
		cli_run_free(&want);
		cli_run_free(&got);
	}
}

/* ---- display top (the report printed at the end of run/attach) ------------- */

Test(cli, display_top_matches_documentation_recipe)
{
	const char *pk = cli_path(dir, "old.pickle");
	static const char *const cases[][2] = {
		{ "lineno", "10" }, { "lineno", "3" }, { "filename", "5" }, { "traceback", "4" },
		{ "lineno", "0" }, { "lineno", "100000" },
	};
	struct tm_error err = { "" };
	struct tm_snapshot *s;

	make_pair();
	s = tm_snapshot_load(pk, &err);
	cr_assert(s, "%s", err.msg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const oa[] = { "top", pk, cases[i][0], cases[i][1], NULL };
		struct cli_run want, got = { 0 };
		enum tm_key_type kt;
		FILE *mem = open_memstream(&got.out, &got.out_len);

		cr_assert(mem);
		cr_assert_eq(tm_key_type_parse(cases[i][0], &kt), 0);
		cr_assert_eq(report_display_top(mem, s, kt, strtoull(cases[i][1], NULL, 10), NULL,
						&err), 0, "%s", err.msg);
		fclose(mem);
		run_python(&want, CLI_PYTHON, ORACLE, oa);
		expect_ok(&want, "cli_oracle.py", oa);
		assert_same_output(&got, &want, av_str(oa));
		cli_run_free(&want);
		free(got.out);
	}
	tm_snapshot_free(s);
}

/* ---- help ----------------------------------------------------------------- */

Test(cli, help_for_every_command)
{
	static const char *const cmds[] = { "stats", "diff", "convert", "show" };
	struct cli_run r;

	run_tmbpf(&r, (const char *const[]){ "--help", NULL });
	expect_ok(&r, "tmbpf", (const char *const[]){ "--help", NULL });
	cr_assert(strstr(r.out, "Usage: tmbpf"), "%s", r.out);
	cr_assert(strstr(r.out, "Exit status: 0"), "%s", r.out);
	for (size_t i = 0; i < 4; i++)
		cr_assert(strstr(r.out, cmds[i]), "%s missing from --help", cmds[i]);
	cli_run_free(&r);
	for (size_t i = 0; i < 4; i++) {
		const char *const a[] = { cmds[i], "--help", NULL };
		const char *const h[] = { "help", cmds[i], NULL };
		char usage[64];
		struct cli_run r2;

		snprintf(usage, sizeof(usage), "Usage: tmbpf %s ", cmds[i]);
		run_tmbpf(&r, a);
		expect_ok(&r, "tmbpf", a);
		cr_assert(strstr(r.out, usage), "%s", r.out);
		cr_assert(strstr(r.out, "1 on a runtime error"), "%s", r.out);
		cr_assert(strstr(r.out, "2 on a usage error"), "%s", r.out);
		run_tmbpf(&r2, h);
		expect_ok(&r2, "tmbpf", h);
		cr_assert_str_eq(r2.out, r.out);
		cli_run_free(&r);
		cli_run_free(&r2);
	}
	run_tmbpf(&r, (const char *const[]){ "--version", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(!strncmp(r.out, "tmbpf ", 6));
	cli_run_free(&r);
}

/* ---- errors ---------------------------------------------------------------- */

/* Exactly one line on stderr starting "tmbpf: ", nothing on stdout, status. */
static void expect_error(const char *const *args, int status, const char *needle)
{
	struct cli_run r;
	const char *nl;

	run_tmbpf(&r, args);
	cr_assert_eq(r.status, status, "tmbpf %s: exit %d (want %d), stderr: %s", av_str(args),
		     r.status, status, r.err);
	cr_assert_eq(r.out_len, 0, "tmbpf %s: stdout not empty: %s", av_str(args), r.out);
	cr_assert(!strncmp(r.err, "tmbpf: ", 7), "tmbpf %s: stderr: %s", av_str(args), r.err);
	nl = memchr(r.err, '\n', r.err_len);
	cr_assert(nl && (size_t)(nl - r.err) == r.err_len - 1,
		  "tmbpf %s: stderr is not exactly one line: %s", av_str(args), r.err);
	cr_assert(r.err_len > 9, "tmbpf %s: empty message", av_str(args));
	if (needle)
		cr_assert(strstr(r.err, needle), "tmbpf %s: %s does not say '%s'", av_str(args),
			  r.err, needle);
	cli_run_free(&r);
}

#define USAGE 2
#define RUNTIME 1

Test(cli, usage_errors)
{
	const char *pk = cli_path(dir, "a.pickle");

	mksnap(pk, "9", NULL);
	/* CPython's own message for the combination it refuses */
	expect_error((const char *const[]){ "stats", pk, "--cumulative", "--key-type", "traceback",
					    NULL },
		     USAGE, "cumulative mode cannot by used with key type 'traceback'");
	expect_error((const char *const[]){ "diff", pk, pk, "--key-type", "traceback",
					    "--cumulative", NULL },
		     USAGE, "cumulative mode cannot by used with key type 'traceback'");
	expect_error((const char *const[]){ "stats", pk, "--key-type", "function", NULL }, USAGE,
		     "unknown key_type: 'function'");
	expect_error((const char *const[]){ "stats", pk, "--key-type", NULL }, USAGE,
		     "requires an argument");
	expect_error((const char *const[]){ "stats", pk, "--limit", "-1", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--limit", "ten", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--limit", "", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--limit", "10x", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--limit", " 5", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--limit", "99999999999999999999", NULL },
		     USAGE, "out of range");
	expect_error((const char *const[]){ "stats", pk, "--limit=", NULL }, USAGE, "limit");
	expect_error((const char *const[]){ "stats", pk, "--bogus", NULL }, USAGE, "'--bogus'");
	expect_error((const char *const[]){ "stats", pk, "--bogus=1", NULL }, USAGE, "'--bogus'");
	expect_error((const char *const[]){ "stats", pk, "-z", NULL }, USAGE, "'-z'");
	expect_error((const char *const[]){ "stats", pk, "--json=yes", NULL }, USAGE,
		     "doesn't allow an argument");
	expect_error((const char *const[]){ "stats", pk, "--include", NULL }, USAGE,
		     "requires an argument");
	expect_error((const char *const[]){ "stats", pk, "--inc", "x", NULL }, USAGE, "ambiguous");
	expect_error((const char *const[]){ "stats", pk, "--include-domain", "-1", NULL }, USAGE,
		     "domain");
	expect_error((const char *const[]){ "stats", pk, "--include-domain", "4294967296", NULL },
		     USAGE, "out of range");
	expect_error((const char *const[]){ "stats", pk, "--exclude-domain", "0x10", NULL }, USAGE,
		     "domain");
	expect_error((const char *const[]){ "stats", pk, "--include", "a.py:99999999999", NULL },
		     USAGE, "line number out of range");
	expect_error((const char *const[]){ "stats", pk, "--include", "a.py@4294967296", NULL },
		     USAGE, "domain out of range");
	expect_error((const char *const[]){ "stats", NULL }, USAGE, "missing");
	expect_error((const char *const[]){ "stats", pk, pk, NULL }, USAGE, "unexpected argument");
	expect_error((const char *const[]){ "diff", pk, NULL }, USAGE, "missing");
	expect_error((const char *const[]){ "diff", pk, pk, pk, NULL }, USAGE, "unexpected");
	expect_error((const char *const[]){ "convert", pk, NULL }, USAGE, "missing");
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "o.pkl"), "--to", "xml",
					    NULL },
		     USAGE, "'xml'");
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "o.pkl"),
					    "--python-version", "2.7", NULL },
		     USAGE, "'2.7'");
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "o.pkl"),
					    "--python-version", "3.7", NULL },
		     USAGE, "'3.7'");
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "o.pkl"),
					    "--python-version", "3.x", NULL },
		     USAGE, "'3.x'");
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "o.tmbpf"),
					    "--python-version", "3.8", NULL },
		     USAGE, "pickle");
	expect_error((const char *const[]){ "show", pk, "--address", "0xzz", NULL }, USAGE,
		     "address");
	expect_error((const char *const[]){ "show", pk, "--address", "-5", NULL }, USAGE,
		     "address");
	expect_error((const char *const[]){ "show", pk, "--address", "0x1ffffffffffffffff", NULL },
		     USAGE, "out of range");
	expect_error((const char *const[]){ "frobnicate", NULL }, USAGE, "unknown command");
	expect_error((const char *const[]){ "--frob", NULL }, USAGE, "'--frob'");
	expect_error((const char *const[]){ "help", "frob", NULL }, USAGE, "unknown command");
	expect_error((const char *const[]){ NULL }, USAGE, "missing command");
	/* no file was created by the refused conversions */
	cr_assert_neq(access(cli_path(dir, "o.pkl"), F_OK), 0);
	cr_assert_neq(access(cli_path(dir, "o.tmbpf"), F_OK), 0);
}

Test(cli, file_errors)
{
	const char *pk = cli_path(dir, "a.pickle");
	const char *nat = cli_path(dir, "a.tmbpf");
	const char *missing = cli_path(dir, "missing.pickle");
	const char *empty = cli_path(dir, "empty");
	const char *text = cli_path(dir, "text.txt");
	const char *subdir = cli_path(dir, "sub");
	const char *news = cli_path(dir, "b.tmbpf");

	mksnap(pk, "10", NULL);
	tmbpf_ok((const char *const[]){ "convert", pk, nat, NULL });
	cli_write_file(empty, "", 0);
	cli_write_file(text, "hello, world\n", 13);
	cr_assert_eq(mkdir(subdir, 0755), 0);

	for (int i = 0; i < 4; i++) {
		const char *bad = i == 0 ? missing : i == 1 ? empty : i == 2 ? text : subdir;

		expect_error((const char *const[]){ "stats", bad, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "diff", pk, bad, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "diff", bad, pk, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "show", bad, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "convert", bad, news, NULL }, RUNTIME, NULL);
		cr_assert_neq(access(news, F_OK), 0, "convert left a file behind");
	}
	expect_error((const char *const[]){ "stats", missing, NULL }, RUNTIME, "missing.pickle");

	/* --address on a CPython pickle (no addresses), and on an address not there */
	expect_error((const char *const[]){ "show", pk, "--address", "0x1000", NULL }, RUNTIME,
		     "address");
	{
		const char *tn = cli_path(dir, "t.tmbpf"), *tp = cli_path(dir, "t.pickle");

		save_traced(tn, tp);
		expect_error((const char *const[]){ "show", tn, "--address", "0x7f0000001001", NULL },
			     RUNTIME, "0x7f0000001001");
		expect_error((const char *const[]){ "show", tn, "--address", "0", NULL }, RUNTIME,
			     NULL);
	}

	/* writing where it cannot: no file, no temporary left behind */
	expect_error((const char *const[]){ "convert", pk, cli_path(dir, "nodir/x.tmbpf"), NULL },
		     RUNTIME, NULL);
	expect_error((const char *const[]){ "convert", pk, subdir, NULL }, RUNTIME, NULL);
	{
		struct cli_run r;

		/* the only entries left are ours */
		cli_run(dir, &r, "/bin/sh", "-c", "ls -A \"$0\" | sort | tr '\\n' ' '", dir, NULL);
		cr_assert_str_eq(r.out, ".stderr .stdout a.pickle a.tmbpf app.py empty sub "
					"t.pickle t.tmbpf text.txt ", "%s", r.out);
		cli_run_free(&r);
	}
}

/* Every prefix of a valid file (pickle and native) is refused cleanly, and a
 * failed conversion never replaces an existing output. */
Test(cli, truncated_files)
{
	const char *pk = cli_path(dir, "a.pickle"), *nat = cli_path(dir, "a.tmbpf");
	const char *cut = cli_path(dir, "cut"), *keep = cli_path(dir, "keep.tmbpf");
	const char *const small[] = { "--traces", "40", "--files", "3", "--tracebacks", "10", NULL };
	size_t keep_len;
	char *keep_before;

	mksnap(pk, "13", small);
	tmbpf_ok((const char *const[]){ "convert", pk, nat, NULL });
	tmbpf_ok((const char *const[]){ "convert", pk, keep, NULL });
	keep_before = cli_read_file(keep, &keep_len);
	for (int f = 0; f < 2; f++) {
		size_t len;
		char *data = cli_read_file(f ? nat : pk, &len);

		/* every length for small prefixes, then a spread over the rest */
		for (size_t n = 0; n < len; n += n < 64 ? 1 : 1 + len / 97) {
			cli_write_file(cut, data, n);
			expect_error((const char *const[]){ "stats", cut, NULL }, RUNTIME, NULL);
			if (n % 7 == 0)
				expect_error((const char *const[]){ "convert", cut, keep, NULL },
					     RUNTIME, NULL);
		}
		cli_free(data);
	}
	{
		size_t len;
		char *after = cli_read_file(keep, &len);

		cr_assert(len == keep_len && !memcmp(after, keep_before, len),
			  "a failed convert changed its output file");
		cli_free(after);
	}
	cli_free(keep_before);
}

/* Pickles that are valid for Python but not tracemalloc snapshots, or that
 * would run code under pickle.load: refused, and the code never runs. */
Test(cli, hostile_and_foreign_pickles)
{
	const char *marker = cli_path(dir, "pwned");
	const char *gen = cli_path(dir, "gen.py");
	static const char *const names[] = {
		"os_system", "reduce_eval", "builtins_getattr", "int_pickle", "list_pickle",
		"dict_pickle", "wrong_global", "snapshot_bad_traces", "snapshot_bad_frame",
		"snapshot_neg_size", "snapshot_str_size", "snapshot_huge_lineno", "deep_nesting",
		"memo_loop", "proto2_tuple_only",
	};
	struct cli_run r;

	static const char script[] =
		 "import os, pickle, sys, tracemalloc\n"
		 "d = sys.argv[1]; marker = sys.argv[2]\n"
		 "def w(name, data):\n"
		 "    open(os.path.join(d, name), 'wb').write(data)\n"
		 "class Evil:\n"
		 "    def __reduce__(self):\n"
		 "        return (os.system, ('touch ' + marker,))\n"
		 "w('os_system', pickle.dumps(Evil(), 4))\n"
		 "w('reduce_eval', b'\\x80\\x04cbuiltins\\neval\\n(Vopen(' + repr(marker).encode() + b', \"w\")\\ntR.')\n"
		 "w('builtins_getattr', pickle.dumps(getattr, 4))\n"
		 "w('int_pickle', pickle.dumps(42, 5))\n"
		 "w('list_pickle', pickle.dumps([(0, 1, (('a.py', 1),), 1)], 5))\n"
		 "w('dict_pickle', pickle.dumps({'traces': [], 'traceback_limit': 1}, 5))\n"
		 "w('wrong_global', pickle.dumps(tracemalloc.Statistic(None, 1, 1), 5))\n"
		 "def snap(traces, limit=1):\n"
		 "    s = tracemalloc.Snapshot.__new__(tracemalloc.Snapshot)\n"
		 "    t = tracemalloc._Traces.__new__(tracemalloc._Traces)\n"
		 "    t.__dict__['_traces'] = traces\n"
		 "    s.__dict__.update(traces=t, traceback_limit=limit)\n"
		 "    return pickle.dumps(s, 5)\n"
		 "w('snapshot_bad_traces', snap('not a list'))\n"
		 "w('snapshot_bad_frame', snap([(0, 1, (('a.py',),), 1)]))\n"
		 "w('snapshot_neg_size', snap([(0, -1, (('a.py', 1),), 1)]))\n"
		 "w('snapshot_str_size', snap([(0, '1', (('a.py', 1),), 1)]))\n"
		 "w('snapshot_huge_lineno', snap([(0, 1, (('a.py', 2**70),), 1)]))\n"
		 "w('deep_nesting', b'\\x80\\x05' + b'(' * 100000 + b']' + b'e' * 100000 + b'.')\n"
		 "w('memo_loop', b'\\x80\\x05]\\x94h\\x00a.')\n"
		 "w('proto2_tuple_only', pickle.dumps((1, 2, 3), 2))\n";
	cli_write_file(gen, script, strlen(script));
	run_python(&r, CLI_PYTHON, gen, (const char *const[]){ dir, marker, NULL });
	expect_ok(&r, "gen.py", (const char *const[]){ dir, marker, NULL });
	cli_run_free(&r);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *f = cli_path(dir, names[i]);

		expect_error((const char *const[]){ "stats", f, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "show", f, NULL }, RUNTIME, NULL);
		expect_error((const char *const[]){ "convert", f, cli_path(dir, "out.tmbpf"), NULL },
			     RUNTIME, NULL);
	}
	cr_assert_neq(access(marker, F_OK), 0, "a hostile pickle ran code");
	cr_assert_neq(access(cli_path(dir, "out.tmbpf"), F_OK), 0);
}

/* A write error on stdout is a runtime error with one line, not a silent loss. */
Test(cli, stdout_write_error)
{
	const char *pk = cli_path(dir, "a.pickle");
	char cmd[1024];
	struct cli_run r;

	mksnap(pk, "14", NULL);
	snprintf(cmd, sizeof(cmd), "exec %s stats %s --limit 0 >/dev/full", CLI_TMBPF, pk);
	cli_run(dir, &r, "/bin/sh", "-c", cmd, NULL);
	cr_assert_eq(r.status, RUNTIME, "exit %d, stderr %s", r.status, r.err);
	cr_assert(!strncmp(r.err, "tmbpf: ", 7) && strchr(r.err, '\n') == r.err + r.err_len - 1,
		  "%s", r.err);
	cli_run_free(&r);
}
