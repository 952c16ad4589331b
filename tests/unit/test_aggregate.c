// SPDX-License-Identifier: MIT
/*
 * Aggregated loading (TM_LOAD_AGGREGATE, TM_LOAD_NO_DOMAINS) and the block
 * counts of the model (trace_counts): an aggregated load of any file --
 * CPython's own dumps of every version and protocol, our pickles and native
 * files, hostile and mutated files -- refuses what the full load refuses with
 * the same message, and otherwise keeps the same tables and the same sums
 * per (traceback, domain), so that statistics(), compare_to() and
 * filter_traces() (with domain filters too) give the same results; streamed
 * loads (tiny windows, short reads, real files read with pread) keep the very
 * same traces. The model's counts are checked, counted by the reports, and
 * refused by the writers.
 */
#include <dirent.h>
#include <fcntl.h>

#include "files_util.h"
#include "output/flamegraph.h"
#include "output/report.h"
#include "snapshot/filter.h"

#define MKSNAP "tests/py/cli_mksnap.py"

/* ---- helpers -------------------------------------------------------------------------- */

/* A snapshot written by CPython's Snapshot.dump() (tests/py/cli_mksnap.py). */
static char *mksnap(const char *python, const char *dir, const char *name, const char *seed,
		    const char *traces, bool weird)
{
	const char *path = files_path(dir, name);
	const char *args[] = { path, "--seed", seed, "--pool-seed", "7", "--traces", traces,
			       "--tracebacks", "400", "--files", "30", "--lines", "12",
			       "--max-frames", "6", weird ? "--weird" : NULL, NULL };

	free(files_run_python(python, MKSNAP, args));
	return strdup(path);
}

static struct tm_snapshot *load_path(const char *path, unsigned flags)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load_opts(path, flags, &err);

	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s: %s", path, err.msg);
	return s;
}

static void assert_same_diffs(const struct tm_snapshot *new_a, const struct tm_snapshot *old_a,
			      const struct tm_snapshot *new_b, const struct tm_snapshot *old_b,
			      const char *what)
{
	for (size_t c = 0; c < FILES_NGROUPINGS; c++) {
		const struct files_grouping *g = &files_groupings[c];
		struct tm_stats a, b;
		struct tm_error err = { "" };

		cr_assert_eq(tm_compare_to(new_a, old_a, g->k, g->cumulative, &a, &err), 0, "%s",
			     err.msg);
		cr_assert_eq(tm_compare_to(new_b, old_b, g->k, g->cumulative, &b, &err), 0, "%s",
			     err.msg);
		cr_assert_eq(a.n, b.n, "%s: %zu vs %zu diffs", what, a.n, b.n);
		for (size_t i = 0; i < a.n; i++) {
			const struct tm_statistic_diff *x = &a.diffs[i], *y = &b.diffs[i];

			cr_assert(x->size == y->size && x->size_diff == y->size_diff &&
					  x->count == y->count && x->count_diff == y->count_diff &&
					  x->nframe == y->nframe,
				  "%s: diff %zu (%s%s) differs", what, i, tm_key_type_name(g->k),
				  g->cumulative ? ", cumulative" : "");
			files_assert_same_frames(x->frames, y->frames, x->nframe, what, i);
		}
		tm_stats_free(&a);
		tm_stats_free(&b);
	}
}

/* ---- every seed of the fuzzers ------------------------------------------------------ */

/* The fuzzers' seeds: Snapshot.dump() of every CPython 3.8-3.13, every pickle
 * protocol, memo-less pickles, empty snapshots, our native files. */
static void check_corpus(const char *corpus, files_input_loader load)
{
	DIR *d = opendir(corpus);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "%s: %s", corpus, strerror(errno));
	while ((e = readdir(d))) {
		char path[4096];
		size_t len;
		char *data;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", corpus, e->d_name);
		data = files_read(path, &len);
		files_check_ways_with(load, data, len, true, path);
		files_check_ways(data, len, false, path);
		free(data);
		n++;
	}
	closedir(d);
	cr_assert_gt(n, 5, "%s: only %d seeds", corpus, n);
}

Test(aggregate, every_pickle_seed_loads_the_same_every_way, .timeout = 120)
{
	check_corpus("tests/fuzz/corpus/fuzz_pickle", tm_pickle_load_input);
}

Test(aggregate, every_native_seed_loads_the_same_every_way, .timeout = 120)
{
	check_corpus("tests/fuzz/corpus/fuzz_native", tm_native_load_input);
}

