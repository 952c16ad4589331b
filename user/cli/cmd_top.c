// SPDX-License-Identifier: MIT
/*
 * tmbpf top -p PID: attaches like `tmbpf attach -p PID` and redraws, every
 * interval, the top statistics of the process with their change since the
 * previous refresh and since the start (output/top.h draws the screen).
 *
 * On a terminal the screen is cleared and redrawn in place (ANSI codes, the
 * size from TIOCGWINSZ, 'q' quits); with --batch, or when stdout is not a
 * terminal, each refresh is a plain block of lines, blocks separated by an
 * empty line, as `top -b` does. -n N stops after N refreshes; Ctrl-C or the
 * end of the target stops with a last block, exit status 0. Nothing is
 * written to files.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_trace.h"
#include "output/top.h"

static const char top_doc[] =
	"Show the memory of a running CPython 3.8-3.13 process like top: every "
	"--interval, the lines that hold the most traced memory, with their change since "
	"the previous refresh and since tmbpf attached."
	"\v"
	"The exact tier (default) traces the allocator calls of PID as 'tmbpf attach' does; "
	"--growth uses tracepoints only (no trap in the target) and shows domain 1, "
	"the resident pages that grew while tracing, unless a domain filter says "
	"otherwise. Rows are Snapshot.statistics(KEY_TYPE, CUMULATIVE) of the latest "
	"snapshot; CHANGE and SINCE START are the size_diff of compare_to() against "
	"the previous refresh and the first snapshot. On a terminal the screen is "
	"redrawn in place and 'q' quits; --batch (or a stdout that is not a terminal) "
	"prints plain blocks separated by an empty line. Ctrl-C or the end of the "
	"process stops with a last block.\n"
	"\n"
	"Examples:\n"
	"  tmbpf top -p 1234\n"
	"  tmbpf top -p 1234 --nframe 8 --key-type traceback --limit 5\n"
	"  tmbpf top -p 1234 --growth --interval 10\n"
	"  tmbpf top -p 1234 --batch -n 3 --include '*/myapp/*' > top.log\n"
	"\n" CLI_EXIT_STATUS_DOC;

enum {
	OPT_PID = CLI_TRACE_OPT_PID,
	OPT_ITERATIONS = 'n',
	OPT_BATCH = 'b',
};

static const struct argp_option top_options[] = {
	{ "pid", OPT_PID, "PID", 0, "The process to watch", 0 },
	{ "iterations", OPT_ITERATIONS, "N", 0, "Stop after N refreshes (default: until Ctrl-C, "
	  "'q' or the end of the process)", 0 },
	{ "batch", OPT_BATCH, NULL, 0, "Plain text blocks, no screen control (also when stdout "
	  "is not a terminal)", 0 },
	CLI_HELP_OPTION,
	{ 0 },
};

/*
 * The tracing options of run/attach that make sense here, with --interval
 * documented as the refresh period; -o, --quiet and --duration are theirs.
 */
static const struct {
	const char *name;
	const char *doc;                /* NULL: the shared text */
} tracing_kept[] = {
	{ "interval", "Seconds between refreshes (default 2)" },
	{ "nframe", NULL },
	{ "growth", NULL },
	{ "sample-pages", NULL },
	{ "max-traces", NULL },
	{ "max-walk", NULL },
	{ "no-reattribute", NULL },
	{ "verbose", NULL },
};

#define NKEPT (sizeof(tracing_kept) / sizeof(tracing_kept[0]))
static struct argp_option tracing_options[NKEPT + 2];

static const struct argp_option *tracing_table(void)
{
	size_t n = 0;

	if (tracing_options[0].doc)
		return tracing_options;
	tracing_options[n++] = (struct argp_option){ NULL, 0, NULL, 0, "Tracing:", 3 };
	for (const struct argp_option *o = cli_trace_options; o->name || o->key || o->doc; o++) {
		for (size_t k = 0; o->name && k < NKEPT; k++) {
			if (strcmp(o->name, tracing_kept[k].name))
				continue;
			tracing_options[n] = *o;
			if (tracing_kept[k].doc)
				tracing_options[n].doc = tracing_kept[k].doc;
			n++;
		}
	}
	return tracing_options;
}

