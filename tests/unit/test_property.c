// SPDX-License-Identifier: MIT
/*
 * Property test: random snapshots analysed by us and by the real tracemalloc.
 *
 * Each case is a pair of random snapshots (a few hundred traces, several
 * domains, file names with non-ASCII characters, undecodable bytes and glob
 * metacharacters, recursion-like repeated frames, total_nframe sometimes None),
 * random filter lists and fnmatch pairs. The C side prints, in one fixed
 * layout, str() of every statistic for each key type x cumulative, the same for
 * compare_to(), the indexes kept by filter_traces() and the statistics of the
 * result, fnmatch results, str(Trace) and Traceback.format() lines; then
 * tests/py/analysis_oracle.py builds the same snapshots in CPython from a JSON
 * file and prints the same things. The two outputs must be identical.
 *
 * Reproducible: the seed is fixed (TMBPF_PROPERTY_SEED overrides it,
 * TMBPF_PROPERTY_CASES the number of cases). The first difference is reported
 * with its case number; TMBPF_PROPERTY_KEEP=1 keeps the cases file and both
 * outputs in /tmp.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/filter.h"
#include "snapshot/format.h"
#include "snapshot/stats.h"
#include "analysis_util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define DEFAULT_SEED 0x74b5f0e1a3c2d987ULL
#define DEFAULT_CASES 300

/* ---- reproducible randomness (xorshift64*) ------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* uniform in [0, n) */
static uint32_t below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static bool chance(unsigned percent)
{
	return below(100) < percent;
}

/* ---- the random material ------------------------------------------------ */

/* UTF-8 with surrogatepass: \xed\xb2\x80 is U+DC80, an undecodable byte 0x80
 * of a file name as Python's surrogateescape decodes it. */
static const char *const dirs[] = {
	"/nonexistent-tmbpf/lib/", "tmbpf_rel/", "/nonexistent-tmbpf/[x]/",
	"/nonexistent-tmbpf/\xc3\xa9t\xc3\xa9/", "/nonexistent-tmbpf/a-b!/", "",
};
static const char *const bases[] = {
	"a", "b", "ab", "a-b", "x!y", "[z]", "q?", "s*t", "\xc3\xbcn\xc3\xaf",
	"\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", "caf\xed\xb3\xa9", "\xed\xb2\x80\xed\xb3\xbf",
	"A", "]", "-", "z-a", "main",
};
static const char *const exts[] = { ".py", ".py", ".pyc", ".pyo", "", ".PY" };
static const char *const pattern_pieces[] = {
	"*", "*", "?", "[a-c]", "[!a]", "[]a]", "[!]]", "[z-a]", "[a-]", "[-a]", "[", "]", "!",
	"-", "a", "b", "/", ".py", ".pyc", "\xc3\xa9", "[\xc3\xa9-\xc3\xbc]",
	"[\xed\xb2\x80-\xed\xb3\xbf]", "lib", "tmbpf", "[[]", "\\", "[!-]", "[b-a-c]",
	"/nonexistent-tmbpf/", "**", "x", "[!z-a]",
};
static const uint32_t domains[] = { 0, 0, 0, 1, 2, TM_NUMPY_DOMAIN };

struct name {
	char s[192];
	size_t len;
};

static void random_name(struct name *n)
{
	if (chance(5)) {
		n->len = (size_t)snprintf(n->s, sizeof(n->s), "<unknown>");
		return;
	}
	/* one draw per statement: argument order is up to the compiler */
	const char *dir = dirs[below(N(dirs))];
	const char *base = bases[below(N(bases))];
	const char *ext = exts[below(N(exts))];

	n->len = (size_t)snprintf(n->s, sizeof(n->s), "%s%s%s", dir, base, ext);
}

/* A pattern meant to match `n` (or nearly): code points turned into '?', '*'
 * or classes that hold them (or, negated, do not). '?' stands for whole UTF-8
 * sequences: fnmatch works on code points. */
