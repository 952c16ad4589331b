/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the snapshot-file suites (test_native, test_pickle,
 * test_roundtrip): the CPython interpreters to check against, running the
 * tests/py/files_*.py oracles, and the "expected traces" text those oracles
 * print (see tests/py/files_dump.py), parsed into a snapshot without any of
 * the code under test.
 */
#ifndef TMBPF_TESTS_FILES_UTIL_H
#define TMBPF_TESTS_FILES_UTIL_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis_util.h"
#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"
#include "snapshot/stats.h"

/* Every CPython the snapshot files are checked against. */
struct files_python {
	const char *name;       /* for messages: "3.8" */
	const char *pyenv;      /* version directory under ~/.pyenv/versions, or NULL */
	const char *path;       /* absolute path when not a pyenv one */
	bool py38;              /* reads and writes 3-tuples */
};

static const struct files_python files_pythons[] = {
	{ "3.8", "3.8.18/bin/python3.8", NULL, true },
	{ "3.9", "3.9.18/bin/python3.9", NULL, false },
	{ "3.10", "3.10.13/bin/python3.10", NULL, false },
	{ "3.11", "3.11.7/bin/python3.11", NULL, false },
	{ "3.12", "3.12.1/bin/python3.12", NULL, false },
	{ "3.13", "3.13.0/bin/python3.13", NULL, false },
	{ "3.11 (Debian)", NULL, "/usr/bin/python3", false },
};
#define FILES_NPYTHONS (sizeof(files_pythons) / sizeof(files_pythons[0]))
#define FILES_DEBIAN_PYTHON (FILES_NPYTHONS - 1)

/* The interpreter's path in buf, or NULL after saying loudly that it is
 * missing (the caller then skips what needs it). pyenv's root is
 * $PYENV_ROOT, else ~/.pyenv. */
static inline const char *files_python_path(const struct files_python *py, char *buf,
					    size_t size)
{
	if (py->pyenv) {
		const char *root = getenv("PYENV_ROOT"), *home = getenv("HOME");

		if (root)
			snprintf(buf, size, "%s/versions/%s", root, py->pyenv);
		else
			snprintf(buf, size, "%s/.pyenv/versions/%s", home ? home : "/root",
				 py->pyenv);
	} else {
		snprintf(buf, size, "%s", py->path);
	}
	if (access(buf, X_OK) != 0) {
		cr_log_info("SKIPPED CPython %s: %s is missing (%s)", py->name, buf,
			    strerror(errno));
		fprintf(stderr, "SKIPPED CPython %s: %s is missing\n", py->name, buf);
		return NULL;
	}
	return buf;
}