struct top_args {
	struct trace_cli tc;
	pid_t pid;
	uint64_t iterations;            /* 0 = no limit */
	bool batch;
};

static int top_parse_opt(int key, char *arg, void *ctx)
{
	struct top_args *a = ctx;
	uint64_t v;

	switch (key) {
	case OPT_PID:
		return cli_trace_parse_pid(arg, &a->pid);
	case OPT_ITERATIONS:
		if (cli_parse_u64(arg, "-n", UINT32_MAX, &v))
			return -1;
		if (v < 1) {
			cli_err("-n out of range (1 to %u): '%s'", UINT32_MAX, arg);
			return -1;
		}
		a->iterations = v;
		return 0;
	case OPT_BATCH:
		a->batch = true;
		return 0;
	}
	return cli_trace_parse_opt(&a->tc, key, arg) ? -1 : 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the terminal ----------------------------------------------------------- */

struct term {
	bool screen;                    /* redraw in place */
	bool keys;                      /* stdin is a terminal we read 'q' from */
	struct termios saved;
};

static void term_open(struct term *t, bool batch)
{
	memset(t, 0, sizeof(*t));
	t->screen = !batch && isatty(STDOUT_FILENO);
	if (t->screen && isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &t->saved)) {
		struct termios raw = t->saved;

		/* keys one at a time, not echoed; Ctrl-C still sends SIGINT */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		t->keys = !tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	if (t->screen) {
		fputs("\033[?25l", stdout);             /* hide the cursor */
		fflush(stdout);
	}
}

static void term_close(struct term *t)
{
	if (t->keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	if (t->screen) {
		fputs("\033[?25h", stdout);
		fflush(stdout);
	}
}

/* 'q' (or 'Q') typed since the last look */
static bool term_quit(const struct term *t)
{
	char c;

	if (!t->keys)
		return false;
	while (read(STDIN_FILENO, &c, 1) == 1)
		if (c == 'q' || c == 'Q')
			return true;
	return false;
}

/* One refresh on stdout, all at once. */
static int show(const struct term *t, struct top_state *st, bool first)
{
	struct cli_output o;
	struct tm_error err = { "" };
	struct winsize ws;

	st->opts.width = st->opts.height = 0;
	if (t->screen && !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col) {
		st->opts.width = ws.ws_col;
		st->opts.height = ws.ws_row;
	}
	if (cli_output_open(&o))
		return -1;
	if (t->screen)
		fputs("\033[H\033[2J", o.fp);           /* home, clear the screen */
	else if (!first)
		fputc('\n', o.fp);
	if (top_render(o.fp, st, &err)) {
		cli_output_discard(&o);
		cli_err("%s", err.msg);
		return -1;
	}
	return cli_output_commit(&o);
}

/* A snapshot of the process, filtered as every refresh is. */
static struct tm_snapshot *snapshot(struct top_args *a, struct traced_proc *p, bool *pages)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = cli_trace_snapshot(&a->tc, p, &err);
	int r;

	if (!s) {
		cli_err("PID %d: %s", (int)p->pid, err.msg);
		return NULL;
	}
	if (cli_analysis_filter(&a->tc.analysis, s))
		goto fail;
	r = cli_trace_growth_default_domain(&a->tc.analysis, s, &err);
	if (r < 0) {
		cli_err("%s", err.msg);
		goto fail;
	}
	*pages = r == 1;
	return s;
fail:
	tm_snapshot_free(s);
	return NULL;
}

static const struct cli_spec top_spec_base = {
	.name = "top",
	.args_doc = "",
	.doc = top_doc,
	.min_args = 0,
	.max_args = 0,
	.parse_opt = top_parse_opt,
};

static int top_run(int argc, char **argv)
{
	const struct argp_option *const tables[] = {
		top_options, tracing_table(), cli_analysis_options, NULL,
	};
	struct cli_spec spec = top_spec_base;
	struct top_args a;
	struct trace_cli *tc = &a.tc;
	struct top_state st;
	struct term term = { 0 };
	struct tm_error err = { "" };
	struct traced_proc *p;
	struct tm_snapshot *s;
	bool have_state = false, pages = false, quit = false;
	uint64_t shown = 0;
	char root[64];
	double next;
	int nargs, ret;
	char **args;

	memset(&a, 0, sizeof(a));
	cli_trace_init(tc);
	spec.options = tables;
	ret = cli_parse(&spec, argc, argv, &a, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_USAGE;
	if (cli_trace_finish(tc))
		goto out;
	if (!a.pid) {
		cli_err("top: which process? give -p PID");
		goto out;
	}
	if (tc->interval <= 0)
		tc->interval = 2;
	ret = CLI_EXIT_RUNTIME;
	if (cli_trace_check_root("top"))
		goto out;
	if (cli_trace_pid_gone(a.pid)) {
		cli_err("no such process: %d", (int)a.pid);
		goto out;
	}
	if (cli_trace_open(tc, NULL, NULL))
		goto out;
	cli_trace_catch_signals();
	p = cli_trace_attach_pid(tc, a.pid, &err);
	if (!p) {
		cli_err("%s", err.msg[0] ? err.msg : "not a CPython process");
		goto out;
	}
	fprintf(stderr, "tmbpf: watching PID %d (%s tier), every %g s; Ctrl-C to stop\n",
		(int)a.pid, tc->growth ? "growth" : "exact", tc->interval);
	/* the start: what every "SINCE START" is measured from */
	s = snapshot(&a, p, &pages);
	if (!s)
		goto out;
	{
		struct top_opts o = {
			.key_type = tc->analysis.key_type,
			.cumulative = tc->analysis.cumulative,
			.limit = tc->analysis.limit,
			.root_dir = NULL,
			.interval = tc->interval,
			.note = pages ? "Showing domain 1: resident pages that grew while tracing "
					"(--include-domain 2: address space mapped)" : NULL,
		};
		/* source lines as the process sees its files */
		snprintf(root, sizeof(root), "/proc/%d/root", (int)a.pid);
		o.root_dir = root;
		if (top_state_init(&st, &o, s, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
	}
	have_state = true;
	term_open(&term, a.batch);
	next = now_s() + tc->interval;
	while (!cli_trace_stop) {
		if (cli_trace_poll(tc, 50) < 0 && errno != EINTR) {
			cli_err("reading BPF events failed: %s", strerror(errno));
			goto out;
		}
		if (term_quit(&term)) {
			quit = true;
			break;
		}
		if (cli_trace_pid_gone(a.pid)) {
			p->exited = true;
			break;
		}
		if (now_s() < next)
			continue;
		/* a refresh slower than the interval delays the next, never piles up */
		next += tc->interval;
		if (next < now_s())
			next = now_s() + tc->interval;
		s = snapshot(&a, p, &pages);
		if (!s)
			goto out;
		if (top_state_update(&st, s, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
		if (show(&term, &st, shown == 0))
			goto out;
		shown++;
		if (a.iterations && shown >= a.iterations)
			goto done;
	}
	/* Ctrl-C, 'q' or the end of the process: a last block of what is known now */
	if (!quit) {
		s = snapshot(&a, p, &pages);
		if (s && top_state_update(&st, s, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
		if (show(&term, &st, shown == 0))
			goto out;
	}
	if (p->exited)
		fprintf(stderr, "tmbpf: PID %d exited\n", (int)a.pid);
done:
	ret = CLI_EXIT_OK;
out:
	term_close(&term);
	if (have_state)
		top_state_destroy(&st);
	cli_trace_destroy(tc);
	return ret;
}

const struct cli_command cli_cmd_top = {
	.name = "top",
	.summary = "Live top-style report of a running Python process's memory",
	.run = top_run,
};