static void pattern_from_name(struct name *p, const struct name *n)
{
	size_t i = 0, o = 0;

	while (i < n->len && o + 12 < sizeof(p->s)) {
		unsigned char c = (unsigned char)n->s[i];
		size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

		switch (chance(70) ? 9 : below(6)) {
		case 0:
			p->s[o++] = '?';
			break;
		case 1:
			p->s[o++] = '*';
			break;
		case 2:         /* [c] or [!c] */
			o += (size_t)sprintf(p->s + o, chance(70) ? "[" : "[!");
			memcpy(p->s + o, n->s + i, l);
			o += l;
			p->s[o++] = ']';
			break;
		case 3:         /* a range ending or starting at c */
			if (l == 1) {
				o += (size_t)sprintf(p->s + o, chance(50) ? "[%c-~]" : "[ -%c]", c);
				break;
			}
			/* fall through */
		default:
			memcpy(p->s + o, n->s + i, l);
			o += l;
		}
		i += l;
	}
	p->s[o] = '\0';
	p->len = o;
}

static void random_pattern(struct name *p, const struct name *pool, size_t npool)
{
	unsigned k, pieces;

	if (chance(50)) {
		pattern_from_name(p, &pool[below((uint32_t)npool)]);
		return;
	}
	p->len = 0;
	p->s[0] = '\0';
	pieces = 1 + below(5);
	for (k = 0; k < pieces; k++) {
		const char *piece = pattern_pieces[below(N(pattern_pieces))];
		size_t l = strlen(piece);

		if (p->len + l >= sizeof(p->s))
			break;
		memcpy(p->s + p->len, piece, l + 1);
		p->len += l;
	}
}

static uint64_t random_size(void)
{
	switch (below(6)) {
	case 0:
		return below(4);                        /* 0..3: ties and size 0 */
	case 1:
		return 8 * (1 + below(8));
	case 2:
		return below(20000);
	case 3: {
		uint64_t mantissa = below(1u << 20);

		return mantissa << below(21);           /* up to TiB */
	}
	default:
		return 1 + below(200);
	}
}

struct tb_spec {
	uint32_t nframe, total_nframe;          /* TM_TOTAL_NFRAME_NONE = None */
	uint32_t name[8], lineno[8];            /* most recent first */
};

struct case_spec {
	struct name names[14];
	size_t nnames;
	struct tb_spec tbs[40];
	size_t ntbs;
	struct snap_spec {
		uint32_t ntraces;
		struct { uint32_t domain, tb; uint64_t size; } traces[400];
	} snap[2];                              /* 0 = new, 1 = old */
	struct filter_spec {
		bool domain_filter, inclusive, all_frames;
		int64_t lineno, domain;
		struct name pattern;
	} filters[4];
	size_t nfilters;
	struct { struct name pattern; uint32_t name; } fn[16];
	uint32_t str_traces[6];
	struct { uint32_t trace; bool has_limit, mrf; int64_t limit; } formats[4];
};

