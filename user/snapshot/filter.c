// SPDX-License-Identifier: MIT
/*
 * tracemalloc.Filter, DomainFilter and Snapshot.filter_traces(), with the
 * fnmatch() they rely on.
 *
 * fnmatch: Python (3.9+) translates a pattern into a regular expression and
 * matches it. We compile the same translation into a token list and match it
 * directly, with the regex's own semantics:
 *   - '*' (runs collapse into one), '?' (any one code point, newline included:
 *     the regex is (?s:...)), '[...]' classes, every other code point literal;
 *   - the regex is PREFIX (?>.*?FIXED)... .*LAST\Z: every token matches exactly
 *     one code point, so an interior "STAR FIXED" takes the EARLIEST place where
 *     FIXED matches (the atomic group never backtracks into it) and the last
 *     fixed run must end the name. That is linear-ish and needs no regex engine.
 *   - classes: fnmatch.translate() rewrites "[...]" into a regex set after its
 *     own fixes (an unclosed '[' is a literal; "a-b" ranges split into chunks;
 *     a range whose ends are reversed is removed with its ends; the remainder
 *     empty = never matches; "!" alone = any character; a leading '!' negates;
 *     backslashes and '-' '&' '~' '|' are escaped to literals). We replay that
 *     rewrite on code points and read the resulting set the way sre does.
 * Names and patterns are compared as code points: our strings are UTF-8 with
 * 'surrogatepass', so lone surrogates are code points too. A byte that is not
 * valid UTF-8 (not produced by our loaders) is read as U+DC00+byte, the way
 * Python's 'surrogateescape' would have decoded it.
 * This is fnmatch as of CPython 3.11.2+ / 3.12 / 3.13 (identical results). Up
 * to 3.10 a reversed range such as "[c-a]" made fnmatch raise re.error, and
 * 3.8 did not collapse '*' runs (same results otherwise).
 */
#include "snapshot/filter.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 to code points ------------------------------------------------ */

/* Decodes one code point at p (n > 0 bytes left); returns bytes consumed. */
static size_t decode_cp(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];
	size_t len, i;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		goto bad;
	}
	if (n < len)
		goto bad;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto bad;
		v = v << 6 | (p[i] & 0x3fu);
	}
	/* no overlongs, nothing above U+10FFFF; surrogates pass */
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)))
		goto bad;
	*cp = v;
	return len;
bad:
	*cp = 0xdc00u + c;
	return 1;
}

/* Decodes into a malloc'd array; NULL on allocation failure. */
static uint32_t *decode_all(const char *s, size_t len, size_t *n)
{
	uint32_t *out = malloc((len ? len : 1) * sizeof(*out));
	size_t i = 0, k = 0;

	if (!out)
		return NULL;
	while (i < len) {
		i += decode_cp((const unsigned char *)s + i, len - i, &out[k]);
		k++;
	}
	*n = k;
	return out;
}

/* ---- compiled patterns --------------------------------------------------- */

enum glob_op {
	GLOB_CHAR,                      /* one literal code point */
	GLOB_ANY,                       /* '?' (and the "[!]"-like sets) */
	GLOB_SET,                       /* a class: items[first .. first+n) */
	GLOB_NEVER,                     /* "(?!)": an empty class */
	GLOB_STAR,
};

struct glob_tok {
	enum glob_op op;
	uint32_t cp;                    /* GLOB_CHAR */
	uint32_t first, n;              /* GLOB_SET */
	bool negate;                    /* GLOB_SET */
};

struct glob_range {
	uint32_t lo, hi;                /* a literal is lo == hi */
};

struct tm_glob {
	struct glob_tok *toks;
	size_t ntoks;
	struct glob_range *ranges;
	size_t nranges;
};

static void glob_free(struct tm_glob *g)
{
	if (!g)
		return;
	free(g->toks);
	free(g->ranges);
	free(g);
}

/* A chunk of a class as fnmatch.translate() keeps it: code points [a, b) of
 * a work buffer. Consecutive chunks are joined by a range operator. */
struct chunk {
	size_t a, b;
};

/*
 * Compiles "[" P[i..j) "]" the way fnmatch.translate() rewrites it and sre then
 * reads it. `buf` is scratch space of at least (j-i)+1 code points, `chunks`
 * of (j-i)+1 entries.
 */