/* Runs `python script args...`, asserts it succeeds; its stdout (caller frees). */
static inline char *files_run_python(const char *python, const char *script,
				     const char *const *args)
{
	char *argv[2100], *out;
	size_t n = 0, len;
	int status;

	argv[n++] = (char *)python;
	argv[n++] = (char *)script;
	for (; args && *args; args++) {
		cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	status = analysis_run(NULL, NULL, argv, &out, &len);
	cr_assert_eq(status, 0, "%s %s failed (status %d):\n%s", python, script, status,
		     out ? out : "");
	return out;
}

static inline char *files_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static inline void files_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static inline const char *files_path(const char *dir, const char *name)
{
	static char bufs[8][4096];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
	return p;
}

static inline int files_hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The expected-traces text (tests/py/files_dump.py) as a snapshot, built with
 * the model's interning only. "-" totals are TM_TOTAL_NFRAME_NONE.
 */
static inline struct tm_snapshot *files_parse_expected(const char *text)
{
	struct tm_snapshot *s = tm_snapshot_new();
	const char *p = text;
	uint64_t ntraces = 0, end = UINT64_MAX;

	cr_assert_not_null(s);
	while (*p) {
		const char *eol = strchr(p, '\n');
		unsigned long long domain, size, lineno, n;
		char total[32];
		int used = 0;

		cr_assert_not_null(eol, "unterminated line in expected text");
		if (sscanf(p, "limit %llu", &n) == 1) {
			s->traceback_limit = (uint32_t)n;
		} else if (sscanf(p, "trace %llu %llu %31s %llu", &domain, &size, total, &n) == 4) {
			tm_id frames[1024];

			cr_assert(n >= 1 && n <= 1024);
			for (unsigned long long k = 0; k < n; k++) {
				char name[4096];
				size_t len = 0;
				const char *q;

				p = eol + 1;
				eol = strchr(p, '\n');
				cr_assert(eol && sscanf(p, "frame %llu %n", &lineno, &used) == 1,
					  "bad frame line");
				for (q = p + used; q + 1 < eol; q += 2) {
					cr_assert_lt(len, sizeof(name));
					name[len++] = (char)(files_hexval(q[0]) << 4 | files_hexval(q[1]));
				}
				frames[k] = tm_intern_frame(s, tm_intern_string(s, name, len),
							    (uint32_t)lineno);
				cr_assert_neq(frames[k], TM_ID_NONE);
			}
			tm_id tb = tm_intern_traceback(s, frames, (uint32_t)n,
						       strcmp(total, "-") == 0
							       ? TM_TOTAL_NFRAME_NONE
							       : (uint32_t)strtoull(total, NULL, 10));
			cr_assert_neq(tb, TM_ID_NONE);
			cr_assert_eq(tm_add_trace(s, (uint32_t)domain, size, tb, 0), 0);
			ntraces++;
		} else if (sscanf(p, "end %llu", &n) == 1) {
			end = n;
		} else {
			cr_assert_fail("bad expected line: %.*s", (int)(eol - p), p);
		}
		p = eol + 1;
	}
	cr_assert_eq(end, ntraces, "expected text is cut short");
	return s;
}

/* The same text for a snapshot (what tmbpf means to write, for
 * tests/py/files_check.py). */
static inline void files_write_expected(const struct tm_snapshot *s, const char *path)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "limit %u\n", s->traceback_limit);
	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];
		const struct tm_traceback *tb = &s->tracebacks[t->traceback];

		fprintf(f, "trace %u %" PRIu64, t->domain, t->size);
		if (tb->total_nframe == TM_TOTAL_NFRAME_NONE)
			fprintf(f, " - %u\n", tb->nframe);
		else
			fprintf(f, " %u %u\n", tb->total_nframe, tb->nframe);
		for (uint32_t k = 0; k < tb->nframe; k++) {
			const struct tm_frame *fr = &s->frames[tm_traceback_frames(s, t->traceback)[k]];
			struct tm_str name = tm_string(s, fr->filename);

			fprintf(f, "frame %u ", fr->lineno);
			for (uint32_t c = 0; c < name.len; c++)
				fprintf(f, "%02x", (unsigned char)name.data[c]);
			fputc('\n', f);
		}
	}
	fprintf(f, "end %" PRIu64 "\n", s->ntraces);
	cr_assert_eq(fclose(f), 0);
}

static inline void files_assert_same(const struct tm_snapshot *got, const struct tm_snapshot *want,
				     const char *what)
{
	char why[512];

	cr_assert(tm_snapshot_same_traces(got, want, false, false, why, sizeof(why)), "%s: %s",
		  what, why);
}

/* Loads path, asserting success. */
static inline struct tm_snapshot *files_load(const char *path)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load(path, &err);

	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s: %s", path, err.msg);
	return s;
}

/* tm_*_load_mem(data) must fail with an error containing `want`. */
static inline void files_expect_error(struct tm_snapshot *(*load)(const void *, size_t,
								   struct tm_error *),
				      const void *data, size_t len, const char *want,
				      const char *what)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = load(data, len, &err);

	if (s)
		tm_snapshot_free(s);
	cr_assert_null(s, "%s: loaded, expected an error with '%s'", what, want);
	cr_assert(strstr(err.msg, want), "%s: error '%s' does not say '%s'", what, err.msg, want);
	cr_assert_null(strchr(err.msg, '\n'), "%s: error is not one line", what);
}

/* ---- every way of loading ------------------------------------------------------ */

/*
 * The ways to load a snapshot besides the full load in place: aggregated
 * (with and without domains) and streamed through a tiny window with short
 * reads (so that every item crosses window boundaries), each of which must
 * refuse exactly what the full load refuses, with the same message, and keep
 * what it keeps (the traces themselves, or their sums).
 */
