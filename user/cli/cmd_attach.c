// SPDX-License-Identifier: MIT
/*
 * tmbpf attach -p PID / --all: traces running Python processes, with no
 * restart, no code change and nothing written to them, until --duration ends,
 * Ctrl-C, or the target exits; then writes snapshot(s) and prints the report.
 * Blocks allocated before attaching are not traced (as tracemalloc after
 * start()), and frees of them are ignored.
 *
 * --all (growth tier) traces every CPython process of the host, those running
 * now and those that start later: every exec is examined as it happens.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_trace.h"

static const char attach_doc[] =
	"Trace a running CPython 3.8-3.13 process (-p PID), or every CPython process "
	"of the host (--all), until --duration ends, Ctrl-C, or the process exits; "
	"then write the snapshot(s) and print the top lines by size."
	"\v"
	"The exact tier (default) probes the allocator functions of PID's "
	"interpreter (uprobes bound to PID: no other process traps). On an LTO build "
	"running its default allocator (Debian's python3) calls inlined into their "
	"callers cannot be seen: the report says PARTIAL and why. --growth uses "
	"tracepoints only (page faults, brk, mmap): no trap in the target, the mode "
	"to leave running in production.\n"
	"\n"
	"Examples:\n"
	"  tmbpf attach -p 1234 --duration 30 --nframe 10\n"
	"  tmbpf attach -p 1234 --interval 60 -o srv.tmbpf   # srv.1.tmbpf, srv.2.tmbpf, ...\n"
	"  tmbpf attach --all --growth --duration 600 -o host.tmbpf\n"
	"\n" CLI_EXIT_STATUS_DOC;

static const struct argp_option attach_options[] = {
	{ "pid", CLI_TRACE_OPT_PID, "PID", 0, "The process to trace", 0 },
	{ "all", CLI_TRACE_OPT_ALL, NULL, 0,
	  "Every CPython process of the host, now and as they start (exact tier: "
	  "probes attached once per interpreter file, so every process of it traps; "
	  "--growth: no trap at all)", 0 },
	{ "duration", CLI_TRACE_OPT_DURATION, "SECONDS", 0,
	  "Stop after SECONDS (default: Ctrl-C or the end of the process)", 0 },
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const attach_tables[] = {
	attach_options, cli_trace_options, cli_analysis_options, NULL,
};

/* --all: a process that exec'd or forked, to examine (from the ring buffer callbacks) */
struct pending_proc {
	pid_t pid;
	char comm[17];                  /* its name, for a process gone before it was examined */
	double next_try;                /* the next look (a fork child waits a little: if it
					 * execs at once, it is examined as that program) */
	double deadline;                /* until then, "not Python (yet)" means look again */
	unsigned tries;
	dev_t exe_dev;                  /* its program file (0/0: unknown) */
	ino_t exe_ino;
};

/* A program file seen to run no Python once loaded: later processes of it
 * get one look, not a series (every exec of the host is examined). */
struct not_python {
	dev_t dev;
	ino_t ino;
};

#define MAX_NOT_PYTHON 4096

struct attach_args {
	struct trace_cli tc;
	pid_t pid;
	struct pending_proc *pending;
	size_t npending, pending_cap;
	struct not_python *not_python;
	size_t nnot_python;
};

static int attach_parse_opt(int key, char *arg, void *ctx)
{
	struct attach_args *a = ctx;

	if (key == CLI_TRACE_OPT_PID)
		return cli_trace_parse_pid(arg, &a->pid);
	if (cli_trace_parse_opt(&a->tc, key, arg) == 0)
		return 0;
	return -1;
}

