// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Live CPython processes for the tracer tests (see live_python.h): one
 * implementation for every tracer test file.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "live_python.h"

const struct disc_python disc_pythons[] = {
	{ "3.8", "3.8.18", 8 },
	{ "3.9", "3.9.18", 9 },
	{ "3.10", "3.10.13", 10 },
	{ "3.11", "3.11.7", 11 },
	{ "3.12", "3.12.1", 12 },
	{ "3.13", "3.13.0", 13 },
	{ "debian-3.11", NULL, 11 },
};
const size_t disc_npythons = sizeof(disc_pythons) / sizeof(disc_pythons[0]);

/* pyenv's root: $PYENV_ROOT, else ~/.pyenv (root's when HOME is unset). */
void disc_pyenv_root(char *out, size_t size)
{
	const char *root = getenv("PYENV_ROOT"), *home = getenv("HOME");

	if (root)
		snprintf(out, size, "%s", root);
	else
		snprintf(out, size, "%s/.pyenv", home ? home : "/root");
}

/* Path of an interpreter. */
void disc_python_path(const struct disc_python *py, char *out, size_t size)
{
	char root[256];

	if (!py->version) {
		snprintf(out, size, "/usr/bin/python3.%u", py->minor);
		return;
	}
	disc_pyenv_root(root, sizeof(root));
	snprintf(out, size, "%s/versions/%s/bin/python3.%u", root, py->version, py->minor);
}

/* Skips the current test, loudly, unless we are root and the interpreter
 * exists. Returns the interpreter path in out. */
void disc_require(const struct disc_python *py, char *out, size_t size)
{
	if (geteuid() != 0) {
		cr_log_info("SKIPPED %s: reading another process's memory needs root", py ? py->name : "");
		fprintf(stderr, "SKIPPED %s: reading another process's memory needs root\n", py ? py->name : "");
		cr_skip_test("not root");
	}
	if (!py)
		return;
	disc_python_path(py, out, size);
	if (access(out, X_OK) != 0) {
		cr_log_info("SKIPPED CPython %s: %s is not installed", py->name, out);
		fprintf(stderr, "SKIPPED CPython %s: %s is not installed\n", py->name, out);
		cr_skip_test("%s missing", out);
	}
}

/* Starts argv with pipes on stdin/stdout; extra_env ("K=V", NULL-ended) is
 * added to the environment. */
void disc_spawn(struct disc_proc *p, char *const argv[], char *const extra_env[])
{
	int in[2], out[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		for (size_t i = 0; extra_env && extra_env[i]; i++)
			putenv(extra_env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in_fd = in[1];
	p->out = fdopen(out[0], "r");
	cr_assert_not_null(p->out);
}

/* Reads lines until one starting with "READY"; keeps them all. */
void disc_read_ready(struct disc_proc *p)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, p->out)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (p->nlines == p->cap) {
			p->cap = p->cap ? 2 * p->cap : 256;
			p->lines = realloc(p->lines, p->cap * sizeof(*p->lines));
			cr_assert_not_null(p->lines);
		}
		p->lines[p->nlines++] = strdup(line);
		if (strncmp(line, "READY", 5) == 0)
			break;
	}
	free(line);
	cr_assert(p->nlines > 0 && strncmp(p->lines[p->nlines - 1], "READY", 5) == 0,
		  "the target process did not get ready (exited?)");
}

/* Closes its stdin, waits 2 s for it to exit (then kills it), frees p.
 * Returns its wait status, or -1 when it had to be killed. */
int disc_stop(struct disc_proc *p)
{
	int status, ret = -1;

	if (p->in_fd >= 0)
		close(p->in_fd);        /* EOF on stdin: the script returns */
	p->in_fd = -1;
	for (int i = 0; i < 100; i++) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			ret = status;
			goto done;
		}
		usleep(20000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
done:
	if (p->out)
		fclose(p->out);
	for (size_t i = 0; i < p->nlines; i++)
		free(p->lines[i]);
	free(p->lines);
	memset(p, 0, sizeof(*p));
	p->in_fd = -1;
	return ret;
}