static void compile_class(struct tm_glob *g, const uint32_t *pat, size_t i, size_t j,
			  uint32_t *buf, struct chunk *chunks)
{
	struct glob_tok *t = &g->toks[g->ntoks++];
	size_t nchunks = 0, len = 0, c, k;
	bool has_dash = false;

	for (k = i; k < j; k++)
		has_dash |= pat[k] == '-';
	if (!has_dash) {
		memcpy(buf, pat + i, (j - i) * sizeof(*buf));
		chunks[nchunks++] = (struct chunk){ 0, j - i };
		len = j - i;
	} else {
		/* the chunks loop: a '-' right after '[' or "[!" is not a range, and
		 * after a range the search resumes two code points later (k + 3) */
		size_t start = i;

		k = pat[i] == '!' ? i + 2 : i + 1;
		for (;;) {
			while (k < j && pat[k] != '-')
				k++;
			if (k >= j)
				break;
			memcpy(buf + len, pat + start, (k - start) * sizeof(*buf));
			chunks[nchunks++] = (struct chunk){ len, len + (k - start) };
			len += k - start;
			start = k + 1;
			k += 3;
		}
		if (start < j) {
			memcpy(buf + len, pat + start, (j - start) * sizeof(*buf));
			chunks[nchunks++] = (struct chunk){ len, len + (j - start) };
			len += j - start;
		} else {
			/* chunks[-1] += '-': buf has room, and that chunk ends the buffer */
			buf[len++] = '-';
			chunks[nchunks - 1].b++;
		}
		/* remove empty ranges: when chunks[k-1][-1] > chunks[k][0], the two
		 * chunks become chunks[k-1][:-1] + chunks[k][1:]. Chunks lie back to
		 * back in buf, so that is cutting the two range ends out of buf. */
		for (k = nchunks - 1; k > 0; k--) {
			struct chunk *a = &chunks[k - 1], *b = &chunks[k];
			size_t cut = a->b - 1;

			if (buf[cut] <= buf[b->a])
				continue;
			memmove(buf + cut, buf + cut + 2, (len - cut - 2) * sizeof(*buf));
			len -= 2;
			a->b = b->b - 2;
			for (c = k + 1; c < nchunks; c++) {
				chunks[c].a -= 2;
				chunks[c].b -= 2;
			}
			memmove(&chunks[k], &chunks[k + 1], (nchunks - k - 1) * sizeof(*chunks));
			nchunks--;
		}
	}

	/* stuff = '-'.join(chunks) */
	if (nchunks == 1 && chunks[0].a == chunks[0].b) {
		t->op = GLOB_NEVER;             /* empty range: never match */
		return;
	}
	if (nchunks == 1 && chunks[0].b - chunks[0].a == 1 && buf[chunks[0].a] == '!') {
		t->op = GLOB_ANY;               /* negated empty range: any character */
		return;
	}
	t->op = GLOB_SET;
	t->first = (uint32_t)g->nranges;
	t->negate = chunks[0].a < chunks[0].b && buf[chunks[0].a] == '!';
	if (t->negate)
		chunks[0].a++;
	/* read the set: each chunk's code points are literals, except that the
	 * last one of a chunk and the first one of the next form a range */
	for (c = 0; c < nchunks; c++) {
		size_t a = chunks[c].a, b = chunks[c].b;

		if (c > 0) {
			if (chunks[c - 1].a < chunks[c - 1].b) {
				g->ranges[g->nranges - 1].hi = buf[a];
				a++;
			} else {
				/* nothing before the '-' (cannot follow from translate,
				 * kept for safety): sre reads it as a literal '-' */
				g->ranges[g->nranges++] = (struct glob_range){ '-', '-' };
			}
		}
		for (k = a; k < b; k++)
			g->ranges[g->nranges++] = (struct glob_range){ buf[k], buf[k] };
	}
	t->n = (uint32_t)(g->nranges - t->first);
}

/* fnmatch.translate(pat) as tokens. NULL on allocation failure. */
static struct tm_glob *glob_compile(const char *pattern, size_t len)
{
	struct tm_glob *g = calloc(1, sizeof(*g));
	size_t n = 0, i = 0;
	uint32_t *pat = decode_all(pattern, len, &n);
	uint32_t *buf = malloc((n + 1) * sizeof(*buf));
	struct chunk *chunks = malloc((n + 1) * sizeof(*chunks));

