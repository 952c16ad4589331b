/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the CLI and JSON suites (test_cli, test_json): run a program
 * (build/san/tmbpf, /usr/bin/python3 with a tests/py script) and collect its
 * exit status, stdout and stderr; per-test scratch directories.
 */
#ifndef TMBPF_TESTS_CLI_UTIL_H
#define TMBPF_TESTS_CLI_UTIL_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CLI_PYTHON "/usr/bin/python3"
#ifndef CLI_TMBPF
#define CLI_TMBPF "build/san/tmbpf"         /* built by `make test` before the suites */
#endif

struct cli_run {
	int status;             /* exit code, or 128 + signal */
	char *out, *err;        /* NUL-terminated (may also hold NULs: see *_len) */
	size_t out_len, err_len;
};

/*
 * Buffers handed out by cli_read_file() and cli_path() stay listed here until
 * freed, so that a test's .fini can release what a failed assertion (which
 * leaves the test function early) left behind: LeakSanitizer then reports
 * only real leaks.
 */
#define CLI_MAX_BUFS 4096
static void *cli_bufs[CLI_MAX_BUFS];

static inline void cli_track(void *p)
{
	for (int i = 0; i < CLI_MAX_BUFS; i++) {
		if (!cli_bufs[i]) {
			cli_bufs[i] = p;
			return;
		}
	}
	cr_assert_fail("more than %d buffers held by one test", CLI_MAX_BUFS);
}

/* free() for buffers of cli_read_file() */
static inline void cli_free(void *p)
{
	for (int i = 0; p && i < CLI_MAX_BUFS; i++)
		if (cli_bufs[i] == p)
			cli_bufs[i] = NULL;
	free(p);
}

static inline void cli_free_all(void)
{
	for (int i = 0; i < CLI_MAX_BUFS; i++) {
		free(cli_bufs[i]);
		cli_bufs[i] = NULL;
	}
}

static inline char *cli_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	cr_assert(f, "cannot open %s: %s", path, strerror(errno));
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			cr_assert(buf);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);

		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	cli_track(buf);
	return buf;
}

static inline void cli_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f, "cannot create %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Runs argv (NULL-terminated) with stdin from /dev/null; stdout and stderr go
 * through files in `dir`, so any amount of output is safe. */
static inline void cli_run_argv(const char *dir, char *const argv[], struct cli_run *r)
{
	char out_path[4096], err_path[4096];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;

	snprintf(out_path, sizeof(out_path), "%s/.stdout", dir);
	snprintf(err_path, sizeof(err_path), "%s/.stderr", dir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "cannot start %s: %s", argv[0], strerror(rc));
	while (waitpid(pid, &st, 0) < 0)
		cr_assert_eq(errno, EINTR);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->out = cli_read_file(out_path, &r->out_len);
	r->err = cli_read_file(err_path, &r->err_len);
}

/* Same with a printf-built argument list: cli_run(dir, &r, prog, arg1, ..., NULL). */
static inline void cli_run(const char *dir, struct cli_run *r, const char *prog, ...)
{
	char *argv[128];
	int n = 0;
	va_list ap;

	argv[n++] = (char *)prog;
	va_start(ap, prog);
	for (;;) {
		char *a = va_arg(ap, char *);

		cr_assert(n < 127);
		argv[n++] = a;
		if (!a)
			break;
	}
	va_end(ap);
	cli_run_argv(dir, argv, r);
}

static inline void cli_run_free(struct cli_run *r)
{
	cli_free(r->out);
	cli_free(r->err);
	memset(r, 0, sizeof(*r));
}

/* A fresh scratch directory under build/ (removed by cli_rmtree). */
static inline char *cli_mkdtemp(const char *suite)
{
	char tmpl[256];

	mkdir("build", 0755);
	mkdir("build/test-tmp", 0755);
	snprintf(tmpl, sizeof(tmpl), "build/test-tmp/%s.XXXXXX", suite);
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	return strdup(tmpl);
}

/* Removes a scratch directory, and frees what a failed test left behind. */
static inline void cli_rmtree(char *dir)
{
	char cmd[512];

	cli_free_all();
	if (!dir)
		return;
	/* a test's own scratch directory, created by cli_mkdtemp above */
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		cr_log_info("could not remove %s", dir);
	free(dir);
}

/* Path of a file inside dir, valid until the test's .fini (cli_rmtree). */
static inline const char *cli_path(const char *dir, const char *name)
{
	char *p;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	cli_track(p);
	return p;
}

#endif /* TMBPF_TESTS_CLI_UTIL_H */
