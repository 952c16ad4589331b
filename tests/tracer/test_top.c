// SPDX-License-Identifier: MIT
/*
 * `tmbpf top` end to end (real BPF, root): build/san/tmbpf watches a live
 * CPython running tests/py/top_leak.py, which leaks 4 KiB bytearrays at one
 * line, and must show that line -- found here by its marker in the script,
 * with its source text as linecache reads it -- growing between refreshes;
 * -n, the end of the target and Ctrl-C must all end it with status 0 and a
 * last block.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/cli_util.h"
#include "live_python.h"

#define LEAK_SCRIPT "tests/py/top_leak.py"
#define LEAK_MARKER "# TOP_LEAK_LINE"

static char *dir;

static void setup(void)
{
	dir = cli_mkdtemp("tracer-top");
}

static void teardown(void)
{
	cli_rmtree(dir);
	dir = NULL;
}

TestSuite(top_live, .init = setup, .fini = teardown, .timeout = 120);

/* "PATH:N: SOURCE" of the leaking line, from the script itself. */
static void leak_location(char *out, size_t size)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	unsigned n = 0;

	cr_assert_not_null(realpath(LEAK_SCRIPT, path));
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (!strstr(line, LEAK_MARKER) || strstr(line, "marked"))
			continue;
		char *src = line, *end = line + strlen(line);

		while (*src == ' ')
			src++;
		while (end > src && (end[-1] == '\n' || end[-1] == ' '))
			*--end = '\0';
		int len = snprintf(out, size, "%s:%u: %s", path, n, src);

		cr_assert(len > 0 && (size_t)len < size);
		fclose(f);
		return;
	}
	cr_assert_fail("no %s line in %s", LEAK_MARKER, path);
}

static void start_leak(const struct disc_python *py, struct disc_proc *p)
{
	static char python[512], script[PATH_MAX];

	disc_require(py, python, sizeof(python));
	cr_assert_not_null(realpath(LEAK_SCRIPT, script));
	char *argv[] = { python, script, NULL };

	disc_spawn(p, argv, NULL);
	disc_read_ready(p);
}

/* Starts tmbpf top in the background, its output in files of dir. */
static pid_t start_top(char *const argv[])
{
	char out_path[512], err_path[512];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	snprintf(out_path, sizeof(out_path), "%s/top.out", dir);
	snprintf(err_path, sizeof(err_path), "%s/top.err", dir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "cannot start %s: %s", argv[0], strerror(rc));
	return pid;
}