static void random_case(struct case_spec *c)
{
	size_t i, k;

	memset(c, 0, sizeof(*c));
	c->nnames = 3 + below(N(c->names) - 3);
	for (i = 0; i < c->nnames; i++)
		random_name(&c->names[i]);
	c->ntbs = 3 + below(N(c->tbs) - 3);
	for (i = 0; i < c->ntbs; i++) {
		struct tb_spec *t = &c->tbs[i];

		t->nframe = 1 + below(6);
		for (k = 0; k < t->nframe; k++) {
			if (k > 0 && chance(30)) {      /* recursion: the same frame again */
				t->name[k] = t->name[k - 1];
				t->lineno[k] = t->lineno[k - 1];
			} else {
				t->name[k] = below((uint32_t)c->nnames);
				t->lineno[k] = below(13);
			}
		}
		t->total_nframe = chance(15) ? TM_TOTAL_NFRAME_NONE : t->nframe + below(3);
		/* sometimes the same frames with another total_nframe */
		if (i > 0 && chance(10)) {
			*t = c->tbs[i - 1];
			t->total_nframe = t->total_nframe == TM_TOTAL_NFRAME_NONE ? 1 : TM_TOTAL_NFRAME_NONE;
		}
	}
	for (k = 0; k < 2; k++) {
		struct snap_spec *s = &c->snap[k];

		s->ntraces = 1 + below(N(s->traces));
		for (i = 0; i < s->ntraces; i++) {
			s->traces[i].domain = domains[below(N(domains))];
			/* the old snapshot leaves some tracebacks out, so that groups
			 * appear and vanish in compare_to() */
			s->traces[i].tb = below(k ? (uint32_t)c->ntbs / 2 + 1 : (uint32_t)c->ntbs);
			s->traces[i].size = random_size();
		}
	}
	c->nfilters = below(N(c->filters) + 1);
	for (i = 0; i < c->nfilters; i++) {
		struct filter_spec *f = &c->filters[i];

		f->domain_filter = chance(20);
		f->inclusive = chance(50);
		f->all_frames = chance(50);
		f->lineno = chance(25) ? (int64_t)below(13) : -1;
		f->domain = chance(30) ? (int64_t)domains[below(N(domains))] : -1;
		if (f->domain_filter)
			f->domain = domains[below(N(domains))];
		else
			random_pattern(&f->pattern, c->names, c->nnames);
	}
	for (i = 0; i < N(c->fn); i++) {
		c->fn[i].name = below((uint32_t)c->nnames);
		if (chance(50))
			pattern_from_name(&c->fn[i].pattern, &c->names[c->fn[i].name]);
		else
			random_pattern(&c->fn[i].pattern, c->names, c->nnames);
	}
	for (i = 0; i < N(c->str_traces); i++)
		c->str_traces[i] = below(c->snap[0].ntraces);
	for (i = 0; i < N(c->formats); i++) {
		c->formats[i].trace = below(c->snap[0].ntraces);
		c->formats[i].has_limit = chance(70);
		c->formats[i].limit = (int64_t)below(15) - 7;
		c->formats[i].mrf = chance(50);
	}
}

/* ---- JSON for the oracle ----------------------------------------------- */

/* A JSON string of code points (lone surrogates as \udcXX, astral ones as
 * surrogate pairs), which json.load() turns into the same Python str. */