/* ---- CPython's dumps: statistics, compare_to, filters ---------------------------------- */

static const char *const patterns[] = {
	"*", "lib/*", "*.py", "*pkg*", "*/mod1*", "lib/caf\xc3\xa9/*", "*undecodable*",
	"*compiled.py", "<*>", "*[0-4].py",
};

/* A set of filters of every kind, from case number k. */
static size_t make_filters(struct tm_filter *f, unsigned k, bool domains)
{
	struct tm_error err = { "" };
	size_t n = 0, npat = sizeof(patterns) / sizeof(patterns[0]);
	const char *p1 = patterns[k % npat], *p2 = patterns[(k / 3 + 1) % npat];

	cr_assert_eq(tm_filter_init(&f[n++], k % 2, p1, strlen(p1), k % 5 == 0 ? 3 : -1,
				    k % 4 == 1, domains && k % 3 == 0 ? 0 : -1, &err), 0, "%s",
		     err.msg);
	if (k % 2)
		cr_assert_eq(tm_filter_init(&f[n++], false, p2, strlen(p2), -1, k % 7 == 2,
					    domains && k % 4 == 3 ? 389047 : -1, &err), 0, "%s",
			     err.msg);
	if (domains && k % 3 != 1)
		cr_assert_eq(tm_domain_filter_init(&f[n++], k % 2 == 0, k % 5 == 4 ? 1 : 0), 0);
	return n;
}

static void check_filters(const struct tm_snapshot *full_src, const char *agg_data,
			  size_t agg_len, unsigned flags, const char *what)
{
	for (unsigned k = 0; k < 24; k++) {
		struct tm_filter f[3];
		struct tm_error err = { "" };
		struct tm_snapshot *full, *agg;
		size_t n = make_filters(f, k, !(flags & TM_LOAD_NO_DOMAINS));
		char why[512], name[256];

		full = tm_snapshot_load_mem(agg_data, agg_len, &err);
		agg = tm_snapshot_load_mem_opts(agg_data, agg_len, flags, &err);
		cr_assert(full && agg, "%s", err.msg);
		cr_assert_eq(tm_snapshot_filter_traces(full, f, n, &err), 0, "%s", err.msg);
		cr_assert_eq(tm_snapshot_filter_traces(agg, f, n, &err), 0, "%s", err.msg);
		snprintf(name, sizeof(name), "%s, filters %u", what, k);
		cr_assert_eq(tm_snapshot_validate(agg, &err), 0, "%s: %s", name, err.msg);
		cr_assert(tm_snapshot_same_sums(full, agg, flags & TM_LOAD_NO_DOMAINS, why,
						sizeof(why)), "%s: %s", name, why);
		files_assert_same_stats(full, agg, name);
		for (size_t i = 0; i < n; i++)
			tm_filter_destroy(&f[i]);
		tm_snapshot_free(full);
		tm_snapshot_free(agg);
	}
	(void)full_src;
}

static void check_dumps(const char *python_name, size_t which)
{
	char pybuf[4096], *dir = analysis_tmpdir();
	const char *python = files_python_path(&files_pythons[which], pybuf, sizeof(pybuf));
	char *paths[4];
	struct tm_snapshot *full[4], *agg[4], *nod[4];

	(void)python_name;
	if (!python) {
		analysis_rmtree(dir);
		return;
	}
	/* two pairs of "old" and "new" snapshots over one pool of frames; the
	 * second pair with hostile names and more traces than a window holds */
	paths[0] = mksnap(python, dir, "old.pickle", "1", "3000", false);
	paths[1] = mksnap(python, dir, "new.pickle", "2", "3000", false);
	paths[2] = mksnap(python, dir, "old-weird.pickle", "3", "30000", true);
	paths[3] = mksnap(python, dir, "new-weird.pickle", "4", "30000", true);
	for (int i = 0; i < 4; i++) {
		size_t len, nlen;
		char *data = files_read(paths[i], &len), *native;
		char what[256];

		snprintf(what, sizeof(what), "CPython %s %s", files_pythons[which].name,
			 strrchr(paths[i], '/') + 1);
		files_check_ways(data, len, true, what);
		/* the real file, read with pread through the default window */
		full[i] = load_path(paths[i], 0);
		agg[i] = load_path(paths[i], TM_LOAD_AGGREGATE);
		nod[i] = load_path(paths[i], TM_LOAD_NO_DOMAINS);
		files_assert_same_stats(full[i], agg[i], what);
		files_assert_same_stats(full[i], nod[i], what);
		check_filters(full[i], data, len, TM_LOAD_AGGREGATE, what);
		check_filters(full[i], data, len, TM_LOAD_NO_DOMAINS, what);
		/* the same snapshot as a native file */
		native = files_native_bytes(full[i], &nlen);
		strcat(what, " as native");
		files_check_ways(native, nlen, true, what);
		check_filters(full[i], native, nlen, TM_LOAD_AGGREGATE, what);
		free(native);
		free(data);
	}
	for (int i = 0; i < 4; i += 2) {
		assert_same_diffs(full[i + 1], full[i], agg[i + 1], agg[i], "compare_to, aggregated");
		assert_same_diffs(full[i + 1], full[i], nod[i + 1], nod[i],
				  "compare_to, without domains");
		assert_same_diffs(full[i + 1], full[i], agg[i + 1], full[i],
				  "compare_to, aggregated with full");
	}
	for (int i = 0; i < 4; i++) {
		tm_snapshot_free(full[i]);
		tm_snapshot_free(agg[i]);
		tm_snapshot_free(nod[i]);
		free(paths[i]);
	}
	analysis_rmtree(dir);
}

