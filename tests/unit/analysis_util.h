/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the analysis suites (test_model, test_stats, test_filter,
 * test_format, test_property): build snapshots the way CPython's tests write
 * raw trace tuples, and capture printed output.
 */
#ifndef TMBPF_TESTS_ANALYSIS_UTIL_H
#define TMBPF_TESTS_ANALYSIS_UTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

/* Traceback from (filename, lineno) pairs, MOST RECENT FIRST like the raw
 * tuples of _tracemalloc._get_traces(): tb(s, 3, 2, "a.py", 2, "b.py", 4). */
static inline tm_id analysis_tb(struct tm_snapshot *s, uint32_t total_nframe, int n, ...)
{
	tm_id frames[64];
	va_list ap;
	int i;

	cr_assert(n > 0 && n <= 64);
	va_start(ap, n);
	for (i = 0; i < n; i++) {
		const char *f = va_arg(ap, const char *);
		unsigned lineno = va_arg(ap, unsigned);
		tm_id fid = tm_intern_string(s, f, strlen(f));

		cr_assert_neq(fid, TM_ID_NONE);
		frames[i] = tm_intern_frame(s, fid, lineno);
		cr_assert_neq(frames[i], TM_ID_NONE);
	}
	va_end(ap);
	tm_id id = tm_intern_traceback(s, frames, (uint32_t)n, total_nframe);
	cr_assert_neq(id, TM_ID_NONE);
	return id;
}

static inline void analysis_add(struct tm_snapshot *s, uint32_t domain, uint64_t size, tm_id tb)
{
	cr_assert_eq(tm_add_trace(s, domain, size, tb, 0), 0);
}

/*
 * CPython's Lib/test/test_tracemalloc.py create_snapshots(), trace for trace
 * (traceback_limit = 2). Raw traces are (domain, size, frames, total_nframe).
 */
static inline void analysis_create_snapshots(struct tm_snapshot **s1, struct tm_snapshot **s2)
{
	struct tm_snapshot *a = tm_snapshot_new(), *b = tm_snapshot_new();
	tm_id t;

	cr_assert(a && b);
	a->traceback_limit = 2;
	t = analysis_tb(a, 3, 2, "a.py", 2u, "b.py", 4u);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 0, 10, t);
	analysis_add(a, 1, 2, analysis_tb(a, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(a, 2, 66, analysis_tb(a, 1, 1, "b.py", 1u));
	analysis_add(a, 3, 7, analysis_tb(a, 1, 1, "<unknown>", 0u));

	b->traceback_limit = 2;
	t = analysis_tb(b, 3, 2, "a.py", 2u, "b.py", 4u);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 0, 10, t);
	analysis_add(b, 2, 2, analysis_tb(b, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(b, 2, 5000, analysis_tb(b, 3, 2, "a.py", 5u, "b.py", 4u));
	analysis_add(b, 4, 400, analysis_tb(b, 1, 1, "c.py", 578u));
	*s1 = a;
	*s2 = b;
}

/* Collects what a printing function writes, as one NUL-terminated string. */
struct analysis_capture {
	FILE *fp;
	char *buf;
	size_t len;
};

static inline FILE *analysis_capture_begin(struct analysis_capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->buf, &c->len);
	cr_assert_not_null(c->fp);
	return c->fp;
}

/* Returns the text (caller frees). */
static inline char *analysis_capture_end(struct analysis_capture *c)
{
	fclose(c->fp);
	return c->buf;
}

/* The CPython that gives expected values (see DEVELOPERS.md). */
#define ANALYSIS_PYTHON "/usr/bin/python3"

/*
 * Runs argv[0] (a path) with argv in directory cwd (NULL = ours), stdin from
 * stdin_path (NULL = /dev/null), and returns its exit status (-1 if it could
 * not run) with everything it wrote to stdout in *out (caller frees).
 * stderr is left alone so that Python's tracebacks show in the test log.
 */
static inline int analysis_run(const char *cwd, const char *stdin_path, char *const argv[],
			       char **out, size_t *outlen)
{
	struct analysis_capture cap;
	int fds[2], status;
	char buf[65536];
	ssize_t n;
	pid_t pid;

	*out = NULL;
	*outlen = 0;
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);

		if (in < 0 || dup2(in, 0) < 0 || dup2(fds[1], 1) < 0 || (cwd && chdir(cwd)))
			_exit(126);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	analysis_capture_begin(&cap);
	while ((n = read(fds[0], buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, cap.fp);
	close(fds[0]);
	fflush(cap.fp);
	*outlen = cap.len;
	*out = analysis_capture_end(&cap);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Skips the calling test, loudly, when the reference CPython is missing. */
#define ANALYSIS_REQUIRE_PYTHON()                                               \
	do {                                                                    \
		if (access(ANALYSIS_PYTHON, X_OK) != 0) {                       \
			cr_log_info("SKIPPED: %s is missing; expected values come " \
				    "from running CPython", ANALYSIS_PYTHON);   \
			fprintf(stderr, "SKIPPED: %s is missing; expected values come " \
				"from running CPython\n", ANALYSIS_PYTHON);             \
			cr_skip_test("%s is missing", ANALYSIS_PYTHON);         \
		}                                                               \
	} while (0)

/* A fresh directory under /tmp (caller removes it with analysis_rmtree). */
static inline char *analysis_tmpdir(void)
{
	char *d = strdup("/tmp/tmbpf-analysis-XXXXXX");

	cr_assert_not_null(mkdtemp(d));
	return d;
}

static inline void analysis_write_file(const char *dir, const char *name, const void *data,
				       size_t len)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	cr_assert_not_null(fp, "cannot create %s", path);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	cr_assert_eq(fclose(fp), 0);
}

static inline void analysis_rmtree(char *dir)
{
	char *argv[] = { "/bin/rm", "-rf", dir, NULL };
	char *out;
	size_t len;

	analysis_run(NULL, NULL, argv, &out, &len);
	free(out);
	free(dir);
}

#endif