struct files_way {
	const char *name;
	unsigned flags;
	size_t window, max_read;
};

static const struct files_way files_ways[] = {
	{ "aggregated", TM_LOAD_AGGREGATE, 0, 0 },
	{ "aggregated without domains", TM_LOAD_NO_DOMAINS, 0, 0 },
	{ "streamed through 7 bytes", 0, 7, 3 },
	{ "aggregated, streamed through 7 bytes", TM_LOAD_AGGREGATE, 7, 3 },
	{ "aggregated without domains, streamed through 100 bytes", TM_LOAD_NO_DOMAINS, 100, 0 },
};
#define FILES_NWAYS (sizeof(files_ways) / sizeof(files_ways[0]))

/* A loader of inputs: tm_snapshot_load_input, or one format's. */
typedef struct tm_snapshot *(*files_input_loader)(const struct tm_input *in, unsigned flags,
						  struct tm_error *err);

static inline struct tm_snapshot *files_load_way(files_input_loader load,
						 const struct files_way *w, const void *data,
						 size_t len, struct tm_error *err)
{
	struct tm_input in = { .fd = -1, .mem = data, .size = len, .window = w->window,
			       .max_read = w->max_read };

	err->msg[0] = '\0';
	return load(&in, w->flags, err);
}

/* Every grouping statistics() and compare_to() accept. */
static const struct files_grouping {
	enum tm_key_type k;
	bool cumulative;
} files_groupings[] = {
	{ TM_KEY_LINENO, false }, { TM_KEY_FILENAME, false }, { TM_KEY_TRACEBACK, false },
	{ TM_KEY_LINENO, true }, { TM_KEY_FILENAME, true },
};
#define FILES_NGROUPINGS (sizeof(files_groupings) / sizeof(files_groupings[0]))

/* Entry i of two statistics (or diff) lists has the same frames. */
static inline void files_assert_same_frames(const struct tm_stat_frame *x,
					    const struct tm_stat_frame *y, uint32_t nframe,
					    const char *what, size_t i)
{
	for (uint32_t k = 0; k < nframe; k++)
		cr_assert(x[k].lineno == y[k].lineno && x[k].filename.len == y[k].filename.len &&
				  !memcmp(x[k].filename.data, y[k].filename.data, x[k].filename.len),
			  "%s: entry %zu frame %u differs", what, i, k);
}

/* The bytes of s in the native format (caller frees). */
static inline char *files_native_bytes(const struct tm_snapshot *s, size_t *len)
{
	struct tm_error err = { "" };
	char *buf = NULL;
	FILE *fp = open_memstream(&buf, len);

	cr_assert_not_null(fp);
	cr_assert_eq(tm_native_write(s, fp, &err), 0, "%s", err.msg);
	cr_assert_eq(fclose(fp), 0);
	return buf;
}

/* The statistics of a and b for every key type are the same, value by value. */
static inline void files_assert_same_stats(const struct tm_snapshot *a,
					   const struct tm_snapshot *b, const char *what)
{
	for (size_t c = 0; c < FILES_NGROUPINGS; c++) {
		const struct files_grouping *g = &files_groupings[c];
		struct tm_stats sa, sb;
		struct tm_error err = { "" };

		cr_assert_eq(tm_statistics(a, g->k, g->cumulative, &sa, &err), 0, "%s: %s", what,
			     err.msg);
		cr_assert_eq(tm_statistics(b, g->k, g->cumulative, &sb, &err), 0, "%s: %s", what,
			     err.msg);
		cr_assert_eq(sa.n, sb.n, "%s: %zu vs %zu statistics (%s%s)", what, sa.n, sb.n,
			     tm_key_type_name(g->k), g->cumulative ? ", cumulative" : "");
		for (size_t i = 0; i < sa.n; i++) {
			const struct tm_statistic *x = &sa.stats[i], *y = &sb.stats[i];

			cr_assert(x->size == y->size && x->count == y->count && x->nframe == y->nframe,
				  "%s: statistic %zu (%s%s): %" PRIu64 " B in %" PRIu64 " vs %" PRIu64
				  " B in %" PRIu64, what, i, tm_key_type_name(g->k),
				  g->cumulative ? ", cumulative" : "", x->size, x->count, y->size,
				  y->count);
			files_assert_same_frames(x->frames, y->frames, x->nframe, what, i);
		}
		tm_stats_free(&sa);
		tm_stats_free(&sb);
	}
}