Test(aggregate, cpython_3_8_dumps, .timeout = 240) { check_dumps("3.8", 0); }
Test(aggregate, cpython_3_13_dumps, .timeout = 240) { check_dumps("3.13", 5); }
Test(aggregate, debian_python3_dumps, .timeout = 240) { check_dumps("3.11", FILES_DEBIAN_PYTHON); }

/* ---- valid pickles that dump() does not write ------------------------------------------ */

/* tests/py/files_odd_pickles.py: another list of traces before the
 * snapshot's, trace tuples appended several times, a traceback in several
 * frames tuples, many domains and total_nframe values per traceback, sizes
 * past the memo placeholders, every protocol; with 3.8's 3-tuples too. */
static void check_odd_pickles(size_t which)
{
	char pybuf[4096], *dir = analysis_tmpdir();
	const char *python = files_python_path(&files_pythons[which], pybuf, sizeof(pybuf));
	const char *args[] = { dir, NULL };
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (!python) {
		analysis_rmtree(dir);
		return;
	}
	free(files_run_python(python, "tests/py/files_odd_pickles.py", args));
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char *data;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		data = files_read(files_path(dir, e->d_name), &len);
		files_check_ways_with(tm_pickle_load_input, data, len, true, e->d_name);
		{
			struct tm_error err = { "" };
			struct tm_snapshot *s = tm_pickle_load_mem(data, len, &err);

			cr_assert_not_null(s, "%s: %s", e->d_name, err.msg);     /* all valid */
			tm_snapshot_free(s);
		}
		free(data);
		n++;
	}
	closedir(d);
	cr_assert_eq(n, 30, "%d pickles", n);
	analysis_rmtree(dir);
}

Test(aggregate, odd_but_valid_pickles) { check_odd_pickles(FILES_DEBIAN_PYTHON); }
Test(aggregate, odd_but_valid_pickles_of_3_8) { check_odd_pickles(0); }

/* ---- mutated files ------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Random damage to valid files (bytes changed, cut, duplicated, zeroed):
 * every way of loading agrees on each, refusal message included. */
static void mutate_and_check(const char *path, files_input_loader load, int rounds)
{
	size_t len;
	char *good = files_read(path, &len), *b = malloc(len + 64);

	cr_assert_not_null(b);
	for (int r = 0; r < rounds; r++) {
		size_t n = len, k, edits = 1 + next_rand() % 4;
		char what[4200];

		memcpy(b, good, len);
		for (k = 0; k < edits && n; k++) {
			size_t at = next_rand() % n;

			switch (next_rand() % 4) {
			case 0:
				b[at] = (char)next_rand();
				break;
			case 1:
				b[at] ^= (char)(1u << (next_rand() % 8));
				break;
			case 2:
				n = at + 1;     /* cut */
				break;
			default: {
				size_t run = 1 + next_rand() % 16;

				if (at + run > n)
					run = n - at;
				memset(b + at, next_rand() % 2 ? 0xff : 0, run);
			}
			}
		}
		snprintf(what, sizeof(what), "%s, mutation %d", path, r);
		files_check_ways_with(load, b, n, false, what);
	}
	free(b);
	free(good);
}