	if (!g || !pat || !buf || !chunks)
		goto fail;
	g->toks = malloc((n + 1) * sizeof(*g->toks));
	g->ranges = malloc((n + 1) * sizeof(*g->ranges));
	if (!g->toks || !g->ranges)
		goto fail;
	while (i < n) {
		uint32_t c = pat[i++];
		size_t j;

		if (c == '*') {
			if (!g->ntoks || g->toks[g->ntoks - 1].op != GLOB_STAR)
				g->toks[g->ntoks++] = (struct glob_tok){ .op = GLOB_STAR };
			continue;
		}
		if (c == '?') {
			g->toks[g->ntoks++] = (struct glob_tok){ .op = GLOB_ANY };
			continue;
		}
		if (c != '[') {
			g->toks[g->ntoks++] = (struct glob_tok){ .op = GLOB_CHAR, .cp = c };
			continue;
		}
		j = i;
		if (j < n && pat[j] == '!')
			j++;
		if (j < n && pat[j] == ']')
			j++;
		while (j < n && pat[j] != ']')
			j++;
		if (j >= n) {
			g->toks[g->ntoks++] = (struct glob_tok){ .op = GLOB_CHAR, .cp = '[' };
			continue;
		}
		compile_class(g, pat, i, j, buf, chunks);
		i = j + 1;
	}
	free(pat);
	free(buf);
	free(chunks);
	return g;
fail:
	free(pat);
	free(buf);
	free(chunks);
	glob_free(g);
	return NULL;
}

static bool tok_match(const struct tm_glob *g, const struct glob_tok *t, uint32_t cp)
{
	const struct glob_range *r;
	uint32_t k;

	switch (t->op) {
	case GLOB_CHAR:
		return cp == t->cp;
	case GLOB_ANY:
		return true;
	case GLOB_SET:
		r = g->ranges + t->first;
		for (k = 0; k < t->n; k++)
			if (cp >= r[k].lo && cp <= r[k].hi)
				return !t->negate;
		return t->negate;
	case GLOB_NEVER:
	case GLOB_STAR:
		break;
	}
	return false;
}

static bool run_match(const struct tm_glob *g, const struct glob_tok *t, size_t nt,
		      const uint32_t *name, size_t at)
{
	size_t k;

	for (k = 0; k < nt; k++)
		if (!tok_match(g, &t[k], name[at + k]))
			return false;
	return true;
}

/* re.match(translate(pat), name) on code points. */
static bool glob_match(const struct tm_glob *g, const uint32_t *name, size_t n)
{
	const struct glob_tok *t = g->toks, *end = g->toks + g->ntoks;
	size_t pos = 0;

	/* fixed prefix */
	for (; t < end && t->op != GLOB_STAR; t++, pos++)
		if (pos >= n || !tok_match(g, t, name[pos]))
			return false;
	if (t == end)
		return pos == n;
	while (t < end) {
		const struct glob_tok *fixed = ++t;     /* skip the STAR */
		size_t len = 0, p;

		while (t < end && t->op != GLOB_STAR) {
			t++;
			len++;
		}
		if (t == end) {
			/* ".*" LAST "\Z": the last run ends the name */
			return n - pos >= len && run_match(g, fixed, len, name, n - len);
		}
		/* "(?>.*?FIXED)": the earliest place, no backtracking into it */
		for (p = pos; p + len <= n; p++)
			if (run_match(g, fixed, len, name, p))
				break;
		if (p + len > n)
			return false;
		pos = p + len;
	}
	return true;
}

bool tm_fnmatch(const char *pattern, size_t plen, const char *name, size_t nlen)
{
	struct tm_glob *g = glob_compile(pattern, plen);
	uint32_t *cps;
	size_t n;
	bool r = false;

	if (!g)
		return false;
	cps = decode_all(name, nlen, &n);
	if (cps)
		r = glob_match(g, cps, n);
	free(cps);
	glob_free(g);
	return r;
}

/* ---- filters ------------------------------------------------------------- */

/* _normalize_filename(): os.path.normcase() is the identity on POSIX, then a
 * ".pyc" suffix loses its 'c'. */
static size_t normalized_len(const char *s, size_t len)
{
	return len >= 4 && memcmp(s + len - 4, ".pyc", 4) == 0 ? len - 1 : len;
}