/*
 * Loads data with `load` every way (files_ways) and checks each against the
 * full load in place: the same refusal with the same message, or the same
 * tables, capture, and traces (streamed) or sums per (traceback, domain)
 * (aggregated). with_stats: also compare the statistics (slower).
 */
static inline void files_check_ways_with(files_input_loader load, const void *data, size_t len,
					 bool with_stats, const char *what)
{
	static const struct files_way in_place = { "in place", 0, 0, 0 };
	struct tm_error err = { "" };
	struct tm_snapshot *full = files_load_way(load, &in_place, data, len, &err);
	char why[512];

	for (size_t w = 0; w < FILES_NWAYS; w++) {
		const struct files_way *way = &files_ways[w];
		struct tm_error werr;
		struct tm_snapshot *s = files_load_way(load, way, data, len, &werr);
		bool aggregated = way->flags & (TM_LOAD_AGGREGATE | TM_LOAD_NO_DOMAINS);

		if (!full) {
			cr_assert_null(s, "%s, %s: loaded what the full load refuses (%s)", what,
				       way->name, err.msg);
			cr_assert_str_eq(werr.msg, err.msg, "%s, %s: another error", what,
					 way->name);
			continue;
		}
		cr_assert_not_null(s, "%s, %s: refused what the full load loads: %s", what,
				   way->name, werr.msg);
		cr_assert_eq(tm_snapshot_validate(s, &werr), 0, "%s, %s: %s", what, way->name,
			     werr.msg);
		cr_assert(s->nstrings == full->nstrings && s->str_pool_len == full->str_pool_len &&
				  (!full->str_pool_len ||
				   !memcmp(s->str_pool, full->str_pool, full->str_pool_len)) &&
				  s->nframes == full->nframes && s->ntracebacks == full->ntracebacks &&
				  s->nframe_ids == full->nframe_ids &&
				  s->capture.ncounters == full->capture.ncounters &&
				  !memcmp(&s->capture, &full->capture,
					  offsetof(struct tm_capture, counters)),
			  "%s, %s: other tables or capture", what, way->name);
		if (!aggregated) {
			cr_assert_null(s->trace_counts, "%s, %s", what, way->name);
			cr_assert(tm_snapshot_same_traces(full, s, true, false, why, sizeof(why)),
				  "%s, %s: %s", what, way->name, why);
			tm_snapshot_free(s);
			continue;
		}
		cr_assert(s->ntraces == 0 || s->trace_counts, "%s, %s: no counts", what, way->name);
		cr_assert_eq(tm_snapshot_block_count(s), full->ntraces, "%s, %s: blocks", what,
			     way->name);
		cr_assert_eq(tm_snapshot_total_size(s), tm_snapshot_total_size(full), "%s, %s",
			     what, way->name);
		for (uint64_t i = 0; i < s->ntraces; i++) {
			cr_assert_eq(s->traces[i].address, 0, "%s, %s", what, way->name);
			if (way->flags & TM_LOAD_NO_DOMAINS)
				cr_assert_eq(s->traces[i].domain, 0, "%s, %s", what, way->name);
		}
		cr_assert(tm_snapshot_same_sums(full, s, way->flags & TM_LOAD_NO_DOMAINS, why,
						sizeof(why)),
			  "%s, %s: %s", what, way->name, why);
		if (with_stats)
			files_assert_same_stats(full, s, what);
		tm_snapshot_free(s);
	}
	tm_snapshot_free(full);
}

/* files_check_ways_with() through the format detection. */
static inline void files_check_ways(const void *data, size_t len, bool with_stats,
				    const char *what)
{
	files_check_ways_with(tm_snapshot_load_input, data, len, with_stats, what);
}

#endif