static const struct cli_spec attach_spec = {
	.name = "attach",
	.args_doc = "",
	.doc = attach_doc,
	.options = attach_tables,
	.min_args = 0,
	.max_args = 0,
	.parse_opt = attach_parse_opt,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_skipped_comm(struct trace_cli *tc, pid_t pid, const char *comm, const char *reason)
{
	char *cmd = cli_proc_cmdline(pid), *line = NULL;

	if (comm && comm[0] && cmd && !strcmp(cmd, "?")) {
		free(cmd);
		cmd = strdup(comm);
	}
	/* one line per process: it may have exec'd several times */
	for (size_t i = 0; i < tc->nskipped; i++) {
		char prefix[24];

		snprintf(prefix, sizeof(prefix), "%d (", (int)pid);
		if (!strncmp(tc->skipped[i], prefix, strlen(prefix))) {
			free(cmd);
			return;
		}
	}

	if (tc->nskipped == tc->skipped_cap) {
		size_t c = tc->skipped_cap ? tc->skipped_cap * 2 : 8;
		char **n = realloc(tc->skipped, c * sizeof(*n));

		if (!n) {
			free(cmd);
			return;
		}
		tc->skipped = n;
		tc->skipped_cap = c;
	}
	if (asprintf(&line, "%d (%s): %s", (int)pid, cmd ? cmd : "?", reason) > 0)
		tc->skipped[tc->nskipped++] = line;
	free(cmd);
}

static void add_skipped(struct trace_cli *tc, pid_t pid, const char *reason)
{
	add_skipped_comm(tc, pid, NULL, reason);
}

static void add_pending(struct attach_args *a, pid_t pid, const char *comm, double delay);

/* Growth tier, host-wide: the children pid forked before BPF knew it was
 * traced (a worker pool started at once); later forks are reported by BPF. */
static void pend_children(struct attach_args *a, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char cpath[320];
		long child;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		f = fopen(cpath, "re");
		if (!f)
			continue;
		while (fscanf(f, "%ld", &child) == 1)
			add_pending(a, (pid_t)child, NULL, 0);
		fclose(f);
	}
	closedir(d);
}

/* Starts tracing pid. quiet_not_python: in --all, non-Python processes are
 * simply not ours. Returns 0 traced, 1 not Python / skipped, -1 error. */
static int trace_pid(struct attach_args *a, pid_t pid, bool host_wide, struct tm_error *err)
{
	struct trace_cli *tc = &a->tc;
	struct capture_plan *plan = NULL;
	struct py_interp *pi = calloc(1, sizeof(*pi));
	char *command;
	int r;

	if (!pi) {
		tm_error_set(err, "out of memory");
		return -1;
	}
	/* a process can exec several times (a launcher, a shim): trace it once */
	for (size_t i = 0; i < tc->nprocs; i++) {
		if (tc->procs[i]->pid == pid && !tc->procs[i]->exited && !tc->procs[i]->ended) {
			free(pi);
			return 0;
		}
	}
	/* the growth tier needs no capture plan: the cheap examination, so that
	 * short-lived processes are traced before they end */
	r = tc->growth ? py_interp_open_pid_walker(pid, pi, err) : py_interp_open_pid(pid, pi, err);
	if (r) {
		free(pi);
		return r == -ENOEXEC || r == -ENOENT || r == -ESRCH ? 1 : -1;
	}
	if (!tc->growth && !host_wide) {
		plan = calloc(1, sizeof(*plan));
		if (!plan || capture_plan_for_pid(pi, tc->reattribute, plan, err)) {
			if (!plan)
				tm_error_set(err, "out of memory");
			free(plan);
			free(pi);
			return -1;
		}
	}
	command = cli_proc_cmdline(pid);
	r = cli_trace_add(tc, pid, pi, plan, command, err) ? 0 : -1;
	if (r)
		free(pi);
	else if (host_wide)
		fprintf(stderr, "tmbpf: tracing PID %d (%s), CPython %s\n", (int)pid, command,
			pi->version);
	if (!r && host_wide && tc->growth)
		pend_children(a, pid);
	free(command);
	free(plan);
	return r;
}

static bool looks_like_python(pid_t pid)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	/* code mapped from a python file: not a tool that only reads one */
	while (!found && fgets(line, sizeof(line), f)) {
		char perms[8] = "";

		found = sscanf(line, "%*s %7s", perms) == 1 && perms[2] == 'x' &&
			(strstr(line, "/libpython") || strstr(line, "/python"));
	}
	fclose(f);
	return found;
}

/* --all: every process running now. */
static void scan_processes(struct attach_args *a)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid();

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct tm_error err = { "" };
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self || !looks_like_python((pid_t)pid))
			continue;
		if (trace_pid(a, (pid_t)pid, true, &err))
			add_skipped(&a->tc, (pid_t)pid, err.msg[0] ? err.msg : "not a CPython process");
	}
	closedir(d);
}