int tm_filter_init(struct tm_filter *f, bool inclusive, const char *pattern, size_t len,
		   int64_t lineno, bool all_frames, int64_t domain, struct tm_error *err)
{
	memset(f, 0, sizeof(*f));
	if (lineno > (int64_t)UINT32_MAX) {
		tm_error_set(err, "filter line number %lld is out of range",
			     (long long)lineno);
		return -1;
	}
	if (domain > (int64_t)UINT32_MAX) {
		tm_error_set(err, "filter domain %lld is out of range", (long long)domain);
		return -1;
	}
	f->kind = TM_FILTER_FILENAME;
	f->inclusive = inclusive;
	f->pattern_len = normalized_len(pattern, len);
	f->pattern = malloc(f->pattern_len + 1);
	if (!f->pattern)
		goto oom;
	memcpy(f->pattern, pattern, f->pattern_len);
	f->pattern[f->pattern_len] = '\0';
	f->has_lineno = lineno >= 0;
	f->lineno = lineno >= 0 ? (uint32_t)lineno : 0;
	f->all_frames = all_frames;
	f->has_domain = domain >= 0;
	f->domain = domain >= 0 ? (uint32_t)domain : 0;
	f->glob = glob_compile(f->pattern, f->pattern_len);
	if (!f->glob)
		goto oom;
	return 0;
oom:
	tm_filter_destroy(f);
	tm_error_set(err, "out of memory for a filter");
	return -1;
}

int tm_domain_filter_init(struct tm_filter *f, bool inclusive, uint32_t domain)
{
	memset(f, 0, sizeof(*f));
	f->kind = TM_FILTER_DOMAIN;
	f->inclusive = inclusive;
	f->has_domain = true;
	f->domain = domain;
	return 0;
}

void tm_filter_destroy(struct tm_filter *f)
{
	free(f->pattern);
	glob_free(f->glob);
	memset(f, 0, sizeof(*f));
}

/* fnmatch(normalize(filename), pattern); -1 on allocation failure */
static int filename_match(const struct tm_filter *f, const char *name, size_t len)
{
	size_t n;
	uint32_t *cps = decode_all(name, normalized_len(name, len), &n);
	bool r;

	if (!cps)
		return -1;
	r = glob_match(f->glob, cps, n);
	free(cps);
	return r;
}

/* Filter._match_frame_impl() with the fnmatch result given */
static bool frame_impl(const struct tm_filter *f, bool name_matches, uint32_t lineno)
{
	return name_matches && (!f->has_lineno || lineno == f->lineno);
}

bool tm_filter_match_frame(const struct tm_filter *f, const char *filename, size_t len,
			   uint32_t lineno)
{
	int m = filename_match(f, filename, len);

	/* _match_frame(): the frame test XOR (not inclusive) */
	return frame_impl(f, m > 0, lineno) ^ !f->inclusive;
}

/*
 * Per-snapshot state of one Filter during filter_traces(): the fnmatch result
 * per string id and _match_traceback() per traceback id, computed on first use
 * (-1 = not yet). A trace then costs an array lookup per filter.
 */
struct filter_memo {
	int8_t *by_string;
	int8_t *by_traceback;
};

static int memo_string(const struct tm_snapshot *s, const struct tm_filter *f,
		       struct filter_memo *m, tm_id str)
{
	if (m->by_string[str] < 0) {
		struct tm_str v = tm_string(s, str);
		int r = filename_match(f, v.data, v.len);

		if (r < 0)
			return -1;
		m->by_string[str] = (int8_t)r;
	}
	return m->by_string[str];
}

/* Filter._match_traceback(); -1 on allocation failure */
static int match_traceback(const struct tm_snapshot *s, const struct tm_filter *f,
			   struct filter_memo *m, tm_id tb)
{
	const struct tm_traceback *t = &s->tracebacks[tb];
	const tm_id *fids = tm_traceback_frames(s, tb);
	uint32_t i, nframe = f->all_frames ? t->nframe : 1;
	int any = 0;

