// SPDX-License-Identifier: MIT
/*
 * tmbpf flamegraph, run as a subprocess (build/san/tmbpf) and checked
 * against CPython: tests/py/fg_oracle.py loads the same pickle with
 * tracemalloc.Snapshot.load, groups its traces by Traceback and sums their
 * sizes for the folded stacks, and for the SVG parses our file with
 * xml.etree and checks every drawn frame against the prefix tree it builds
 * from the same groups. Snapshots are written by CPython (cli_mksnap.py, and
 * fg_oracle.py hostile for names that need escaping), and also read back
 * through the native format after `tmbpf convert`.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <inttypes.h>

#include "cli_util.h"
#include "files_util.h"
#include "output/flamegraph.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapshot.h"

#define FG_ORACLE "tests/py/fg_oracle.py"
#define FG_MKSNAP "tests/py/cli_mksnap.py"

static char *dir;

static void setup(void)
{
	dir = cli_mkdtemp("flamegraph");
}

static void teardown(void)
{
	cli_rmtree(dir);
	dir = NULL;
}

TestSuite(flamegraph, .init = setup, .fini = teardown, .timeout = 300);

/* ---- running ---------------------------------------------------------------- */

#define FG_MAX_ARGV 40

struct fg_argv {
	char *v[FG_MAX_ARGV + 1];
	int n;
};