Test(aggregate, mutated_files_are_refused_or_loaded_alike, .timeout = 120)
{
	static const char *const pickles[] = {
		"tests/fuzz/corpus/fuzz_pickle/py311-real.pickle",
		"tests/fuzz/corpus/fuzz_pickle/py38-proto0.pickle",
		"tests/fuzz/corpus/fuzz_pickle/py313-proto5.pickle",
		"tests/fuzz/corpus/fuzz_pickle/py39-optimized.pickle",
	};
	DIR *d = opendir("tests/fuzz/corpus/fuzz_native");
	struct dirent *e;

	for (size_t i = 0; i < sizeof(pickles) / sizeof(pickles[0]); i++)
		mutate_and_check(pickles[i], tm_pickle_load_input, 600);
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_native/%s", e->d_name);
		mutate_and_check(path, tm_native_load_input, 300);
	}
	closedir(d);
}

/* ---- more domains than the loaders keep apart cheaply ------------------------------------ */

/* 40 domains on a few tracebacks, sizes past the pickle memo's 28 bits, and
 * traces of one traceback spread over many frames tuples: the native
 * loader's dense domains run out (8) and the pickle reader's per-tuple cache
 * (4 domains) rotates; the sums stay exact. */
Test(aggregate, many_domains_and_big_sizes)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_error err = { "" };
	char *pk = NULL, *nat;
	size_t pklen = 0, natlen;
	FILE *fp;
	tm_id f[3], tb[3];

	cr_assert_not_null(s);
	f[0] = tm_intern_frame(s, tm_intern_string(s, "a.py", 4), 1);
	f[1] = tm_intern_frame(s, tm_intern_string(s, "b.py", 4), 2);
	f[2] = tm_intern_frame(s, tm_intern_string(s, "c\xed\xb3\xbf.py", 7), 3);
	tb[0] = tm_intern_traceback(s, f, 1, 1);
	tb[1] = tm_intern_traceback(s, f, 3, 7);
	tb[2] = tm_intern_traceback(s, f + 1, 2, TM_TOTAL_NFRAME_NONE);
	for (uint32_t i = 0; i < 3000; i++) {
		uint64_t size = i % 5 == 0 ? ((uint64_t)1 << 28) + i : i % 7 == 0 ? (uint64_t)i << 33
								       : i;

		cr_assert_eq(tm_add_trace(s, (i * 7919u) % 40 == 39 ? UINT32_MAX : (i * 7919u) % 40,
					  size, tb[i % 3], 0x1000 + i), 0);
	}
	fp = open_memstream(&pk, &pklen);
	cr_assert_not_null(fp);
	cr_assert_eq(tm_pickle_write(s, fp, TM_PICKLE_PY39, &err), 0, "%s", err.msg);
	cr_assert_eq(fclose(fp), 0);
	nat = files_native_bytes(s, &natlen);
	files_check_ways(pk, pklen, true, "many domains, pickle");
	files_check_ways(nat, natlen, true, "many domains, native");
	check_filters(s, nat, natlen, TM_LOAD_AGGREGATE, "many domains, native");
	check_filters(s, pk, pklen, TM_LOAD_AGGREGATE, "many domains, pickle");
	free(pk);
	free(nat);
	tm_snapshot_free(s);
}

/* ---- the model's counts ---------------------------------------------------------------- */

static struct tm_snapshot *aggregated_pair(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id f, tb;

	cr_assert_not_null(s);
	f = tm_intern_frame(s, tm_intern_string(s, "a.py", 4), 1);
	tb = tm_intern_traceback(s, &f, 1, 1);
	cr_assert_eq(tm_add_trace(s, 0, 100, tb, 0), 0);
	cr_assert_eq(tm_add_trace(s, 1, 50, tb, 0), 0);
	s->trace_counts = malloc(s->traces_cap * sizeof(*s->trace_counts));
	cr_assert_not_null(s->trace_counts);
	s->trace_counts[0] = 4;
	s->trace_counts[1] = 1;
	return s;
}

Test(aggregate, counts_are_validated)
{
	struct tm_snapshot *s = aggregated_pair();
	struct tm_error err = { "" };

	cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s", err.msg);
	cr_assert_eq(tm_snapshot_block_count(s), 5);
	cr_assert_eq(tm_trace_count(s, 0), 4);
	s->trace_counts[1] = 0;
	cr_assert_eq(tm_snapshot_validate(s, &err), -1);
	cr_assert_str_eq(err.msg, "trace 1 stands for no block");
	s->trace_counts[1] = (uint64_t)INT64_MAX - 3;
	cr_assert_eq(tm_snapshot_validate(s, &err), -1);
	cr_assert_str_eq(err.msg, "the traces stand for more than 9223372036854775807 blocks");
	s->trace_counts[1] = (uint64_t)INT64_MAX - 4;
	cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s", err.msg);
	/* a trace added to an aggregated snapshot is one block, past the capacity */
	s->trace_counts[1] = 2;
	for (int i = 0; i < 40; i++)
		cr_assert_eq(tm_add_trace(s, 2, 1, 0, 0), 0);
	cr_assert_eq(s->ntraces, 42);
	cr_assert_eq(tm_snapshot_block_count(s), 46);
	cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s", err.msg);
	tm_snapshot_free(s);
}

