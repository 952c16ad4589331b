// SPDX-License-Identifier: MIT
/*
 * Snapshot files end to end: the pickle writer checked by every CPython
 * present (tracemalloc.Snapshot.load() of what tmbpf writes holds exactly the
 * traces of the original, and statistics() agree: tests/py/files_check.py),
 * for snapshots CPython dumped and for snapshots built in C; pickle -> native
 * -> pickle; loading errors that name the path; atomic creation (no partial or
 * temporary file on any failure, modes as fopen() would give).
 */
#include <signal.h>
#include <sys/resource.h>

#include "files_util.h"

#define DUMP_SCRIPT "tests/py/files_dump.py"
#define CHECK_SCRIPT "tests/py/files_check.py"

static void save_pickle(const struct tm_snapshot *s, const char *path, enum tm_pickle_flavor fl)
{
	struct tm_error err = { "" };

	cr_assert_eq(tm_snapshot_save_pickle(s, path, fl, &err), 0, "%s", err.msg);
}

static void save_native(const struct tm_snapshot *s, const char *path)
{
	struct tm_error err = { "" };

	cr_assert_eq(tm_snapshot_save_native(s, path, &err), 0, "%s", err.msg);
}

/* A snapshot built in C with what a pickle can hold at its extremes:
 * NUL, non-ASCII and surrogate-escaped filenames, a filename longer than
 * 255 bytes, lines 0 and 2**32-1, domains up to 2**32-1, sizes past 2**32,
 * tracebacks without total_nframe, and enough traces, frames and tracebacks
 * for batches of APPENDS, memo indexes past 255 and several FRAMEs. */
static struct tm_snapshot *c_snapshot(uint64_t ntraces)
{
	static const struct { const char *s; size_t n; } names[] = {
		{ "/usr/lib/python3.11/json/decoder.py", 35 },
		{ "nul\0inside.py", 13 },
		{ "/srv/\xc3\xa9t\xc3\xa9/\xe4\xb8\xad\xf0\x9f\x98\x80.py", 21 },
		{ "b\xed\xb3\xbf\xed\xb2\x80.py", 10 },          /* \udcff\udc80: undecodable bytes */
		{ "", 0 },
		{ "<frozen importlib._bootstrap>", 29 },
	};
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id files[64], frames[700], tbs[300];
	char longname[400];
	uint64_t i;

	cr_assert_not_null(s);
	for (i = 0; i < 64; i++) {
		if (i < 6) {
			files[i] = tm_intern_string(s, names[i].s, names[i].n);
		} else if (i == 6) {
			memset(longname, 'L', sizeof(longname));
			files[i] = tm_intern_string(s, longname, sizeof(longname));
		} else {
			char n[64];

			files[i] = tm_intern_string(s, n, (size_t)snprintf(n, sizeof(n),
							   "/app/pkg%u/mod%u.py", (unsigned)(i % 5),
							   (unsigned)i));
		}
		cr_assert_neq(files[i], TM_ID_NONE);
	}
	for (i = 0; i < 700; i++) {
		uint32_t line = i == 0 ? 0 : i == 1 ? UINT32_MAX : (uint32_t)(1 + i * 7919 % 90000);

		frames[i] = tm_intern_frame(s, files[i % 64], line);
		cr_assert_neq(frames[i], TM_ID_NONE);
	}
	for (i = 0; i < 300; i++) {
		tm_id f[12];
		uint32_t n = 1 + (uint32_t)(i % 12), k;

		for (k = 0; k < n; k++)
			f[k] = frames[(i * 31 + k * 17) % 700];
		tbs[i] = tm_intern_traceback(s, f, n, i % 4 == 0 ? TM_TOTAL_NFRAME_NONE
								 : n + (uint32_t)(i % 3));
		cr_assert_neq(tbs[i], TM_ID_NONE);
	}
	for (i = 0; i < ntraces; i++) {
		static const uint32_t domains[] = { 0, 0, 0, TM_NUMPY_DOMAIN, UINT32_MAX, 1 };
		uint64_t size = i % 101 == 0 ? ((uint64_t)1 << 33) + i : 1 + i * 4099 % 70000;

		cr_assert_eq(tm_add_trace(s, domains[i % 6], size, tbs[(i * 7) % 300],
					  0x7f0000000000 + i * 64), 0);
	}
	s->traceback_limit = 12;
	return s;
}