static void json_str(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	fputc('"', out);
	while (p < end) {
		uint32_t cp;

		if (p[0] < 0x80) {
			cp = p[0];
			p++;
		} else if (p[0] < 0xe0) {
			cp = (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
			p += 2;
		} else if (p[0] < 0xf0) {
			cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
			p += 3;
		} else {
			cp = (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
			     (p[3] & 0x3fu);
			p += 4;
		}
		if (cp >= 0x20 && cp < 0x7f && cp != '"' && cp != '\\') {
			fputc((int)cp, out);
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			fprintf(out, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else {
			fprintf(out, "\\u%04x", cp);
		}
	}
	fputc('"', out);
}

static void json_int_or_null(FILE *out, int64_t v)
{
	if (v < 0)
		fputs("null", out);
	else
		fprintf(out, "%" PRId64, v);
}

static void json_case(FILE *out, const struct case_spec *c)
{
	size_t i, k, f;

	fputs("{", out);
	for (k = 0; k < 2; k++) {
		const struct snap_spec *s = &c->snap[k];

		fprintf(out, "%s\"%s\": {\"limit\": 6, \"traces\": [", k ? ", " : "", k ? "old" : "new");
		for (i = 0; i < s->ntraces; i++) {
			const struct tb_spec *t = &c->tbs[s->traces[i].tb];

			fprintf(out, "%s[%u, %" PRIu64 ", [", i ? ", " : "", s->traces[i].domain,
				s->traces[i].size);
			for (f = 0; f < t->nframe; f++) {
				const struct name *n = &c->names[t->name[f]];

				fputs(f ? ", [" : "[", out);
				json_str(out, n->s, n->len);
				fprintf(out, ", %u]", t->lineno[f]);
			}
			fputs("], ", out);
			json_int_or_null(out, t->total_nframe == TM_TOTAL_NFRAME_NONE
					      ? -1 : (int64_t)t->total_nframe);
			fputs("]", out);
		}
		fputs("]}", out);
	}
	fputs(", \"filters\": [", out);
	for (i = 0; i < c->nfilters; i++) {
		const struct filter_spec *fl = &c->filters[i];

		fputs(i ? ", {" : "{", out);
		if (fl->domain_filter) {
			fprintf(out, "\"kind\": \"domain\", \"inclusive\": %s, \"domain\": %" PRId64,
				fl->inclusive ? "true" : "false", fl->domain);
		} else {
			fprintf(out, "\"kind\": \"filter\", \"inclusive\": %s, \"all_frames\": %s, "
				"\"pattern\": ", fl->inclusive ? "true" : "false",
				fl->all_frames ? "true" : "false");
			json_str(out, fl->pattern.s, fl->pattern.len);
			fputs(", \"lineno\": ", out);
			json_int_or_null(out, fl->lineno);
			fputs(", \"domain\": ", out);
			json_int_or_null(out, fl->domain);
		}
		fputs("}", out);
	}
	fputs("], \"fnmatch\": [", out);
	for (i = 0; i < N(c->fn); i++) {
		const struct name *n = &c->names[c->fn[i].name];

		fputs(i ? ", [" : "[", out);
		json_str(out, c->fn[i].pattern.s, c->fn[i].pattern.len);
		fputs(", ", out);
		json_str(out, n->s, n->len);
		fputs("]", out);
	}
	fputs("], \"str_traces\": [", out);
	for (i = 0; i < N(c->str_traces); i++)
		fprintf(out, "%s%u", i ? ", " : "", c->str_traces[i]);
	fputs("], \"formats\": [", out);
	for (i = 0; i < N(c->formats); i++) {
		fprintf(out, "%s[%u, ", i ? ", " : "", c->formats[i].trace);
		if (c->formats[i].has_limit)
			fprintf(out, "%" PRId64, c->formats[i].limit);
		else
			fputs("null", out);
		fprintf(out, ", %d]", c->formats[i].mrf);
	}
	fputs("]}", out);
}

/* ---- our side ----------------------------------------------------------- */

static struct tm_snapshot *build(const struct case_spec *c, int which)
{
	const struct snap_spec *spec = &c->snap[which];
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id tb_ids[N(c->tbs)];
	size_t i, f;

	cr_assert_not_null(s);
	s->traceback_limit = 6;
	for (i = 0; i < c->ntbs; i++) {
		const struct tb_spec *t = &c->tbs[i];
		tm_id frames[8];

		for (f = 0; f < t->nframe; f++) {
			const struct name *n = &c->names[t->name[f]];

			frames[f] = tm_intern_frame(s, tm_intern_string(s, n->s, n->len),
						    t->lineno[f]);
			cr_assert_neq(frames[f], TM_ID_NONE);
		}
		tb_ids[i] = tm_intern_traceback(s, frames, t->nframe, t->total_nframe);
		cr_assert_neq(tb_ids[i], TM_ID_NONE);
	}
	for (i = 0; i < spec->ntraces; i++)
		cr_assert_eq(tm_add_trace(s, spec->traces[i].domain, spec->traces[i].size,
					  tb_ids[spec->traces[i].tb], 0), 0);
	return s;
}

static const struct { enum tm_key_type k; bool cumulative; } combos[] = {
	{ TM_KEY_TRACEBACK, false }, { TM_KEY_FILENAME, false }, { TM_KEY_FILENAME, true },
	{ TM_KEY_LINENO, false }, { TM_KEY_LINENO, true },
};

static void print_case(FILE *out, size_t index, const struct case_spec *c)
{
	struct tm_snapshot *s_new = build(c, 0), *s_old = build(c, 1);
	struct tm_filter filters[N(c->filters)];
	struct tm_error err = { "" };
	struct tm_stats st;
	size_t i, j;

	fprintf(out, "# case %zu\n", index);
	for (i = 0; i < N(combos); i++) {
		const char *kname = tm_key_type_name(combos[i].k);

		fprintf(out, "## statistics %s %d\n", kname, combos[i].cumulative);
		cr_assert_eq(tm_statistics(s_new, combos[i].k, combos[i].cumulative, &st, &err), 0,
			     "%s", err.msg);
		for (j = 0; j < st.n; j++)
			tm_print_statistic(out, &st.stats[j]);
		tm_stats_free(&st);
		fprintf(out, "## compare_to %s %d\n", kname, combos[i].cumulative);
		cr_assert_eq(tm_compare_to(s_new, s_old, combos[i].k, combos[i].cumulative, &st,
					   &err), 0, "%s", err.msg);
		for (j = 0; j < st.n; j++)
			tm_print_statistic_diff(out, &st.diffs[j]);
		tm_stats_free(&st);
	}

	/* filter_traces on a copy of the new snapshot; addresses number the traces */
	struct tm_snapshot *filtered = build(c, 0);
	for (i = 0; i < filtered->ntraces; i++)
		filtered->traces[i].address = i;
	for (i = 0; i < c->nfilters; i++) {
		const struct filter_spec *f = &c->filters[i];

		if (f->domain_filter)
			cr_assert_eq(tm_domain_filter_init(&filters[i], f->inclusive,
							   (uint32_t)f->domain), 0);
		else
			cr_assert_eq(tm_filter_init(&filters[i], f->inclusive, f->pattern.s,
						    f->pattern.len, f->lineno, f->all_frames,
						    f->domain, &err), 0, "%s", err.msg);
	}
	cr_assert_eq(tm_snapshot_filter_traces(filtered, filters, c->nfilters, &err), 0);
	fputs("## filter_traces\n", out);
	for (i = 0; i < filtered->ntraces; i++)
		fprintf(out, "%s%" PRIu64, i ? " " : "", filtered->traces[i].address);
	fputs("\n## filtered statistics lineno\n", out);
	cr_assert_eq(tm_statistics(filtered, TM_KEY_LINENO, false, &st, &err), 0);
	for (j = 0; j < st.n; j++)
		tm_print_statistic(out, &st.stats[j]);
	tm_stats_free(&st);
	for (i = 0; i < c->nfilters; i++)
		tm_filter_destroy(&filters[i]);
	tm_snapshot_free(filtered);

	fputs("## fnmatch\n", out);
	for (i = 0; i < N(c->fn); i++) {
		const struct name *n = &c->names[c->fn[i].name];

		fputc(tm_fnmatch(c->fn[i].pattern.s, c->fn[i].pattern.len, n->s, n->len) ? '1' : '0',
		      out);
	}
	fputs("\n## traces\n", out);
	for (i = 0; i < N(c->str_traces); i++)
		tm_print_trace(out, s_new, &s_new->traces[c->str_traces[i]]);
	fputs("## format\n", out);
	for (i = 0; i < N(c->formats); i++) {
		const struct tm_trace *t = &s_new->traces[c->formats[i].trace];

		if (c->formats[i].has_limit)
			fprintf(out, "### %u %" PRId64 " %d\n", c->formats[i].trace,
				c->formats[i].limit, c->formats[i].mrf);
		else
			fprintf(out, "### %u None %d\n", c->formats[i].trace, c->formats[i].mrf);
		tm_print_traceback_format(out, s_new, t->traceback, c->formats[i].has_limit,
					  c->formats[i].limit, c->formats[i].mrf, NULL);
	}
	tm_snapshot_free(s_new);
	tm_snapshot_free(s_old);
}

/* Compares line by line; reports the first difference with its case. */
static size_t compare_outputs(const char *ours, size_t ours_len, const char *theirs,
			    size_t theirs_len, const char *python)
{
	const char *a = ours, *b = theirs, *ae = ours + ours_len, *be = theirs + theirs_len;
	const char *case_line = "(before the first case)";
	size_t line = 1, case_len = strlen(case_line);

	while (a < ae && b < be) {
		const char *an = memchr(a, '\n', (size_t)(ae - a)), *bn = memchr(b, '\n', (size_t)(be - b));
		size_t al = an ? (size_t)(an - a) : (size_t)(ae - a);
		size_t bl = bn ? (size_t)(bn - b) : (size_t)(be - b);

		if (al > 7 && memcmp(a, "# case ", 7) == 0) {
			case_line = a;
			case_len = al;
		}
		cr_assert(al == bl && memcmp(a, b, al) == 0,
			  "%.*s, output line %zu differs:\n  C:      %.*s\n  %s: %.*s",
			  (int)case_len, case_line, line, (int)al, a, python, (int)bl, b);
		a += al + 1;
		b += bl + 1;
		line++;
	}
	cr_assert(a >= ae && b >= be, "%.*s: output lengths differ after line %zu (C %s, %s %s)",
		  (int)case_len, case_line, line, a >= ae ? "ended" : "continues", python,
		  b >= be ? "ended" : "continues");
	return line - 1;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* Runs ncases random cases through us and through `python`. */
static void run_property(const char *python, uint64_t seed, size_t ncases)
{
	struct analysis_capture ours, json;
	struct case_spec *c = malloc(sizeof(*c));
	char *dir = analysis_tmpdir(), path[4200], script[4096], *theirs, *text;
	size_t i, theirs_len, nlines;
	FILE *jf;

	cr_assert_not_null(c);
	rng_state = seed ? seed : 1;
	analysis_capture_begin(&ours);
	jf = analysis_capture_begin(&json);
	fputs("{\"cases\": [", jf);
	for (i = 0; i < ncases; i++) {
		random_case(c);
		if (i)
			fputs(",\n", jf);
		json_case(jf, c);
		print_case(ours.fp, i, c);
	}
	fputs("]}\n", jf);
	fflush(json.fp);
	snprintf(path, sizeof(path), "%s/cases.json", dir);
	text = analysis_capture_end(&json);
	analysis_write_file(dir, "cases.json", text, json.len);
	free(text);
	fflush(ours.fp);

	cr_assert_not_null(realpath("tests/py/analysis_oracle.py", script));
	char *argv[] = { (char *)python, script, path, NULL };
	cr_assert_eq(analysis_run(NULL, NULL, argv, &theirs, &theirs_len), 0,
		     "%s %s failed", python, script);
	text = analysis_capture_end(&ours);
	nlines = compare_outputs(text, ours.len, theirs, theirs_len, python);
	fprintf(stderr, "property: %zu random cases (seed %#" PRIx64 "), %zu output lines identical"
		" to %s\n", ncases, seed, nlines, python);
	if (getenv("TMBPF_PROPERTY_KEEP")) {
		/* for debugging: keep the cases and both outputs */
		analysis_write_file(dir, "c.out", text, ours.len);
		analysis_write_file(dir, "python.out", theirs, theirs_len);
		fprintf(stderr, "property: kept %s\n", dir);
		free(dir);
	} else {
		analysis_rmtree(dir);
	}
	free(text);
	free(theirs);
	free(c);
	tm_linecache_clear();
}

Test(property, against_cpython, .timeout = 120)
{
	ANALYSIS_REQUIRE_PYTHON();
	run_property(ANALYSIS_PYTHON, env_u64("TMBPF_PROPERTY_SEED", DEFAULT_SEED),
		     (size_t)env_u64("TMBPF_PROPERTY_CASES", DEFAULT_CASES));
}

/* The same analysis in the CPython versions whose Lib/tracemalloc.py and
 * fnmatch we claim (3.12 is the reference; 3.13 the newest). Fewer cases. */
Test(property, against_pyenv_312_313, .timeout = 120)
{
	static const char *const pythons[] = {
		"3.12.1/bin/python3.12", "3.13.0/bin/python3.13",
	};
	const char *home = getenv("HOME");
	char path[4096];
	size_t i, ran = 0;

	for (i = 0; i < N(pythons); i++) {
		snprintf(path, sizeof(path), "%s/.pyenv/versions/%s", home ? home : "", pythons[i]);
		if (access(path, X_OK) != 0) {
			cr_log_info("SKIPPED cross-version check: %s is missing", path);
			fprintf(stderr, "property: SKIPPED %s: not installed\n", path);
			continue;
		}
		run_property(path, env_u64("TMBPF_PROPERTY_SEED", DEFAULT_SEED) ^ 0x5bd1e995u, 60);
		ran++;
	}
	if (!ran)
		cr_skip_test("no pyenv CPython 3.12/3.13 found under ~/.pyenv/versions");
}