Test(aggregate, writers_refuse_aggregated_snapshots)
{
	struct tm_snapshot *s = aggregated_pair();
	char *dir = analysis_tmpdir();
	struct tm_error err = { "" };
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	cr_assert_not_null(fp);
	cr_assert_eq(tm_native_write(s, fp, &err), -1);
	cr_assert(strstr(err.msg, "loaded aggregated") && strstr(err.msg, "cannot be written"),
		  "%s", err.msg);
	err.msg[0] = '\0';
	cr_assert_eq(tm_pickle_write(s, fp, TM_PICKLE_PY39, &err), -1);
	cr_assert(strstr(err.msg, "cannot be written"), "%s", err.msg);
	cr_assert_eq(tm_pickle_write(s, fp, TM_PICKLE_PY38, &err), -1);
	fclose(fp);
	cr_assert_eq(len, 0, "%zu bytes written", len);
	free(buf);
	/* and through the files: nothing left behind */
	cr_assert_eq(tm_snapshot_save_native(s, files_path(dir, "a.tmbpf"), &err), -1);
	cr_assert(strstr(err.msg, "a.tmbpf: the snapshot was loaded aggregated"), "%s", err.msg);
	cr_assert_eq(tm_snapshot_save_pickle(s, files_path(dir, "a.pickle"), TM_PICKLE_PY39, &err),
		     -1);
	cr_assert_neq(access(files_path(dir, "a.tmbpf"), F_OK), 0);
	cr_assert_neq(access(files_path(dir, "a.pickle"), F_OK), 0);
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}

/* filter_traces keeps each kept trace's count; the reports count blocks */
Test(aggregate, filters_and_reports_count_blocks)
{
	struct tm_snapshot *s = aggregated_pair();
	struct tm_error err = { "" };
	struct tm_filter f;
	struct fg_profile p;
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	cr_assert_eq(fg_profile_build(&p, s, &err), 0, "%s", err.msg);
	cr_assert_eq(p.total_count, 5);
	cr_assert_eq(p.total_size, 150);
	cr_assert_eq(p.nstacks, 1);
	cr_assert_eq(p.stacks[0].count, 5);
	fg_profile_destroy(&p);
	fp = open_memstream(&text, &len);
	cr_assert_not_null(fp);
	cr_assert_eq(report_snapshot_summary(fp, s, &err), 0, "%s", err.msg);
	fclose(fp);
	cr_assert(strstr(text, "traces: 5\n"), "%s", text);
	cr_assert(strstr(text, "  domain 0: 4 traces, 100 B"), "%s", text);
	cr_assert(strstr(text, "  domain 1: 1 traces, 50 B"), "%s", text);
	free(text);
	tm_domain_filter_init(&f, true, 1);
	cr_assert_eq(tm_snapshot_filter_traces(s, &f, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(s->ntraces, 1);
	cr_assert_eq(s->traces[0].size, 50);
	cr_assert_eq(s->trace_counts[0], 1);
	tm_filter_destroy(&f);
	tm_snapshot_free(s);
}

/* A file that is shorter than its size said when it was opened (cut by
 * someone else while being read) is refused, not read as truncated data. */
Test(aggregate, a_file_shortened_while_read_is_refused)
{
	char *dir = analysis_tmpdir();
	const char *path = files_path(dir, "cut.pickle");
	size_t len;
	char *data = files_read("tests/fuzz/corpus/fuzz_pickle/py311-real.pickle", &len);
	int fd;

	files_write(path, data, len);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	for (unsigned flags = 0; flags <= TM_LOAD_NO_DOMAINS; flags++) {
		struct tm_input in = { .fd = fd, .size = len + 100, .window = 64 };
		struct tm_error err = { "" };
		struct tm_snapshot *s = tm_snapshot_load_input(&in, flags, &err);

		cr_assert_null(s);
		cr_assert(strstr(err.msg, "cannot read: the file was shortened while being read"),
			  "%s", err.msg);
	}
	close(fd);
	free(data);
	analysis_rmtree(dir);
}