/* ---- the writer, checked by each CPython ---------------------------------------------- */

static bool has_op(const char *ops, const char *op)
{
	size_t n = strlen(op);

	for (const char *p = ops; (p = strstr(p, op)); p += n)
		if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
			return true;
	return false;
}

static void check_writer(size_t which)
{
	const struct files_python *py = &files_pythons[which];
	enum tm_pickle_flavor fl = py->py38 ? TM_PICKLE_PY38 : TM_PICKLE_PY39;
	const char *flavour = py->py38 ? "38" : "39";
	char pybuf[4096], *dir, *out, *line;
	const char *python = files_python_path(py, pybuf, sizeof(pybuf));
	const char *args[256];
	size_t nargs = 0, ok = 0;

	if (!python)
		cr_skip_test("CPython %s is missing: the pickles tmbpf writes for it are not "
			     "checked", py->name);
	dir = analysis_tmpdir();
	args[nargs++] = flavour;

	/* 1. what this CPython dumped, read and written again by tmbpf, directly
	 * and through the native format */
	out = files_run_python(python, DUMP_SCRIPT, (const char *const[]){ dir, NULL });
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char name[128], path[4200];
		struct tm_snapshot *s, *nat;

		cr_assert_eq(sscanf(line, "case %127s", name), 1);
		snprintf(path, sizeof(path), "%s/%s.pickle", dir, name);
		s = files_load(path);
		snprintf(path, sizeof(path), "%s/ours-%s.pickle", dir, name);
		save_pickle(s, path, fl);
		args[nargs++] = strdup(path);
		snprintf(path, sizeof(path), "%s/%s.pickle", dir, name);
		args[nargs++] = strdup(path);

		snprintf(path, sizeof(path), "%s/%s.tmbpf", dir, name);
		save_native(s, path);
		nat = files_load(path);
		files_assert_same(nat, s, name);
		snprintf(path, sizeof(path), "%s/ours-native-%s.pickle", dir, name);
		save_pickle(nat, path, fl);
		args[nargs++] = strdup(path);
		snprintf(path, sizeof(path), "%s/%s.pickle", dir, name);
		args[nargs++] = strdup(path);
		tm_snapshot_free(nat);
		tm_snapshot_free(s);
	}
	free(out);

	/* 2. snapshots built in C (what tmbpf means to write: an expected file) */
	for (uint64_t n = 0; n < 4; n++) {
		static const uint64_t sizes[] = { 0, 1, 999, 2600 };
		struct tm_snapshot *s = c_snapshot(sizes[n]);
		char path[4200];

		snprintf(path, sizeof(path), "%s/c%" PRIu64 ".pickle", dir, sizes[n]);
		save_pickle(s, path, fl);
		args[nargs++] = strdup(path);
		snprintf(path, sizeof(path), "%s/c%" PRIu64 ".expected", dir, sizes[n]);
		files_write_expected(s, path);
		args[nargs++] = strdup(path);
		tm_snapshot_free(s);
	}
	args[nargs] = NULL;
	cr_assert_lt(nargs, sizeof(args) / sizeof(args[0]));

	out = files_run_python(python, CHECK_SCRIPT, args);
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long n;
		char path[4200], ops[1024];

		cr_assert_eq(sscanf(line, "OK %lu %4199s %1023s", &n, path, ops), 3,
			     "CPython %s: %s", py->name, line);
		/* our pickles use what a dump uses: batches, memo, frames */
		if (strstr(path, "/c2600.pickle")) {
			static const char *const need[] = { "APPENDS", "LONG_BINGET", "FRAME",
							    "MEMOIZE", "BINUNICODE", "LONG1" };

			cr_assert_eq(n, 2600);
			for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++)
				cr_assert(has_op(ops, need[k]), "no %s in %s", need[k], ops);
		}
		if (strstr(path, "/c1.pickle"))
			cr_assert(has_op(ops, "APPEND") && !has_op(ops, "APPENDS"), "%s", ops);
		ok++;
	}
	cr_assert_eq(ok, (nargs - 1) / 2, "CPython %s checked %zu of %zu pickles", py->name, ok,
		     (nargs - 1) / 2);
	cr_log_info("CPython %s loads all %zu pickles tmbpf wrote (flavour %s) with the "
		    "expected traces and statistics", py->name, ok, flavour);
	for (size_t i = 1; i < nargs; i++)
		free((char *)args[i]);
	free(out);
	analysis_rmtree(dir);
}