static void add_pending(struct attach_args *a, pid_t pid, const char *comm, double delay)
{
	double now = now_s();
	struct pending_proc *pp;
	char path[64];
	struct stat st;

	if (a->npending == a->pending_cap) {
		size_t c = a->pending_cap ? a->pending_cap * 2 : 64;
		struct pending_proc *n = realloc(a->pending, c * sizeof(*n));

		if (!n) {
			add_skipped(&a->tc, pid, "out of memory");
			return;
		}
		a->pending = n;
		a->pending_cap = c;
	}
	/* a shared libpython is mapped by ld.so a few milliseconds after exec:
	 * "not Python" is believed after a second of looks, except from a
	 * program file already known to run no Python */
	pp = &a->pending[a->npending++];
	*pp = (struct pending_proc){ .pid = pid, .next_try = now + delay, .deadline = now + delay + 1.0 };
	snprintf(pp->comm, sizeof(pp->comm), "%s", comm ? comm : "");
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (!stat(path, &st)) {
		pp->exe_dev = st.st_dev;
		pp->exe_ino = st.st_ino;
		for (size_t i = 0; i < a->nnot_python; i++)
			if (a->not_python[i].dev == st.st_dev && a->not_python[i].ino == st.st_ino)
				pp->deadline = pp->next_try;
	}
}

static void remember_not_python(struct attach_args *a, const struct pending_proc *pp)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pp->pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0 || (!pp->exe_dev && !pp->exe_ino))
		return;
	exe[n] = '\0';
	/* an interpreter whose libpython came late is not to be doubted later */
	if (strstr(exe, "python") || a->nnot_python >= MAX_NOT_PYTHON)
		return;
	if (!a->not_python) {
		a->not_python = calloc(MAX_NOT_PYTHON, sizeof(*a->not_python));
		if (!a->not_python)
			return;
	}
	a->not_python[a->nnot_python++] = (struct not_python){ pp->exe_dev, pp->exe_ino };
}

static void on_exec(void *ctx, pid_t pid)
{
	add_pending(ctx, pid, NULL, 0);
}

static void on_exec_comm(void *ctx, pid_t pid, const char *comm)
{
	add_pending(ctx, pid, comm, 0);
}

/* A forked worker is traced too; a child that execs at once (a subprocess)
 * is examined as the program it execs. */
static void on_fork(void *ctx, pid_t pid, pid_t parent, const char *comm)
{
	(void)parent;
	add_pending(ctx, pid, comm, 0.1);
}

/* --all: processes that exec'd or forked recently and may be (becoming) Python. */
static void examine_pending(struct attach_args *a)
{
	double now = now_s();
	size_t i = 0;

	while (i < a->npending) {
		struct tm_error err = { "" };
		struct pending_proc *pp = &a->pending[i];
		bool done = true;
		int r;

		if (now < pp->next_try) {
			i++;
			continue;
		}
		if (cli_trace_pid_gone(pp->pid)) {
			/* its maps are gone with it: its name says what it was */
			if (looks_like_python(pp->pid) || !strncmp(pp->comm, "python", 6))
				add_skipped_comm(&a->tc, pp->pid, pp->comm,
						 "exited before it could be traced");
		} else {
			r = trace_pid(a, pp->pid, true, &err);
			pp = &a->pending[i];    /* it may have added children: moved */
			if (r && now < pp->deadline) {
				/* not mapped yet, or mapped in part: look again, less
				 * and less often (5 ms, 10, 20, then every 40) */
				done = false;
				pp->next_try = now + 0.005 * (1u << (pp->tries < 3 ? pp->tries : 3));
				pp->tries++;
			} else if (r && looks_like_python(pp->pid)) {
				add_skipped(&a->tc, pp->pid, err.msg[0] ? err.msg : "not a CPython process");
			} else if (r == 1 && pp->tries) {
				remember_not_python(a, pp);
			} else if (!r && pp->tries && a->tc.verbose) {
				fprintf(stderr, "tmbpf: PID %d: its interpreter was mapped at look %u\n",
					(int)pp->pid, pp->tries + 1);
			}
		}
		if (done)
			*pp = a->pending[--a->npending];
		else
			i++;
	}
}