	if (m && m->by_traceback[tb] >= 0)
		return m->by_traceback[tb];
	/* all_frames: any frame matches -> inclusive, else not inclusive;
	 * otherwise only frames[0], the MOST RECENT frame, XOR (not inclusive) --
	 * both reduce to (any matching frame among those tested) XOR (not inclusive) */
	for (i = 0; i < nframe && !any; i++) {
		const struct tm_frame *fr = &s->frames[fids[i]];
		int name;

		if (m) {
			name = memo_string(s, f, m, fr->filename);
		} else {
			struct tm_str v = tm_string(s, fr->filename);

			name = filename_match(f, v.data, v.len);
		}
		if (name < 0)
			return -1;
		any = frame_impl(f, name, fr->lineno);
	}
	any ^= !f->inclusive;
	if (m)
		m->by_traceback[tb] = (int8_t)any;
	return any;
}

bool tm_filter_match_traceback(const struct tm_filter *f, const struct tm_snapshot *s, tm_id tb)
{
	return match_traceback(s, f, NULL, tb) > 0;
}

/* BaseFilter._match(trace); -1 on allocation failure */
static int match_trace(const struct tm_snapshot *s, const struct tm_filter *f,
		       struct filter_memo *m, const struct tm_trace *t)
{
	int res;

	if (f->kind == TM_FILTER_DOMAIN)
		return (t->domain == f->domain) ^ !f->inclusive;
	res = match_traceback(s, f, m, t->traceback);
	if (res < 0 || !f->has_domain)
		return res;
	if (f->inclusive)
		return res && t->domain == f->domain;
	return res || t->domain != f->domain;
}

bool tm_filter_match_trace(const struct tm_filter *f, const struct tm_snapshot *s,
			   const struct tm_trace *t)
{
	return match_trace(s, f, NULL, t) > 0;
}

int tm_snapshot_filter_traces(struct tm_snapshot *s, const struct tm_filter *filters,
			      size_t nfilters, struct tm_error *err)
{
	struct filter_memo *memo;
	uint8_t *used = NULL;
	bool have_include = false;
	uint64_t i, kept = 0;
	uint32_t tb;
	size_t k;
	int ret = -1;

	if (nfilters == 0)
		return 0;               /* filter_traces([]) copies every trace */
	memo = calloc(nfilters, sizeof(*memo));
	if (!memo)
		goto oom;
	for (k = 0; k < nfilters; k++) {
		have_include |= filters[k].inclusive;
		if (filters[k].kind != TM_FILTER_FILENAME)
			continue;
		memo[k].by_string = malloc(s->nstrings ? s->nstrings : 1);
		memo[k].by_traceback = malloc(s->ntracebacks ? s->ntracebacks : 1);
		if (!memo[k].by_string || !memo[k].by_traceback)
			goto oom;
		memset(memo[k].by_string, -1, s->nstrings);
		memset(memo[k].by_traceback, -1, s->ntracebacks);
	}
	/* Evaluate the filters on every traceback in use first: the only step that
	 * allocates, so that a failure leaves the traces untouched, and the loop
	 * over the traces below only reads the results. */
	used = calloc(s->ntracebacks ? s->ntracebacks : 1, 1);
	if (!used)
		goto oom;
	for (i = 0; i < s->ntraces; i++)
		used[s->traces[i].traceback] = 1;
	for (tb = 0; tb < s->ntracebacks; tb++)
		for (k = 0; used[tb] && k < nfilters; k++)
			if (filters[k].kind == TM_FILTER_FILENAME &&
			    match_traceback(s, &filters[k], &memo[k], tb) < 0)
				goto oom;
	/* Snapshot._filter_trace(): any inclusive filter matches (when there is
	 * one), and every exclusive filter matches (= does not exclude) */
	for (i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];
		bool included = !have_include, excluded = false;

		for (k = 0; k < nfilters && !excluded; k++) {
			int r;

			if (filters[k].inclusive && included)
				continue;       /* any(): already decided */
			r = match_trace(s, &filters[k], &memo[k], t);  /* memoised: >= 0 */
			if (filters[k].inclusive)
				included = r;
			else
				excluded = !r;
		}
		if (included && !excluded) {
			if (s->trace_counts)
				s->trace_counts[kept] = s->trace_counts[i];
			s->traces[kept++] = *t;
		}
	}
	s->ntraces = kept;
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory while filtering traces");
out:
	for (k = 0; memo && k < nfilters; k++) {
		free(memo[k].by_string);
		free(memo[k].by_traceback);
	}
	free(memo);
	free(used);
	return ret;
}