Test(roundtrip, cpython_3_8_loads_our_pickles, .timeout = 180) { check_writer(0); }
Test(roundtrip, cpython_3_9_loads_our_pickles, .timeout = 180) { check_writer(1); }
Test(roundtrip, cpython_3_10_loads_our_pickles, .timeout = 180) { check_writer(2); }
Test(roundtrip, cpython_3_11_loads_our_pickles, .timeout = 180) { check_writer(3); }
Test(roundtrip, cpython_3_12_loads_our_pickles, .timeout = 180) { check_writer(4); }
Test(roundtrip, cpython_3_13_loads_our_pickles, .timeout = 180) { check_writer(5); }
Test(roundtrip, debian_python3_loads_our_pickles, .timeout = 180) { check_writer(6); }

/* What each flavour writes, read back by tmbpf: 3.8's 3-tuples have no
 * total_nframe; 3.9's 4-tuples write nframe for a traceback without one. */
Test(roundtrip, flavours_and_missing_total_nframe)
{
	struct tm_snapshot *s = c_snapshot(300), *b38, *b39;
	char *dir = analysis_tmpdir();
	const char *p38 = files_path(dir, "a38.pickle"), *p39 = files_path(dir, "a39.pickle");
	char why[512];

	save_pickle(s, p38, TM_PICKLE_PY38);
	save_pickle(s, p39, TM_PICKLE_PY39);
	b38 = files_load(p38);
	b39 = files_load(p39);
	cr_assert(tm_snapshot_same_traces(s, b39, false, true, why, sizeof(why)), "%s", why);
	cr_assert_eq(b38->ntraces, 300);
	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_traceback *o = &s->tracebacks[s->traces[i].traceback];
		const struct tm_traceback *t38 = &b38->tracebacks[b38->traces[i].traceback];
		const struct tm_traceback *t39 = &b39->tracebacks[b39->traces[i].traceback];

		cr_assert_eq(t38->total_nframe, TM_TOTAL_NFRAME_NONE);
		cr_assert_eq(t38->nframe, o->nframe);
		cr_assert_eq(t39->total_nframe,
			     o->total_nframe == TM_TOTAL_NFRAME_NONE ? o->nframe : o->total_nframe);
		cr_assert_eq(b38->traces[i].size, s->traces[i].size);
		cr_assert_eq(b38->traces[i].address, 0, "pickles hold no address");
	}
	tm_snapshot_free(b38);
	tm_snapshot_free(b39);
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}

/* ---- loading errors name the file ------------------------------------------------- */

static void expect_load_error(const char *path, const char *want)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load(path, &err);
	char full[4300];

	tm_snapshot_free(s);
	cr_assert_null(s, "%s loaded", path);
	snprintf(full, sizeof(full), "%s: %s", path, want);
	cr_assert(strstr(err.msg, full) == err.msg, "got '%s', want '%s...'", err.msg, full);
	cr_assert_null(strchr(err.msg, '\n'));
}