static int attach_run(int argc, char **argv)
{
	struct attach_args a;
	struct trace_cli *tc = &a.tc;
	struct tm_error err = { "" };
	double deadline = 0, next_snapshot = 0;
	int nargs, ret;
	char **args;

	memset(&a, 0, sizeof(a));
	cli_trace_init(tc);
	ret = cli_parse(&attach_spec, argc, argv, &a, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_USAGE;
	if (cli_trace_finish(tc))
		goto out;
	if (!a.pid == !tc->all) {
		cli_err(a.pid ? "attach: -p PID and --all exclude each other"
			      : "attach: which process? give -p PID (or --all --growth)");
		goto out;
	}
	ret = CLI_EXIT_RUNTIME;
	if (cli_trace_check_root("attach"))
		goto out;
	if (a.pid && cli_trace_pid_gone(a.pid)) {
		cli_err("no such process: %d", (int)a.pid);
		goto out;
	}
	if (a.pid) {
		/* examine the target before loading anything */
		struct py_interp *probe = calloc(1, sizeof(*probe));

		if (!probe) {
			cli_err("out of memory");
			goto out;
		}
		if (py_interp_open_pid(a.pid, probe, &err)) {
			cli_err("%s", err.msg);
			free(probe);
			goto out;
		}
		free(probe);
	}
	if (tc->all) {
		tc->on_exec_comm = on_exec_comm;
		tc->on_fork = on_fork;
	}
	if (cli_trace_open(tc, tc->all ? on_exec : NULL, &a))
		goto out;
	cli_trace_catch_signals();
	if (a.pid) {
		if (trace_pid(&a, a.pid, false, &err)) {
			cli_err("%s", err.msg[0] ? err.msg : "not a CPython process");
			goto out;
		}
		fprintf(stderr, "tmbpf: tracing PID %d (%s tier); Ctrl-C to stop\n", (int)a.pid,
			tc->growth ? "growth" : "exact");
	} else {
		scan_processes(&a);
		fprintf(stderr, "tmbpf: tracing %zu CPython process(es) and every new one; Ctrl-C to stop\n",
			tc->nprocs);
	}
	if (tc->duration > 0)
		deadline = now_s() + tc->duration;
	if (tc->interval > 0)
		next_snapshot = now_s() + tc->interval;
	while (!cli_trace_stop) {
		/* a process waiting for its interpreter to be mapped is looked at soon */
		if (cli_trace_poll(tc, a.npending ? 5 : 50) < 0 && errno != EINTR) {
			cli_err("reading BPF events failed: %s", strerror(errno));
			break;
		}
		/* ended ones first: an exec'd PID may be traced again below */
		for (size_t i = 0; i < tc->nprocs; i++) {
			struct traced_proc *p = tc->procs[i];

			if (p->exited || (!p->ended && !cli_trace_pid_gone(p->pid)))
				continue;
			if (tc->all || p->ended == GROWTH_END_EXEC)
				fprintf(stderr, "tmbpf: PID %d %s\n", (int)p->pid,
					p->ended == GROWTH_END_EXEC ?
					"exec'd another program: its trace ends" : "exited");
			if (tc->growth)
				cli_trace_end(tc, p);   /* its final snapshot, now */
			else
				p->exited = true;
		}
		if (tc->all)
			examine_pending(&a);
		if (!a.npending)
			cli_trace_release_ended(tc, 4);
		if (a.pid && tc->nprocs && tc->procs[0]->exited)
			break;
		if (deadline && now_s() >= deadline)
			break;
		if (tc->interval > 0 && now_s() >= next_snapshot) {
			for (size_t i = 0; i < tc->nprocs; i++)
				if (!tc->procs[i]->exited)
					tm_snapshot_free(cli_trace_snapshot_to_file(tc, tc->procs[i]));
			next_snapshot += tc->interval;
		}
	}
	ret = cli_trace_finish_all(tc) ? CLI_EXIT_RUNTIME : CLI_EXIT_OK;
out:
	cli_trace_destroy(tc);
	free(a.pending);
	free(a.not_python);
	return ret;
}

const struct cli_command cli_cmd_attach = {
	.name = "attach",
	.summary = "Trace a running Python process, or all of them",
	.run = attach_run,
};