static void fa_add(struct fg_argv *a, const char *s)
{
	cr_assert(a->n < FG_MAX_ARGV);
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static void fa_list(struct fg_argv *a, const char *const *list)
{
	for (; list && *list; list++)
		fa_add(a, *list);
}

static const char *fa_str(char *const *v)
{
	static char buf[1024];
	size_t n = 0;

	buf[0] = '\0';
	for (; *v && n < sizeof(buf) - 2; v++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "", *v);
	return buf;
}

/* python -E -s SCRIPT ARGS... + EXTRA..., which must succeed */
static void python_ok(struct cli_run *r, const char *python, const char *script,
		      const char *const *args, const char *const *extra)
{
	struct fg_argv a = { .n = 0 };

	fa_add(&a, python);
	fa_add(&a, "-E");
	fa_add(&a, "-s");
	fa_add(&a, script);
	fa_list(&a, args);
	fa_list(&a, extra);
	cli_run_argv(dir, a.v, r);
	cr_assert_eq(r->status, 0, "%s: exit %d\nstdout: %s\nstderr: %s", fa_str(a.v), r->status,
		     r->out, r->err);
}

static void tmbpf(struct cli_run *r, const char *const *args, const char *const *extra)
{
	struct fg_argv a = { .n = 0 };

	fa_add(&a, CLI_TMBPF);
	fa_list(&a, args);
	fa_list(&a, extra);
	cli_run_argv(dir, a.v, r);
}

/* A successful command: exit 0 and nothing on stderr. */
static void tmbpf_ok(struct cli_run *r, const char *const *args, const char *const *extra)
{
	tmbpf(r, args, extra);
	cr_assert_eq(r->status, 0, "tmbpf %s %s: exit %d, stderr: %s", fa_str((char *const *)args),
		     extra ? fa_str((char *const *)extra) : "", r->status, r->err);
	cr_assert_eq(r->err_len, 0, "tmbpf %s: stderr: %s", fa_str((char *const *)args), r->err);
}

static void same_bytes(const char *got, size_t got_len, const char *want, size_t want_len,
		       const char *what)
{
	size_t i = 0, line = 1, start = 0;

	if (got_len == want_len && !memcmp(got, want, got_len))
		return;
	while (i < got_len && i < want_len && got[i] == want[i]) {
		if (got[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	cr_assert_fail("%s: differs from CPython at line %zu (%zu vs %zu bytes)\n  tmbpf:   %.300s\n"
		       "  CPython: %.300s", what, line, got_len, want_len, got + start, want + start);
}

static void mksnap(const char *python, const char *out, const char *seed,
		   const char *const *extra)
{
	const char *const args[] = { out, "--seed", seed, "--pool-seed", "7", NULL };
	struct cli_run r;

	python_ok(&r, python, FG_MKSNAP, args, extra);
	cli_run_free(&r);
}

/* tmbpf flamegraph SNAP OPTS (stdout) == fg_oracle.py folded SNAP OPTS, with
 * the oracle run by `python` on `oracle_snap` (the same traces). */
static void check_folded_with(const char *python, const char *oracle_snap, const char *snap,
			      const char *const *opts)
{
	const char *const targs[] = { "flamegraph", snap, NULL };
	const char *const oargs[] = { "folded", oracle_snap, NULL };
	struct cli_run got, want;
	char what[1200];

	python_ok(&want, python, FG_ORACLE, oargs, opts);
	tmbpf_ok(&got, targs, opts);
	snprintf(what, sizeof(what), "tmbpf flamegraph %s %s", snap, opts ? fa_str((char *const *)opts) : "");
	same_bytes(got.out, got.out_len, want.out, want.out_len, what);
	cli_run_free(&got);
	cli_run_free(&want);
}

static void check_folded(const char *snap, const char *const *opts)
{
	check_folded_with(CLI_PYTHON, snap, snap, opts);
}

/* tmbpf flamegraph SNAP -o OUT.svg OPTS, then fg_oracle.py svgcheck. */
static void check_svg(const char *oracle_snap, const char *snap, const char *const *opts)
{
	const char *svg = cli_path(dir, "graph.svg");
	const char *const targs[] = { "flamegraph", snap, "-o", svg, NULL };
	const char *const oargs[] = { "svgcheck", oracle_snap, svg, NULL };
	struct cli_run got, want;

	tmbpf_ok(&got, targs, opts);
	cr_assert_eq(got.out_len, 0, "-o: nothing on stdout, got %s", got.out);
	python_ok(&want, CLI_PYTHON, FG_ORACLE, oargs, opts);
	cr_assert(!strncmp(want.out, "OK ", 3), "%s", want.out);
	cli_run_free(&got);
	cli_run_free(&want);
}

static void convert(const char *from, const char *to)
{
	const char *const args[] = { "convert", from, to, NULL };
	struct cli_run r;

	tmbpf_ok(&r, args, NULL);
	cli_run_free(&r);
}

/* ---- folded stacks ------------------------------------------------------------- */

static const char *const folded_sets[][10] = {
	{ NULL },
	{ "--count", NULL },
	{ "--include", "/srv/app/pkg1/*", NULL },
	{ "--exclude", "/srv/*", "--count", NULL },
	{ "--include", "*mod1*.py", "--all-frames", NULL },
	{ "--include-domain", "0", NULL },
	{ "--exclude-domain", "0", "--exclude", "lib/*", NULL },
	{ "--include", "*:3@0", "--include", "lib/*@389047", NULL },
};

Test(flamegraph, folded_matches_cpython_grouping)
{
	const char *pk = cli_path(dir, "a.pickle"), *nat = cli_path(dir, "a.tmbpf");
	const char *const extra[] = { "--weird", "--traces", "4000", "--max-frames", "6", NULL };

	mksnap(CLI_PYTHON, pk, "31", extra);
	convert(pk, nat);
	for (size_t i = 0; i < sizeof(folded_sets) / sizeof(folded_sets[0]); i++) {
		check_folded(pk, folded_sets[i]);
		/* the native file holds the same traces: the oracle reads the pickle */
		check_folded_with(CLI_PYTHON, pk, nat, folded_sets[i]);
	}
}

/* Tracebacks with the same frames and different total_nframe are one stack
 * (Traceback equality ignores total_nframe), whatever their domain. */
Test(flamegraph, folded_merges_tracebacks_with_equal_frames)
{
	const char *nat = cli_path(dir, "m.tmbpf"), *pk = cli_path(dir, "m.pickle");
	const char *const targs[] = { "flamegraph", nat, NULL };
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_error err = { "" };
	struct cli_run r;

	cr_assert_not_null(s);
	s->traceback_limit = 2;
	analysis_add(s, 0, 100, analysis_tb(s, 2, 2, "a.py", 5u, "b.py", 1u));
	analysis_add(s, 0, 20, analysis_tb(s, 9, 2, "a.py", 5u, "b.py", 1u));
	analysis_add(s, 7, 3, analysis_tb(s, TM_TOTAL_NFRAME_NONE, 2, "a.py", 5u, "b.py", 1u));
	analysis_add(s, 0, 1, analysis_tb(s, 2, 1, "b.py", 1u));
	cr_assert_eq(s->ntracebacks, 4);
	cr_assert_eq(tm_snapshot_save_native(s, nat, &err), 0, "%s", err.msg);
	tm_snapshot_free(s);
	convert(nat, pk);
	tmbpf_ok(&r, targs, NULL);
	cr_assert_str_eq(r.out, "b.py:1 1\nb.py:1;a.py:5 123\n");
	cli_run_free(&r);
	check_folded_with(CLI_PYTHON, pk, nat, NULL);
	check_folded_with(CLI_PYTHON, pk, nat, (const char *const[]){ "--count", NULL });
}

/* Snapshots taken with traceback limits 1, 2 and 5 (a CPython pickle has as
 * many frames as its limit): stacks as deep as the limit, never deeper. */
Test(flamegraph, folded_of_each_traceback_limit)
{
	static const char *const limits[] = { "1", "2", "5" };

	for (size_t i = 0; i < 3; i++) {
		const char *pk = cli_path(dir, "lim.pickle");
		const char *const extra[] = { "--max-frames", limits[i], "--limit", limits[i],
					      "--traces", "2000", NULL };
		const char *const targs[] = { "flamegraph", pk, NULL };
		struct cli_run got;
		unsigned maxdepth = 0;

		mksnap(CLI_PYTHON, pk, "5", extra);
		check_folded(pk, NULL);
		tmbpf_ok(&got, targs, NULL);
		for (char *line = got.out; *line;) {
			char *nl = strchr(line, '\n');
			unsigned frames = 1;

			cr_assert_not_null(nl);
			for (char *p = line; p < nl; p++)
				frames += *p == ';';
			if (frames > maxdepth)
				maxdepth = frames;
			line = nl + 1;
		}
		cr_assert_eq(maxdepth, (unsigned)atoi(limits[i]));
		cli_run_free(&got);
	}
}

/* Pickles written by every CPython: 3.8's 3-tuples, 3.9+'s 4-tuples, each
 * grouped by that version's own tracemalloc. */
Test(flamegraph, folded_of_every_cpython_pickle)
{
	int ran = 0;

	for (size_t v = 0; v < FILES_NPYTHONS; v++) {
		char py[512];
		const char *pk = cli_path(dir, "v.pickle");
		const char *const extra[] = { "--weird", "--traces", "1500", "--limit", "3", NULL };

		if (!files_python_path(&files_pythons[v], py, sizeof(py)))
			continue;
		mksnap(py, pk, "8", extra);
		check_folded_with(py, pk, pk, NULL);
		check_folded_with(py, pk, pk, (const char *const[]){ "--count", NULL });
		ran++;
	}
	cr_assert_gt(ran, 1, "fewer than two CPython versions found");
}

/* ---- SVG ---------------------------------------------------------------------- */

static const char *const svg_sets[][8] = {
	{ NULL },
	{ "--inverted", NULL },
	{ "--count", NULL },
	{ "--width", "600", "--inverted", NULL },
	{ "--include", "/srv/*", NULL },
	{ "--width", "100", NULL },
};

Test(flamegraph, svg_frames_match_cpython_tree)
{
	const char *pk = cli_path(dir, "s.pickle"), *nat = cli_path(dir, "s.tmbpf");
	const char *const extra[] = { "--weird", "--traces", "3000", "--max-frames", "6", NULL };

	mksnap(CLI_PYTHON, pk, "17", extra);
	convert(pk, nat);
	for (size_t i = 0; i < sizeof(svg_sets) / sizeof(svg_sets[0]); i++) {
		check_svg(pk, pk, svg_sets[i]);
		check_svg(pk, nat, svg_sets[i]);
	}
}

/* A snapshot whose sizes span nine orders of magnitude: most frames are
 * narrower than 0.1 px and must be left out, as flamegraph.pl does. */
Test(flamegraph, svg_omits_frames_below_min_width)
{
	const char *pk = cli_path(dir, "wide.pickle"), *svg = cli_path(dir, "graph.svg");
	const char *const extra[] = { "--traces", "20000", "--tracebacks", "3000", "--files", "40",
				      NULL };
	const char *const targs[] = { "flamegraph", pk, "-o", svg, NULL };
	struct cli_run r;
	char *text;
	uint64_t omitted = 0;

	mksnap(CLI_PYTHON, pk, "3", extra);
	check_svg(pk, pk, NULL);
	tmbpf_ok(&r, targs, NULL);
	cli_run_free(&r);
	text = cli_read_file(svg, NULL);
	char *p = strstr(text, "are not drawn (");

	cr_assert_not_null(p);
	omitted = strtoull(p + strlen("are not drawn ("), NULL, 10);
	cr_assert_gt(omitted, 100, "expected many frames under 0.1 px, %" PRIu64, omitted);
}

/* ---- hostile names -------------------------------------------------------------- */

Test(flamegraph, hostile_names_are_escaped)
{
	const char *pk = cli_path(dir, "hostile.pickle"), *nat = cli_path(dir, "hostile.tmbpf");
	const char *const hargs[] = { "hostile", pk, NULL };
	const char *const targs[] = { "flamegraph", pk, NULL };
	struct cli_run r;

	python_ok(&r, CLI_PYTHON, FG_ORACLE, hargs, NULL);
	cli_run_free(&r);
	convert(pk, nat);
	check_folded(pk, NULL);
	check_folded_with(CLI_PYTHON, pk, nat, NULL);
	check_svg(pk, pk, NULL);
	check_svg(pk, nat, (const char *const[]){ "--inverted", NULL });
	check_svg(pk, pk, (const char *const[]){ "--count", "--width", "300", NULL });
	/* one line per stack, a frame separator only between frames */
	tmbpf_ok(&r, targs, NULL);
	size_t lines = 0;

	for (size_t i = 0; i < r.out_len; i++)
		lines += r.out[i] == '\n';
	cr_assert_eq(lines, 43, "43 groups (14 names x 3 + big.py), got %zu lines", lines);
	cr_assert_null(memchr(r.out, '\r', r.out_len));
	cr_assert_null(memchr(r.out, '\0', r.out_len));
	cli_run_free(&r);
}

/* A title from the command line is escaped like a file name; an undecodable
 * byte shows as its surrogate, as Python's os.fsdecode() reads it. */
Test(flamegraph, title_is_escaped)
{
	const char *pk = cli_path(dir, "t.pickle"), *svg = cli_path(dir, "t.svg");
	const char *const targs[] = { "flamegraph", pk, "-o", svg, "--title",
				      "<b>&\"x\"\n\xff", NULL };
	struct cli_run r;
	char *text;

	mksnap(CLI_PYTHON, pk, "1", NULL);
	tmbpf_ok(&r, targs, NULL);
	cli_run_free(&r);
	text = cli_read_file(svg, NULL);
	cr_assert_not_null(strstr(text, ">&lt;b&gt;&amp;&quot;x&quot;\\n\\udcff</text>"), "%.1500s",
			   text);
}

/* Bytes that are not UTF-8 at all can only come from a hostile native file;
 * they are shown as the surrogates 'surrogateescape' would give them. */
Test(flamegraph, name_escapes_of_invalid_utf8)
{
	static const struct {
		const char *in;
		size_t len;
		const char *folded, *display;
	} cases[] = {
		{ "a\xff" "b", 3, "a\\udcffb", "a\\udcffb" },
		{ "\xc3", 1, "\\udcc3", "\\udcc3" },                   /* truncated sequence */
		{ "\xe0\x80\x80", 3, "\\udce0\\udc80\\udc80", "\\udce0\\udc80\\udc80" }, /* overlong */
		{ "\xf4\x90\x80\x80", 4, "\\udcf4\\udc90\\udc80\\udc80",
		  "\\udcf4\\udc90\\udc80\\udc80" },                    /* above U+10FFFF */
		{ "\xed\xb3\xbf", 3, "\\udcff", "\\udcff" },           /* U+DCFF, surrogatepass */
		{ "a;b\\c", 5, "a\\x3bb\\\\c", "a;b\\c" },
		{ "\x01\x7f\x1b", 3, "\\x01\\x7f\\x1b", "\\x01\\x7f\\x1b" },
		{ "\xc2\x85", 2, "\xc2\x85", "\xc2\x85" },             /* U+0085 is valid XML */
		{ "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
		{ "\xef\xbf\xbe", 3, "\\ufffe", "\\ufffe" },
		{ "a\0b", 3, "a\\x00b", "a\\x00b" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int mode = 0; mode < 2; mode++) {
			char *buf = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&buf, &len);
			const char *want = mode ? cases[i].folded : cases[i].display;

			cr_assert_not_null(m);
			fg_write_name(m, (struct tm_str){ cases[i].in, (uint32_t)cases[i].len },
				      mode ? FG_NAME_FOLDED : FG_NAME_DISPLAY);
			fclose(m);
			cr_expect_str_eq(buf, want, "case %zu mode %d", i, mode);
			free(buf);
		}
	}
}

/* ---- empty snapshots ---------------------------------------------------------- */

Test(flamegraph, empty_snapshot)
{
	const char *pk = cli_path(dir, "empty.pickle"), *nat = cli_path(dir, "empty.tmbpf");
	const char *const extra[] = { "--traces", "0", NULL };
	const char *const targs[] = { "flamegraph", nat, NULL };
	struct cli_run r;

	mksnap(CLI_PYTHON, pk, "1", extra);
	convert(pk, nat);
	check_folded(pk, NULL);
	tmbpf_ok(&r, targs, NULL);
	cr_assert_eq(r.out_len, 0, "no stack, no line: %s", r.out);
	cli_run_free(&r);
	check_svg(pk, pk, NULL);
	check_svg(pk, nat, (const char *const[]){ "--count", NULL });
	/* everything filtered out */
	check_svg(pk, pk, (const char *const[]){ "--include", "nothing-matches", NULL });
}

/* ---- growth snapshots ----------------------------------------------------------- */

/* A growth-tier file: domain 1 (resident pages) and 2 (mappings). The graph
 * shows domain 1 unless a domain is chosen; the result equals the folded
 * stacks CPython computes with the matching DomainFilter. */
Test(flamegraph, growth_snapshot_defaults_to_resident_pages)
{
	const char *nat = cli_path(dir, "growth.tmbpf"), *pk = cli_path(dir, "growth.pickle");
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_error err = { "" };
	struct cli_run r;
	const char *const targs[] = { "flamegraph", nat, NULL };
	tm_id a, b;

	cr_assert_not_null(s);
	s->traceback_limit = 2;
	s->capture.tier = TM_TIER_GROWTH;
	s->capture.coverage = TM_COVERAGE_SAMPLED;
	s->capture.pid = 77;
	a = analysis_tb(s, 2, 2, "/srv/leak.py", 10u, "/srv/main.py", 3u);
	b = analysis_tb(s, 2, 2, "/srv/mmap.py", 4u, "/srv/main.py", 3u);
	analysis_add(s, 1, 65536, a);
	analysis_add(s, 1, 4096, b);
	analysis_add(s, 2, 1 << 20, b);
	analysis_add(s, 2, 8192, a);
	cr_assert_eq(tm_snapshot_save_native(s, nat, &err), 0, "%s", err.msg);
	tm_snapshot_free(s);
	convert(nat, pk);

	tmbpf(&r, targs, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "domain 1 (resident pages"), "the default is said: %s", r.err);
	cr_assert_str_eq(r.out, "/srv/main.py:3;/srv/leak.py:10 65536\n"
				"/srv/main.py:3;/srv/mmap.py:4 4096\n");
	cli_run_free(&r);
	check_folded_with(CLI_PYTHON, pk, nat, (const char *const[]){ "--include-domain", "2", NULL });
	check_folded_with(CLI_PYTHON, pk, nat, (const char *const[]){ "--exclude-domain", "1", NULL });

	/* the SVG of the default: CPython's tree of domain 1 */
	const char *svg = cli_path(dir, "g.svg");
	const char *const sargs[] = { "flamegraph", nat, "-o", svg, NULL };
	const char *const oargs[] = { "svgcheck", pk, svg, "--include-domain", "1", NULL };
	struct cli_run want;

	tmbpf(&r, sargs, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cli_run_free(&r);
	python_ok(&want, CLI_PYTHON, FG_ORACLE, oargs, NULL);
	cli_run_free(&want);
	char *text = cli_read_file(svg, NULL);

	cr_assert_not_null(strstr(text, "domain 1: resident pages that grew while tracing"));
	cr_assert_not_null(strstr(text, "growth tier, PID 77"));
}

/* ---- files and errors ----------------------------------------------------------- */

static size_t count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(flamegraph, output_files_are_atomic)
{
	const char *pk = cli_path(dir, "o.pickle"), *sub = cli_path(dir, "out");
	const char *folded = cli_path(dir, "out/g.folded"), *svg = cli_path(dir, "out/g.svg");
	const char *missing = cli_path(dir, "no/such/dir/g.svg");
	struct cli_run r, want;
	const char *const oargs[] = { "folded", pk, NULL };

	mksnap(CLI_PYTHON, pk, "2", NULL);
	cr_assert_eq(mkdir(sub, 0755), 0);
	/* an existing file is replaced whole */
	cli_write_file(folded, "old content that is longer than nothing\n", 40);
	tmbpf_ok(&r, (const char *const[]){ "flamegraph", pk, "-o", folded, NULL }, NULL);
	cr_assert_eq(r.out_len, 0);
	cli_run_free(&r);
	python_ok(&want, CLI_PYTHON, FG_ORACLE, oargs, NULL);
	size_t len;
	char *text = cli_read_file(folded, &len);

	same_bytes(text, len, want.out, want.out_len, "-o g.folded");
	cli_run_free(&want);
	/* .svg picks SVG; --folded overrides the name */
	tmbpf_ok(&r, (const char *const[]){ "flamegraph", pk, "-o", svg, NULL }, NULL);
	cli_run_free(&r);
	text = cli_read_file(svg, NULL);
	cr_assert(!strncmp(text, "<?xml", 5));
	tmbpf_ok(&r, (const char *const[]){ "flamegraph", pk, "-o", svg, "--folded", NULL }, NULL);
	cli_run_free(&r);
	text = cli_read_file(svg, &len);
	python_ok(&want, CLI_PYTHON, FG_ORACLE, oargs, NULL);
	same_bytes(text, len, want.out, want.out_len, "--folded -o g.svg");
	cli_run_free(&want);
	/* --svg to stdout */
	tmbpf_ok(&r, (const char *const[]){ "flamegraph", pk, "--svg", NULL }, NULL);
	cr_assert(!strncmp(r.out, "<?xml", 5));
	cli_run_free(&r);
	cr_assert_eq(count_entries(sub), 2, "no temporary file is left behind");
	/* a directory that does not exist: one line, no file */
	tmbpf(&r, (const char *const[]){ "flamegraph", pk, "-o", missing, NULL }, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_eq(r.out_len, 0);
	cr_assert(!strncmp(r.err, "tmbpf: ", 7) && strchr(r.err, '\n') == r.err + r.err_len - 1,
		  "one error line: %s", r.err);
	cr_assert_not_null(strstr(r.err, "no/such/dir"), "%s", r.err);
	cli_run_free(&r);
	/* an output that is a directory */
	tmbpf(&r, (const char *const[]){ "flamegraph", pk, "-o", sub, NULL }, NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cli_run_free(&r);
	cr_assert_eq(count_entries(sub), 2);
}

Test(flamegraph, usage_and_file_errors)
{
	const char *pk = cli_path(dir, "u.pickle"), *bad = cli_path(dir, "bad.pickle");
	static const struct {
		const char *args[8];
		int status;
		const char *msg;
	} cases[] = {
		{ { "flamegraph", NULL }, 2, "missing argument" },
		{ { "flamegraph", "PK", "PK", NULL }, 2, "unexpected argument" },
		{ { "flamegraph", "PK", "--folded", "--svg", NULL }, 2, "exclude each other" },
		{ { "flamegraph", "PK", "--title", "x", NULL }, 2, "--title is for SVG" },
		{ { "flamegraph", "PK", "--inverted", "--folded", NULL }, 2, "--inverted is for SVG" },
		{ { "flamegraph", "PK", "--svg", "--width", "50", NULL }, 2, "--width out of range" },
		{ { "flamegraph", "PK", "--svg", "--width", "x", NULL }, 2, "invalid --width" },
		{ { "flamegraph", "PK", "--limit", "3", NULL }, 2, "unrecognized option '--limit'" },
		{ { "flamegraph", "PK", "--key-type", "lineno", NULL }, 2, "unrecognized option" },
		{ { "flamegraph", "PK", "--include-domain", "-1", NULL }, 2, "invalid domain" },
		{ { "flamegraph", "BAD", NULL }, 1, "bad.pickle" },
		{ { "flamegraph", "MISSING", NULL }, 1, "MISSING" },
	};

	mksnap(CLI_PYTHON, pk, "2", NULL);
	cli_write_file(bad, "\x80\x04\x95garbage", 10);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[8];
		struct cli_run r;

		for (size_t k = 0; k < 8; k++) {
			const char *a = cases[i].args[k];

			args[k] = !a ? NULL : !strcmp(a, "PK") ? pk : !strcmp(a, "BAD") ? bad : a;
			if (!a)
				break;
		}
		tmbpf(&r, args, NULL);
		cr_expect_eq(r.status, cases[i].status, "case %zu: exit %d: %s", i, r.status, r.err);
		cr_expect_eq(r.out_len, 0, "case %zu: stdout %s", i, r.out);
		cr_expect(!strncmp(r.err, "tmbpf: ", 7) &&
			  strchr(r.err, '\n') == r.err + r.err_len - 1,
			  "case %zu: one error line: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].msg), "case %zu: %s", i, r.err);
		cli_run_free(&r);
	}
}

Test(flamegraph, help_lists_filters_not_statistics)
{
	struct cli_run r;

	tmbpf_ok(&r, (const char *const[]){ "flamegraph", "--help", NULL }, NULL);
	cr_assert_not_null(strstr(r.out, "--include=PATTERN"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "--include-domain=DOMAIN"));
	cr_assert_not_null(strstr(r.out, "--inverted"));
	cr_assert_null(strstr(r.out, "--key-type"));
	cr_assert_null(strstr(r.out, "--limit"));
	cli_run_free(&r);
	tmbpf_ok(&r, (const char *const[]){ "--help", NULL }, NULL);
	cr_assert_not_null(strstr(r.out, "flamegraph"));
	cli_run_free(&r);
}