Test(roundtrip, load_errors_name_the_path_and_the_reason)
{
	char *dir = analysis_tmpdir();
	struct tm_snapshot *s = c_snapshot(20);
	size_t len;
	char *data;

	files_write(files_path(dir, "empty"), "", 0);
	files_write(files_path(dir, "text.txt"), "hello, world\n", 13);
	cr_assert_eq(mkdir(files_path(dir, "sub"), 0755), 0);
	save_pickle(s, files_path(dir, "a.pickle"), TM_PICKLE_PY39);
	save_native(s, files_path(dir, "a.tmbpf"));

	expect_load_error(files_path(dir, "missing.pickle"),
			  "cannot open: No such file or directory");
	expect_load_error(files_path(dir, "sub"), "is a directory, not a snapshot file");
	expect_load_error(files_path(dir, "empty"), "empty file (not a snapshot)");
	expect_load_error(files_path(dir, "text.txt"),
			  "not a snapshot (neither a tmbpf native file nor a pickle)");
	data = files_read(files_path(dir, "a.pickle"), &len);
	/* (cut inside the last FRAME: the frame header says it) */
	files_write(files_path(dir, "cut.pickle"), data, len - 1);
	expect_load_error(files_path(dir, "cut.pickle"), "pickle opcode 0x95 (FRAME) at offset 2: "
			  "frame of");
	cr_assert_eq(data[2], '\x95');
	files_write(files_path(dir, "cut.pickle"), data, 2);
	expect_load_error(files_path(dir, "cut.pickle"), "pickle data ends at offset 2 without a "
			  "STOP opcode (truncated file?)");
	free(data);
	data = files_read(files_path(dir, "a.tmbpf"), &len);
	files_write(files_path(dir, "cut.tmbpf"), data, len - 8);
	expect_load_error(files_path(dir, "cut.tmbpf"), "truncated native snapshot");
	free(data);
	if (geteuid() != 0) {
		chmod(files_path(dir, "a.tmbpf"), 0);
		expect_load_error(files_path(dir, "a.tmbpf"), "cannot open: Permission denied");
	}
	/* through a pipe (not a regular file): read to the end all the same */
	{
		char cmd[4400];
		FILE *p;

		snprintf(cmd, sizeof(cmd), "cat '%s'", files_path(dir, "a.pickle"));
		p = popen(cmd, "r");
		cr_assert_not_null(p);
		char fdpath[64];

		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fileno(p));
		struct tm_snapshot *back = files_load(fdpath);

		char why[512];

		cr_assert(tm_snapshot_same_traces(s, back, false, true, why, sizeof(why)),
			  "through a pipe: %s", why);
		tm_snapshot_free(back);
		pclose(p);
	}
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}

/* ---- atomic creation -------------------------------------------------------------- */

static int count_entries(const char *dir)
{
	char *argv[] = { "/bin/sh", "-c", "ls -A \"$0\" | wc -l", (char *)dir, NULL }, *out;
	size_t len;
	int n;

	cr_assert_eq(analysis_run(NULL, NULL, argv, &out, &len), 0);
	n = atoi(out);
	free(out);
	return n;
}

Test(roundtrip, atomic_files_modes_and_replacement)
{
	char *dir = analysis_tmpdir();
	struct tm_snapshot *s = c_snapshot(50);
	const char *p = files_path(dir, "new.tmbpf"), *q = files_path(dir, "kept.pickle");
	struct stat st;
	mode_t old = umask(027);

	/* a new file: 0666 minus the umask, as fopen() would create it */
	save_native(s, p);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	save_pickle(s, q, TM_PICKLE_PY39);
	cr_assert_eq(stat(q, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640);
	umask(old);
	/* replacing keeps the existing file's mode */
	cr_assert_eq(chmod(p, 0604), 0);
	save_native(s, p);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0604, "mode %o", st.st_mode & 07777);
	cr_assert_eq(count_entries(dir), 2, "temporary files left behind");

	/* tm_atomic_* directly: nothing at the path until commit; abort leaves nothing */
	{
		struct tm_atomic_file af;
		struct tm_error err = { "" };
		const char *r = files_path(dir, "r.txt");

		cr_assert_eq(tm_atomic_open(&af, r, &err), 0, "%s", err.msg);
		fputs("partial", af.fp);
		cr_assert_neq(access(r, F_OK), 0);
		cr_assert_eq(count_entries(dir), 3);
		tm_atomic_abort(&af);
		cr_assert_eq(count_entries(dir), 2);
		cr_assert_eq(tm_atomic_open(&af, r, &err), 0, "%s", err.msg);
		fputs("complete", af.fp);
		cr_assert_eq(tm_atomic_commit(&af, &err), 0, "%s", err.msg);
		size_t len;
		char *got = files_read(r, &len);

		cr_assert_str_eq(got, "complete");
		free(got);
		cr_assert_eq(count_entries(dir), 3);
	}
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}

