/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Live CPython processes for the tracer tests: the interpreters of this
 * machine, spawning one with pipes, reading its lines. Defined in
 * live_python.c, the one implementation every tracer test file uses.
 */
/* Skips are said on stderr ("SKIPPED ...") and with cr_log_info(): Criterion
 * 2.4 makes the whole run exit 1 when a test logs a warning, so that CI would
 * fail on a skip; cr_log_warn() is not used in the suites. */
#ifndef TMBPF_TESTS_LIVE_PYTHON_H
#define TMBPF_TESTS_LIVE_PYTHON_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct disc_python {
	const char *name;               /* "3.8", "debian-3.11" */
	const char *version;            /* pyenv version directory, NULL for Debian's */
	unsigned minor;
};

extern const struct disc_python disc_pythons[];
extern const size_t disc_npythons;

/* pyenv's root: $PYENV_ROOT, else ~/.pyenv. */
void disc_pyenv_root(char *out, size_t size);
void disc_python_path(const struct disc_python *py, char *out, size_t size);
/* Skips the current test, loudly, unless root and the interpreter exists. */
void disc_require(const struct disc_python *py, char *out, size_t size);

struct disc_proc {
	pid_t pid;
	FILE *out;                      /* its stdout */
	int in_fd;                      /* its stdin */
	char **lines;
	size_t nlines, cap;
};

void disc_spawn(struct disc_proc *p, char *const argv[], char *const extra_env[]);
void disc_read_ready(struct disc_proc *p);
/* Closes its stdin, waits 2 s for it to exit (then kills it), frees p.
 * Returns its wait status, or -1 when it had to be killed. */
int disc_stop(struct disc_proc *p);

#endif