/* Waits up to 60 s; the exit status, its output in r. */
static void wait_top(pid_t pid, struct cli_run *r)
{
	char path[512];
	int st;

	for (int i = 0; i < 6000; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			goto done;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	cr_assert_fail("tmbpf top did not stop within 60 s");
done:
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	snprintf(path, sizeof(path), "%s/top.out", dir);
	r->out = cli_read_file(path, &r->out_len);
	snprintf(path, sizeof(path), "%s/top.err", dir);
	r->err = cli_read_file(path, &r->err_len);
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The row of `loc` in the last block: its SIZE and COUNT columns. */
static void last_row(const char *out, const char *loc, char *size, size_t sz, uint64_t *cnt,
		     bool *first_row)
{
	const char *block = out, *p, *row, *titles;

	while ((p = strstr(block + 1, "tmbpf top - PID ")))
		block = p;
	titles = strstr(block, "SINCE START");
	cr_assert_not_null(titles, "no column titles in:\n%s", block);
	row = strstr(block, loc);
	cr_assert_not_null(row, "the leaking line %s is not in the last block:\n%s", loc, block);
	while (row > block && row[-1] != '\n')
		row--;
	*first_row = row == strchr(titles, '\n') + 1;
	/* "%10s %11s %12s %9s  " */
	cr_assert_gt(strlen(row), 47);
	snprintf(size, sz, "%.10s", row);
	*cnt = strtoull(row + 36, NULL, 10);
}

static bool is_zero_size(const char *size)
{
	return strstr(size, " 0 B") != NULL;
}

static void check_clean_stderr(const struct cli_run *r)
{
	cr_assert_null(strstr(r->err, "ERROR"), "stderr: %s", r->err);
	cr_assert_null(strstr(r->err, "runtime error"), "stderr: %s", r->err);
	cr_assert_not_null(strstr(r->err, "tmbpf: watching PID"), "stderr: %s", r->err);
}

static void batch_two_refreshes(const struct disc_python *py, bool growth)
{
	struct disc_proc p;
	char pid[24], loc[1024], size[16];
	char *argv[16];
	int n = 0;
	struct cli_run r;
	uint64_t cnt;
	bool first;

	leak_location(loc, sizeof(loc));
	start_leak(py, &p);
	snprintf(pid, sizeof(pid), "%d", (int)p.pid);
	argv[n++] = (char *)CLI_TMBPF;
	argv[n++] = (char *)"top";
	argv[n++] = (char *)"-p";
	argv[n++] = pid;
	argv[n++] = (char *)"--batch";
	argv[n++] = (char *)"-n";
	argv[n++] = (char *)"2";
	argv[n++] = (char *)"--interval";
	argv[n++] = (char *)"1";
	if (growth) {
		argv[n++] = (char *)"--growth";
		argv[n++] = (char *)"--sample-pages";
		argv[n++] = (char *)"1";
	}
	argv[n] = NULL;
	wait_top(start_top(argv), &r);
	disc_stop(&p);
	cr_assert_eq(r.status, 0, "%s: exit %d\n%s\n%s", py->name, r.status, r.out, r.err);
	check_clean_stderr(&r);
	cr_assert_eq(count(r.out, "tmbpf top - PID "), 2, "%s: two blocks:\n%s", py->name, r.out);
	cr_assert_eq(count(r.out, "\n\ntmbpf top - PID "), 1, "blocks separated by a line");
	cr_assert_null(strchr(r.out, '\033'), "no screen control in batch mode");
	cr_assert_not_null(strstr(r.out, ", refresh 1 every 1 s\n"));
	cr_assert_not_null(strstr(r.out, ", refresh 2 every 1 s\n"));
	cr_assert_not_null(strstr(r.out, growth ? "growth tier" : "exact tier"));
	last_row(r.out, loc, size, sizeof(size), &cnt, &first);
	cr_assert(!is_zero_size(size) && cnt > 0, "%s: the leak holds memory: '%s' %" PRIu64,
		  py->name, size, cnt);
	if (!growth)
		cr_assert(first, "%s: the leak is the biggest line:\n%s", py->name, r.out);
	cli_run_free(&r);
}

Test(top_live, exact_tier_shows_the_leaking_line)
{
	for (size_t i = 0; i < disc_npythons; i++)
		if (disc_pythons[i].version)    /* Debian's LTO build is PARTIAL: below */
			batch_two_refreshes(&disc_pythons[i], false);
}

Test(top_live, growth_tier_shows_the_leaking_line)
{
	batch_two_refreshes(&disc_pythons[3], true);                   /* 3.11 */
	batch_two_refreshes(&disc_pythons[disc_npythons - 1], true);   /* Debian's */
}

/* The target ends, or Ctrl-C: status 0 and a last block. */
static void stops_cleanly(bool interrupt)
{
	struct disc_proc p;
	char pid[24], loc[1024];
	struct cli_run r;
	pid_t top;

	leak_location(loc, sizeof(loc));
	start_leak(&disc_pythons[3], &p);
	snprintf(pid, sizeof(pid), "%d", (int)p.pid);
	char *argv[] = { (char *)CLI_TMBPF, (char *)"top", (char *)"-p", pid, (char *)"--interval",
			 (char *)"0.5", NULL };

	top = start_top(argv);
	usleep(2500000);        /* BPF loaded and a few refreshes drawn */
	if (interrupt)
		kill(top, SIGINT);
	else
		disc_stop(&p);
	wait_top(top, &r);
	if (interrupt)
		disc_stop(&p);
	cr_assert_eq(r.status, 0, "exit %d\n%s\n%s", r.status, r.out, r.err);
	check_clean_stderr(&r);
	cr_assert_geq(count(r.out, "tmbpf top - PID "), 2, "%s", r.out);
	cr_assert_not_null(strstr(r.out, loc), "%s", r.out);
	/* the last block is complete: it ends with a row, not mid-line */
	cr_assert(r.out_len && r.out[r.out_len - 1] == '\n');
	if (!interrupt)
		cr_assert_not_null(strstr(r.err, "exited"), "%s", r.err);
	cli_run_free(&r);
}

Test(top_live, stops_when_the_target_exits)
{
	stops_cleanly(false);
}

Test(top_live, stops_on_ctrl_c)
{
	stops_cleanly(true);
}

Test(top_live, refuses_what_it_cannot_watch)
{
	struct cli_run r;
	char self[24];

	snprintf(self, sizeof(self), "%d", (int)getpid());
	cli_run(dir, &r, CLI_TMBPF, "top", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "give -p PID"), "%s", r.err);
	cli_run_free(&r);
	cli_run(dir, &r, CLI_TMBPF, "top", "-p", "999999999", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "no such process"), "%s", r.err);
	cli_run_free(&r);
	cli_run(dir, &r, CLI_TMBPF, "top", "-p", self, "--json", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "--json"), "%s", r.err);
	cli_run_free(&r);
	cli_run(dir, &r, CLI_TMBPF, "top", "-p", self, "--cumulative", "--key-type", "traceback",
		NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cli_run_free(&r);
	cli_run(dir, &r, CLI_TMBPF, "top", "-p", self, "-n", "0", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cli_run_free(&r);
	/* this test program is not CPython: one error line, status 1 */
	cli_run(dir, &r, CLI_TMBPF, "top", "-p", self, "--batch", "-n", "1", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(!strncmp(r.err, "tmbpf: ", 7) && strchr(r.err, '\n') == r.err + r.err_len - 1,
		  "one line: %s", r.err);
	cr_assert_eq(r.out_len, 0);
	cli_run_free(&r);
}

/* ---- flame graphs of real captures ------------------------------------------- */

static void run_ok(struct cli_run *r, char *const argv[])
{
	cli_run_argv(dir, argv, r);
	cr_assert_eq(r->status, 0, "%s %s: exit %d\n%s", argv[0], argv[1], r->status, r->err);
}

/*
 * `tmbpf flamegraph` on what `tmbpf attach` wrote for each tier: the folded
 * stacks equal those CPython computes from the same snapshot converted to a
 * pickle (for the growth tier: its domain 1, the default), the leaking line
 * is in them, and the SVG passes fg_oracle.py's check.
 */
static void flamegraph_of_capture(bool growth)
{
	const char *snap = cli_path(dir, "cap.tmbpf"), *pk = cli_path(dir, "cap.pickle");
	const char *svg = cli_path(dir, "cap.svg");
	char pid[24], loc[1024], *colon;
	struct disc_proc p;
	struct cli_run r, want;

	leak_location(loc, sizeof(loc));
	/* "PATH:N: SOURCE" -> "PATH:N" */
	colon = strstr(loc, ": ");
	cr_assert_not_null(colon);
	*colon = '\0';
	start_leak(&disc_pythons[3], &p);
	snprintf(pid, sizeof(pid), "%d", (int)p.pid);
	char *attach[] = { (char *)CLI_TMBPF, (char *)"attach", (char *)"-p", pid,
			   (char *)"--duration", (char *)"1.5", (char *)"--nframe", (char *)"4",
			   (char *)"-o", (char *)snap, (char *)(growth ? "--growth" : "--quiet"),
			   (char *)(growth ? "--quiet" : NULL), NULL };

	run_ok(&r, attach);
	cli_run_free(&r);
	disc_stop(&p);
	char *convert[] = { (char *)CLI_TMBPF, (char *)"convert", (char *)snap, (char *)pk, NULL };

	run_ok(&r, convert);
	cli_run_free(&r);

	char *folded[] = { (char *)CLI_TMBPF, (char *)"flamegraph", (char *)snap, NULL };
	char *oracle[] = { (char *)CLI_PYTHON, (char *)"tests/py/fg_oracle.py", (char *)"folded",
			   (char *)pk, (char *)"--include-domain", (char *)"1", NULL };

	if (!growth)
		oracle[4] = NULL;
	run_ok(&r, folded);
	run_ok(&want, oracle);
	cr_assert(r.out_len == want.out_len && !memcmp(r.out, want.out, r.out_len),
		  "folded stacks differ from CPython's grouping:\n%s\n---\n%s", r.out, want.out);
	cr_assert_not_null(strstr(r.out, loc), "%s not in:\n%s", loc, r.out);
	cli_run_free(&r);
	cli_run_free(&want);

	char *draw[] = { (char *)CLI_TMBPF, (char *)"flamegraph", (char *)snap, (char *)"-o",
			 (char *)svg, NULL };
	char *check[] = { (char *)CLI_PYTHON, (char *)"tests/py/fg_oracle.py", (char *)"svgcheck",
			  (char *)pk, (char *)svg, (char *)"--include-domain", (char *)"1", NULL };

	if (!growth)
		check[5] = NULL;
	run_ok(&r, draw);
	run_ok(&want, check);
	cr_assert(!strncmp(want.out, "OK ", 3), "%s", want.out);
	cli_run_free(&r);
	cli_run_free(&want);
	if (growth) {
		/* the mappings, when asked for */
		char *maps[] = { (char *)CLI_TMBPF, (char *)"flamegraph", (char *)snap,
				 (char *)"--include-domain", (char *)"2", NULL };
		char *omaps[] = { (char *)CLI_PYTHON, (char *)"tests/py/fg_oracle.py",
				  (char *)"folded", (char *)pk, (char *)"--include-domain", (char *)"2",
				  NULL };

		run_ok(&r, maps);
		run_ok(&want, omaps);
		cr_assert(r.out_len == want.out_len && !memcmp(r.out, want.out, r.out_len));
		cr_assert_eq(r.err_len, 0, "no default-domain note when a domain is chosen");
		cli_run_free(&r);
		cli_run_free(&want);
	}
}

Test(top_live, flamegraph_of_exact_capture)
{
	flamegraph_of_capture(false);
}

Test(top_live, flamegraph_of_growth_capture)
{
	flamegraph_of_capture(true);
}