Test(roundtrip, failed_writes_leave_nothing_behind)
{
	char *dir = analysis_tmpdir();
	struct tm_snapshot *s = c_snapshot(3000);
	const char *kept = files_path(dir, "kept.tmbpf");
	struct tm_error err = { "" };
	size_t before_len, after_len;
	char *before, *after;

	save_native(s, kept);
	before = files_read(kept, &before_len);
	cr_assert_eq(mkdir(files_path(dir, "sub"), 0755), 0);

	/* no such directory */
	cr_assert_eq(tm_snapshot_save_native(s, files_path(dir, "nodir/x.tmbpf"), &err), -1);
	cr_assert(strstr(err.msg, "nodir/x.tmbpf: cannot create a temporary file next to it: "
			 "No such file or directory"), "%s", err.msg);
	/* over a directory */
	cr_assert_eq(tm_snapshot_save_pickle(s, files_path(dir, "sub"), TM_PICKLE_PY39, &err), -1);
	cr_assert(strstr(err.msg, "sub: cannot replace: Is a directory"), "%s", err.msg);
	cr_assert_eq(tm_snapshot_save_native(s, files_path(dir, "sub/"), &err), -1);
	cr_assert(strstr(err.msg, "sub/: is a directory, not a file name"), "%s", err.msg);

	/* a filename Python could not decode: refused, the old file stays */
	{
		struct tm_snapshot *bad = c_snapshot(10);
		tm_id name = tm_intern_string(bad, "a\xff.py", 5);
		tm_id f = tm_intern_frame(bad, name, 1);
		char want[128];

		cr_assert_eq(tm_add_trace(bad, 0, 1, tm_intern_traceback(bad, &f, 1, 1), 0), 0);
		cr_assert_eq(tm_snapshot_save_pickle(bad, kept, TM_PICKLE_PY39, &err), -1);
		snprintf(want, sizeof(want), "kept.tmbpf: filename %u is not valid UTF-8 (byte 0xff "
			 "at 1): Python could not load it", name);
		cr_assert(strstr(err.msg, want), "%s", err.msg);
		tm_snapshot_free(bad);
	}

	/* the disk fills up while writing (a file size limit: EFBIG) */
	{
		struct rlimit lim, small;

		cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
		small = (struct rlimit){ 8192, lim.rlim_max };  /* the soft limit only */
		signal(SIGXFSZ, SIG_IGN);
		cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
		int rn = tm_snapshot_save_native(s, kept, &err);
		struct tm_error err2 = { "" };
		int rp = tm_snapshot_save_pickle(s, kept, TM_PICKLE_PY39, &err2);

		cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
		cr_assert_eq(rn, -1);
		cr_assert(strstr(err.msg, "kept.tmbpf: "), "%s", err.msg);
		cr_assert(strstr(err.msg, "cannot write: File too large"), "%s", err.msg);
		cr_assert_eq(rp, -1);
		cr_assert(strstr(err2.msg, "kept.tmbpf: cannot write: File too large"), "%s",
			  err2.msg);
	}
	after = files_read(kept, &after_len);
	cr_assert(after_len == before_len && !memcmp(before, after, after_len),
		  "a failed write changed the existing file");
	cr_assert_eq(count_entries(dir), 2, "something was left behind");
	free(before);
	free(after);
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}
