// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli/cli_trace.h"
#include "output/counters.h"
#include "output/report.h"
#include "snapshot/format.h"
#include "snapshot/snapfile.h"
#include "tracer/bpf_util.h"

volatile sig_atomic_t cli_trace_stop;

enum {
	OPT_NFRAME = CLI_OPT_BASE + 0x40,
	OPT_INTERVAL,
	OPT_DURATION = CLI_TRACE_OPT_DURATION,
	OPT_ALL = CLI_TRACE_OPT_ALL,
	OPT_GROWTH = CLI_OPT_BASE + 0x50,
	OPT_SAMPLE_PAGES,
	OPT_MAX_TRACES,
	OPT_MAX_WALK,
	OPT_NO_REATTRIBUTE,
	OPT_OUTPUT = 'o',
	OPT_VERBOSE = 'v',
	OPT_QUIET = 'q',
};

const struct argp_option cli_trace_options[] = {
	{ NULL, 0, NULL, 0, "Tracing:", 3 },
	{ "nframe", OPT_NFRAME, "N", 0,
	  "Store N frames per traceback (1..256, default 1, as tracemalloc.start())", 3 },
	{ "output", OPT_OUTPUT, "FILE", 0,
	  "Write snapshots to FILE (default tmbpf-PID.tmbpf; a .pickle/.pkl name writes "
	  "CPython's format); several snapshots get .N before the extension", 3 },
	{ "interval", OPT_INTERVAL, "SECONDS", 0, "Also write a snapshot every SECONDS", 3 },
	{ "growth", OPT_GROWTH, NULL, 0,
	  "Growth tier: page faults, brk and mmap tracepoints, no trap in the target "
	  "(the production mode); traces are resident pages (domain 1) and mappings "
	  "(domain 2)", 3 },
	{ "sample-pages", OPT_SAMPLE_PAGES, "N", 0,
	  "Growth tier: one traceback per N faulted pages on average (default 16, 1 = every "
	  "fault)", 3 },
	{ "max-traces", OPT_MAX_TRACES, "N", 0,
	  "Exact tier: room for N live blocks in BPF, preallocated (~90 bytes each; default 1048576); more are counted as lost", 3 },
	{ "max-walk", OPT_MAX_WALK, "N", 0,
	  "Count at most N frames per stack for total_nframe (default 1024)", 3 },
	{ "no-reattribute", OPT_NO_REATTRIBUTE, NULL, 0,
	  "Exact tier: do not follow objects reused from free lists (_Py_NewReference); "
	  "cheaper, but such objects keep their first traceback", 3 },
	{ "quiet", OPT_QUIET, NULL, 0, "Print no report, only write the snapshots", 3 },
	{ "verbose", OPT_VERBOSE, NULL, 0, "Show the probes and libbpf's messages", 3 },
	{ 0 },
};

void cli_trace_init(struct trace_cli *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->nframe = 1;
	tc->max_walk = PY_DEFAULT_MAX_WALK;
	tc->max_traces = EXACT_DEFAULT_MAX_TRACES;
	tc->sample_pages = 16;
	tc->reattribute = true;
	cli_analysis_init(&tc->analysis);
	tc->started_ns = tm_now_ns();
}

static int parse_seconds(const char *arg, const char *what, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (!arg[0] || *end || errno || !(v > 0) || v > 1e9) {
		cli_err("invalid %s: '%s' (a number of seconds > 0)", what, arg);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_trace_parse_opt(struct trace_cli *tc, int key, char *arg)
{
	uint64_t v;
	int r = cli_analysis_parse_opt(&tc->analysis, key, arg);

	if (r != 1)
		return r;
	switch (key) {
	case OPT_NFRAME:
		if (cli_parse_u64_range(arg, "--nframe", 1, PY_MAX_NFRAME, &v))
			return -1;
		tc->nframe = (uint32_t)v;
		return 0;
	case OPT_OUTPUT:
		tc->output = arg;
		return 0;
	case OPT_INTERVAL:
		return parse_seconds(arg, "--interval", &tc->interval);
	case OPT_DURATION:
		return parse_seconds(arg, "--duration", &tc->duration);
	case OPT_GROWTH:
		tc->growth = true;
		return 0;
	case OPT_ALL:
		tc->all = true;
		return 0;
	case OPT_SAMPLE_PAGES:
		if (cli_parse_u64_range(arg, "--sample-pages", 1, 1u << 20, &v))
			return -1;
		tc->sample_pages = (uint32_t)v;
		return 0;
	case OPT_MAX_TRACES:
		if (cli_parse_u64_range(arg, "--max-traces", 1024, 1u << 28, &v))
			return -1;
		tc->max_traces = (uint32_t)v;
		return 0;
	case OPT_MAX_WALK:
		if (cli_parse_u64_range(arg, "--max-walk", 1, 65535, &v))
			return -1;
		tc->max_walk = (uint32_t)v;
		return 0;
	case OPT_NO_REATTRIBUTE:
		tc->reattribute = false;
		return 0;
	case OPT_QUIET:
		tc->quiet = true;
		return 0;
	case OPT_VERBOSE:
		tc->verbose = true;
		return 0;
	}
	return 1;
}

int cli_trace_finish(struct trace_cli *tc)
{
	if (cli_analysis_finish(&tc->analysis))
		return -1;
	if (tc->analysis.json) {
		cli_err("--json is not available for the report of a live trace; "
			"use 'tmbpf stats --json' on the snapshot file");
		return -1;
	}
	if (tc->nframe > tc->max_walk)
		tc->max_walk = tc->nframe;
	return 0;
}

void cli_trace_destroy(struct trace_cli *tc)
{
	exact_tracer_close(tc->exact);
	growth_tracer_close(tc->growth_t);
	symbolizer_free(tc->sym);
	for (size_t i = 0; i < tc->nprocs; i++) {
		free(tc->procs[i]->pi);
		free(tc->procs[i]->command);
		free(tc->procs[i]->coverage_note);
		free(tc->procs[i]->final_report);
		free(tc->procs[i]);
	}
	free(tc->procs);
	for (size_t i = 0; i < tc->nfiles; i++)
		free(tc->files[i].coverage_note);
	free(tc->files);
	for (size_t i = 0; i < tc->nskipped; i++)
		free(tc->skipped[i]);
	free(tc->skipped);
	cli_analysis_destroy(&tc->analysis);
	memset(tc, 0, sizeof(*tc));
}

int cli_trace_parse_pid(const char *arg, pid_t *out)
{
	uint64_t v;

	if (cli_parse_u64(arg, "PID", INT_MAX, &v))
		return -1;
	if (v < 1) {
		cli_err("invalid PID: '%s'", arg);
		return -1;
	}
	*out = (pid_t)v;
	return 0;
}

int cli_trace_check_root(const char *what)
{
	if (geteuid() != 0) {
		cli_err("%s needs root: loading BPF programs and reading another process's "
			"memory take CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE", what);
		return -1;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	cli_trace_stop = 1;
}

void cli_trace_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Growth tier: the tracer's callbacks (inside cli_trace_poll) only take
 * note; the commands act once the poll returns. */
struct growth_cb_ctx {
	struct trace_cli *tc;
	growth_exec_cb on_exec;
	void *ctx;
};

static struct growth_cb_ctx growth_cbs;

static void growth_on_exec(void *ctx, pid_t pid, const char *comm)
{
	struct growth_cb_ctx *c = ctx;

	if (c->tc->on_exec_comm)
		c->tc->on_exec_comm(c->ctx, pid, comm);
	else if (c->on_exec)
		c->on_exec(c->ctx, pid);
}

static void growth_on_fork(void *ctx, pid_t pid, pid_t parent, const char *comm)
{
	struct growth_cb_ctx *c = ctx;

	if (c->tc->on_fork)
		c->tc->on_fork(c->ctx, pid, parent, comm);
}

static void growth_on_end(void *ctx, pid_t pid, enum growth_end why)
{
	struct growth_cb_ctx *c = ctx;

	for (size_t i = 0; i < c->tc->nprocs; i++) {
		struct traced_proc *p = c->tc->procs[i];

		if (p->pid == pid && !p->exited && !p->ended)
			p->ended = why;
	}
}

int cli_trace_open(struct trace_cli *tc, growth_exec_cb on_exec, void *cb_ctx)
{
	struct tm_error err = { "" };
	struct frame_resolver resolver;

	tc->sym = symbolizer_new();
	if (!tc->sym) {
		cli_err("out of memory");
		return -1;
	}
	resolver = symbolizer_resolver(tc->sym);
	if (tc->growth) {
		struct growth_opts go = {
			.nframe = tc->nframe,
			.max_walk = tc->max_walk,
			.sample_pages = tc->sample_pages,
			.host_wide = tc->all,
			.verbose = tc->verbose,
		};

		struct growth_callbacks cb = {
			.on_exec = growth_on_exec,
			.on_fork = growth_on_fork,
			.on_end = growth_on_end,
			.ctx = &growth_cbs,
		};

		growth_cbs = (struct growth_cb_ctx){ tc, on_exec, cb_ctx };
		tc->growth_t = growth_tracer_open(&go, &resolver, &cb, &err);
		if (!tc->growth_t) {
			cli_err("%s", err.msg);
			return -1;
		}
	} else {
		struct exact_opts eo = {
			.nframe = tc->nframe,
			.max_walk = tc->max_walk,
			.max_traces = tc->max_traces,
			.reattribute = tc->reattribute,
			.verbose = tc->verbose,
			.host_wide = tc->all,
			.on_exec = on_exec,
			.exec_ctx = cb_ctx,
		};

		tc->exact = exact_tracer_open(&eo, &resolver, &err);
		if (!tc->exact) {
			cli_err("%s", err.msg);
			return -1;
		}
	}
	return 0;
}

char *cli_proc_cmdline(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return strdup("?");
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return strdup("?");
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strdup(buf);
}

/* Host-wide exact mode: the interpreter file's probes, attached once. */
static struct traced_file *file_probes(struct trace_cli *tc, const struct py_interp *pi,
				       struct tm_error *err)
{
	struct capture_plan *plan;
	struct traced_file *f, *n;
	struct stat st;

	if (stat(pi->host_path, &st)) {
		tm_error_set(err, "%s: %s", pi->host_path, strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < tc->nfiles; i++)
		if (tc->files[i].dev == st.st_dev && tc->files[i].ino == st.st_ino)
			return &tc->files[i];
	plan = calloc(1, sizeof(*plan));
	n = realloc(tc->files, (tc->nfiles + 1) * sizeof(*n));
	if (!plan || !n) {
		free(plan);
		tm_error_set(err, "out of memory");
		return NULL;
	}
	tc->files = n;
	if (capture_plan_for_file(pi, tc->reattribute, plan, err) ||
	    exact_tracer_attach_file(tc->exact, plan->probes, plan->nprobes, err)) {
		free(plan);
		return NULL;
	}
	f = &tc->files[tc->nfiles++];
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->coverage = plan->coverage;
	f->coverage_note = strdup(plan->coverage_note);
	fprintf(stderr, "tmbpf: probes attached to %s for every process running it (%zu probes)\n",
		pi->host_path, plan->nprobes);
	free(plan);
	return f;
}

/* Growth tier: with transparent huge pages always on, one fault can make 2 MiB
 * resident, and the tracepoint does not say so. */
static bool thp_always(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "[always]") != NULL;
}

struct traced_proc *cli_trace_add(struct trace_cli *tc, pid_t pid, struct py_interp *pi,
				  const struct capture_plan *plan, const char *command,
				  struct tm_error *err)
{
	struct traced_proc *p;
	struct py_proc cfg;
	unsigned incarnation = 1;

	/* its PID was traced before (an exec, or a reused PID): that trace
	 * ends here if nothing ended it yet, and the new one is told apart */
	for (size_t i = 0; i < tc->nprocs; i++) {
		struct traced_proc *o = tc->procs[i];

		if (o->pid != pid)
			continue;
		if (o->incarnation >= incarnation)
			incarnation = o->incarnation + 1;
		if (tc->growth && !o->final_report && !o->reported) {
			o->exited = true;
			cli_trace_end(tc, o);
		}
	}
	if (tc->nprocs == tc->procs_cap) {
		size_t c = tc->procs_cap ? tc->procs_cap * 2 : 8;
		struct traced_proc **n = realloc(tc->procs, c * sizeof(*n));

		if (!n)
			goto oom;
		tc->procs = n;
		tc->procs_cap = c;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto oom;
	p->pid = pid;
	p->pi = pi;
	p->incarnation = incarnation;
	p->command = strdup(command ? command : "?");
	symbolizer_proc_config(pi, &cfg);
	if (plan && plan->start_gate)
		cfg.flags |= PY_PROC_WAIT_START;
	if (symbolizer_add(tc->sym, pid, pi) < 0) {
		free(p->command);
		free(p);
		goto oom;
	}
	if (tc->growth) {
		p->coverage = tc->sample_pages > 1 ? TM_COVERAGE_SAMPLED : TM_COVERAGE_COMPLETE;
		p->coverage_note = strdup(tc->sample_pages > 1 ?
			(thp_always() ? "page faults sampled with random gaps; sizes are estimates, and "
				"low where a fault maps a transparent huge page (enabled: always)" :
			 "page faults sampled with random gaps; sizes are estimates") :
			(thp_always() ? "every not-present page fault; a fault that maps a transparent "
				"huge page (enabled: always) counts one page" :
			 "every not-present page fault"));
		if (growth_tracer_add_process(tc->growth_t, pid, &cfg, err) < 0)
			goto fail;
	} else if (!plan) {
		struct traced_file *f = file_probes(tc, pi, err);

		if (!f || exact_tracer_add_process(tc->exact, pid, &cfg, NULL, 0, err) < 0)
			goto fail;
		p->coverage = f->coverage;
		p->coverage_note = strdup(f->coverage_note);
	} else {
		p->coverage = plan->coverage;
		p->coverage_note = strdup(plan->coverage_note);
		if (tc->verbose)
			for (size_t i = 0; i < plan->nprobes; i++)
				fprintf(stderr, "tmbpf: probe %s at %s:0x%" PRIx64 "%s\n",
					plan->probes[i].name, plan->probes[i].binary,
					plan->probes[i].file_offset,
					plan->probes[i].fn <= EXACT_FN_REALLOC ? " (+return)" :
					plan->probes[i].fn == EXACT_FN_START ? " (return only)" : "");
		if (exact_tracer_add_process(tc->exact, pid, &cfg, plan->probes, plan->nprobes, err) < 0)
			goto fail;
	}
	tc->procs[tc->nprocs++] = p;
	return p;
fail:
	symbolizer_remove(tc->sym, pid);
	free(p->command);
	free(p->coverage_note);
	free(p);
	return NULL;
oom:
	tm_error_set(err, "out of memory");
	return NULL;
}

int cli_trace_poll(struct trace_cli *tc, int timeout_ms)
{
	return tc->growth ? growth_tracer_poll(tc->growth_t, timeout_ms) :
			    exact_tracer_poll(tc->exact, timeout_ms);
}

static bool is_pickle_name(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot && (!strcmp(dot, ".pickle") || !strcmp(dot, ".pkl"));
}

/* BASE.EXT -> BASE[.PID][.SEQ].EXT (default BASE.EXT: tmbpf-PID.tmbpf) */
static char *snapshot_path(const struct trace_cli *tc, const struct traced_proc *p, unsigned seq)
{
	char *def = NULL, *out = NULL, pid[32];
	const char *base = tc->output, *slash, *dot;
	int stem;

	/* a PID traced again (exec, reuse) must not overwrite the first files */
	if (p->incarnation > 1)
		snprintf(pid, sizeof(pid), "%d-%u", (int)p->pid, p->incarnation);
	else
		snprintf(pid, sizeof(pid), "%d", (int)p->pid);
	if (!base) {
		if (asprintf(&def, "tmbpf-%s.tmbpf", pid) < 0)
			return NULL;
		base = def;
	}
	slash = strrchr(base, '/');
	dot = strrchr(base, '.');
	if (!dot || (slash && dot < slash + 2) || dot == base)
		dot = base + strlen(base);
	stem = (int)(dot - base);
	if (tc->all && tc->output && seq)
		(void)!asprintf(&out, "%.*s.%s.%u%s", stem, base, pid, seq, dot);
	else if (tc->all && tc->output)
		(void)!asprintf(&out, "%.*s.%s%s", stem, base, pid, dot);
	else if (seq)
		(void)!asprintf(&out, "%.*s.%u%s", stem, base, seq, dot);
	else
		(void)!asprintf(&out, "%s", base);
	free(def);
	return out;
}

static struct tm_snapshot *take_snapshot(struct trace_cli *tc, struct traced_proc *p,
					 struct tm_error *err)
{
	struct tm_snapshot *s;
	char python[PATH_MAX + 48];

	s = tc->growth ? growth_tracer_snapshot(tc->growth_t, p->pid, err) :
			 exact_tracer_snapshot(tc->exact, p->pid, err);
	if (!s)
		return NULL;
	snprintf(python, sizeof(python), "%s %s", p->pi->version, p->pi->target_path);
	s->capture.command = tm_intern_string(s, p->command, strlen(p->command));
	s->capture.python = tm_intern_string(s, python, strlen(python));
	s->capture.coverage = p->coverage;
	s->capture.coverage_note = tm_intern_string(s, p->coverage_note, strlen(p->coverage_note));
	if (!s->capture.start_ns)
		s->capture.start_ns = tc->started_ns;
	if (!tc->growth) {
		struct py_code_stats cs = symbolizer_stats(tc->sym, p->pid);

		tm_set_counter(s, "code.not_code_object", cs.not_code);
		tm_set_counter(s, "code.read_faults", cs.read_faults);
		tm_set_counter(s, "code.bad_table", cs.bad_table + cs.table_too_long);
		tm_set_counter(s, "code.replaced", symbolizer_replaced(tc->sym, p->pid));
		tm_set_counter(s, "resolve.from_bpf_copy", symbolizer_from_copy(tc->sym, p->pid));
	}
	return s;
}

struct tm_snapshot *cli_trace_snapshot_to_file(struct trace_cli *tc, struct traced_proc *p)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = take_snapshot(tc, p, &err);
	char *path;
	int r;

	if (!s) {
		cli_err("PID %d: %s", (int)p->pid, err.msg);
		return NULL;
	}
	p->seq++;
	path = snapshot_path(tc, p, tc->interval > 0 ? p->seq : 0);
	if (!path) {
		cli_err("out of memory");
		tm_snapshot_free(s);
		return NULL;
	}
	/* a pickle is for the traced interpreter's tracemalloc: 3.8's
	 * Snapshot.statistics() unpacks 3-tuple traces, 3.9+ 4-tuples */
	r = is_pickle_name(path) ?
		tm_snapshot_save_pickle(s, path, p->pi->major == 3 && p->pi->minor == 8 ?
					TM_PICKLE_PY38 : TM_PICKLE_PY39, &err) :
		tm_snapshot_save_native(s, path, &err);
	if (r) {
		cli_err("%s", err.msg);
		free(path);
		tm_snapshot_free(s);
		return NULL;
	}
	fprintf(stderr, "tmbpf: PID %d: snapshot %s (%" PRIu64 " traces)\n", (int)p->pid, path,
		s->ntraces);
	free(path);
	return s;
}

/* The report of one process: header, display top, memory, losses. */
static int report_proc(struct trace_cli *tc, struct traced_proc *p, struct tm_snapshot *s,
		       FILE *out)
{
	char root[64], a[TM_SIZE_BUF], b[TM_SIZE_BUF];
	const char *root_dir = NULL;
	struct tm_error err = { "" };
	bool losses = false;

	fprintf(out, "tmbpf: PID %d: ", (int)p->pid);
	tm_fputs_pystr(out, (struct tm_str){ p->command, (uint32_t)strlen(p->command) });
	fprintf(out, "\nCPython %s (%s), %s tier, coverage %s: %s\n", p->pi->version,
		p->pi->target_path, report_tier_name(s->capture.tier), report_coverage_name(p->coverage),
		p->coverage_note);
	if (tc->growth && p->ended == GROWTH_END_EXEC)
		fprintf(out, "It exec'd another program: its trace ended there, with what it held then.\n");
	else if (tc->growth && p->ended == GROWTH_END_EXIT)
		fprintf(out, "It exited: what it held when it ended.\n");
	if (!p->exited) {
		snprintf(root, sizeof(root), "/proc/%d/root", (int)p->pid);
		root_dir = root;
	}
	if (cli_analysis_filter(&tc->analysis, s))
		return -1;
	if (tc->growth) {
		/* the pages held, before any filter: the share of the RSS growth
		 * they explain does not depend on what the report shows */
		uint64_t pages = s->capture.traced_current;
		uint64_t start = report_counter(s, "rss.start"), now = report_counter(s, "rss.now");

		/* the file was written before: filtering in place is fine */
		switch (cli_trace_growth_default_domain(&tc->analysis, s, &err)) {
		case 1:
			fprintf(out, "Resident memory that grew while tracing (domain %u), by line:\n",
				TM_GROWTH_DOMAIN_PAGES);
			break;
		case 0:
			fprintf(out, "Growth while tracing (domains as filtered), by line:\n");
			break;
		default:
			cli_err("%s", err.msg);
			return -1;
		}
		if (report_display_top(out, s, tc->analysis.key_type, tc->analysis.limit, root_dir, &err)) {
			cli_err("%s", err.msg);
			return -1;
		}
		fprintf(out, "Pages faulted: %" PRIu64 " (%" PRIu64 " by the kernel for it, %" PRIu64
			" sampled), released: %" PRIu64 "; mapped %s, unmapped %s\n",
			report_counter(s, "pages.faulted"), report_counter(s, "pages.kernel_faulted"),
			report_counter(s, "pages.sampled"), report_counter(s, "pages.released"),
			tm_format_size_u(a, report_counter(s, "bytes.mapped"), false),
			tm_format_size_u(b, report_counter(s, "bytes.unmapped"), false));
		if (now && start && !p->ended) {
			char c[TM_SIZE_BUF], d[TM_SIZE_BUF];
			int64_t growth = (int64_t)now - (int64_t)start;

			fprintf(out, "RSS: %s at start, %s now (%s); attributed resident growth %s",
				tm_format_size_u(a, start, false), tm_format_size_u(b, now, false),
				tm_format_size(c, growth, true), tm_format_size_u(d, pages, false));
			if (growth > 0)
				fprintf(out, " = %.1f%% of the RSS growth", 100.0 * (double)pages / (double)growth);
			fputc('\n', out);
		} else if (start) {
			char d[TM_SIZE_BUF];

			fprintf(out, "RSS: %s at start; attributed resident growth %s when it ended (peak %s)\n",
				tm_format_size_u(a, start, false), tm_format_size_u(b, pages, false),
				tm_format_size_u(d, s->capture.traced_peak, false));
		}
	} else {
		if (report_display_top(out, s, tc->analysis.key_type, tc->analysis.limit, root_dir, &err)) {
			cli_err("%s", err.msg);
			return -1;
		}
		fprintf(out, "Traced memory: current=%s, peak=%s\n",
			tm_format_size_u(a, s->capture.traced_current, false),
			tm_format_size_u(b, s->capture.traced_peak, false));
	}
	fprintf(out, "tmbpf memory: %s\n", tm_format_size_u(a, s->capture.tracer_memory, false));
	for (uint32_t i = 0; i < s->capture.ncounters; i++) {
		struct tm_str n = tm_string(s, s->capture.counters[i].name);

		if (!s->capture.counters[i].value)
			continue;
		if (!report_counter_is_loss(n))
			continue;
		if (!losses)
			fprintf(out, "Not seen or not resolved (counted):");
		losses = true;
		fprintf(out, " %.*s=%" PRIu64, (int)n.len, n.data, s->capture.counters[i].value);
	}
	if (losses)
		fputc('\n', out);
	return 0;
}

int cli_trace_end(struct trace_cli *tc, struct traced_proc *p)
{
	struct tm_snapshot *s;
	size_t len = 0;
	FILE *mem;
	int ret = 0;

	p->exited = true;
	if (!tc->growth || p->final_report || p->reported)
		return 0;
	/* found gone without an event (a lost one): BPF must stop too */
	if (!p->ended)
		p->ended = GROWTH_END_EXIT;
	growth_tracer_forget_process(tc->growth_t, p->pid);
	s = cli_trace_snapshot_to_file(tc, p);
	if (!s) {
		ret = -1;
	} else if (!tc->quiet) {
		mem = open_memstream(&p->final_report, &len);
		if (!mem || report_proc(tc, p, s, mem))
			ret = -1;
		if (mem && fclose(mem))
			ret = -1;
	}
	if (ret || tc->quiet) {
		free(p->final_report);
		p->final_report = NULL;
	}
	/* written (or failed, and said so): nothing more to report */
	if (!p->final_report)
		p->reported = true;
	tm_snapshot_free(s);
	growth_tracer_remove_process(tc->growth_t, p->pid);
	/* its symbolizer state is freed later (cli_trace_release_ended): that
	 * costs milliseconds that a process starting now may not have */
	p->symbols_kept = true;
	return ret;
}

void cli_trace_release_ended(struct trace_cli *tc, size_t max)
{
	for (size_t i = 0; i < tc->nprocs && max; i++) {
		struct traced_proc *p = tc->procs[i];
		bool live = false;

		if (!p->symbols_kept)
			continue;
		p->symbols_kept = false;
		/* a later trace of the same PID uses the state under that PID */
		for (size_t k = 0; k < tc->nprocs; k++)
			live |= tc->procs[k]->pid == p->pid && !tc->procs[k]->exited;
		if (!live)
			symbolizer_remove(tc->sym, p->pid);
		max--;
	}
}

int cli_trace_finish_all(struct trace_cli *tc)
{
	struct cli_output o;
	int ret = 0;

	if (!tc->quiet && cli_output_open(&o))
		return -1;
	for (size_t i = 0; i < tc->nprocs; i++) {
		struct traced_proc *p = tc->procs[i];
		struct tm_snapshot *s;

		if (p->reported)
			continue;
		p->reported = true;
		if (p->final_report) {
			/* it ended while traced: snapshot written then, report kept */
			if (!tc->quiet) {
				if (i)
					fputc('\n', o.fp);
				fputs(p->final_report, o.fp);
			}
			continue;
		}
		s = cli_trace_snapshot_to_file(tc, p);
		if (!s) {
			ret = -1;
			continue;
		}
		if (!tc->quiet) {
			if (i)
				fputc('\n', o.fp);
			if (report_proc(tc, p, s, o.fp))
				ret = -1;
		}
		tm_snapshot_free(s);
	}
	if (!tc->quiet) {
		if (tc->nskipped) {
			fprintf(o.fp, "\nPython processes not traced:\n");
			for (size_t i = 0; i < tc->nskipped; i++)
				fprintf(o.fp, "  %s\n", tc->skipped[i]);
		}
		if (cli_output_commit(&o))
			ret = -1;
	}
	return ret;
}

/* ---- one process at a time (tmbpf top) ---------------------------------- */

struct traced_proc *cli_trace_attach_pid(struct trace_cli *tc, pid_t pid, struct tm_error *err)
{
	struct py_interp *pi = calloc(1, sizeof(*pi));
	struct capture_plan *plan = NULL;
	struct traced_proc *p = NULL;
	char *command;

	if (!pi) {
		tm_error_set(err, "out of memory");
		return NULL;
	}
	if (py_interp_open_pid(pid, pi, err))
		goto out;
	if (!tc->growth) {
		plan = calloc(1, sizeof(*plan));
		if (!plan) {
			tm_error_set(err, "out of memory");
			goto out;
		}
		if (capture_plan_for_pid(pi, tc->reattribute, plan, err))
			goto out;
	}
	command = cli_proc_cmdline(pid);
	p = cli_trace_add(tc, pid, pi, plan, command, err);
	free(command);
out:
	if (!p)
		free(pi);               /* cli_trace_add took it on success */
	free(plan);
	return p;
}

struct tm_snapshot *cli_trace_snapshot(struct trace_cli *tc, struct traced_proc *p,
				       struct tm_error *err)
{
	return take_snapshot(tc, p, err);
}

bool cli_trace_pid_gone(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	if (kill(pid, 0) && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = 0;
	fclose(f);
	return state == 'Z' || state == 'X';
}

int cli_trace_growth_default_domain(const struct cli_analysis *a, struct tm_snapshot *s,
				    struct tm_error *err)
{
	struct tm_filter f;

	if (s->capture.tier != TM_TIER_GROWTH)
		return 0;
	for (size_t i = 0; i < a->nfilter_args; i++)
		if (a->filter_args[i].kind == CLI_INCLUDE_DOMAIN ||
		    a->filter_args[i].kind == CLI_EXCLUDE_DOMAIN || a->filter_args[i].domain >= 0)
			return 0;
	/* resident pages: mappings are address space, not memory */
	tm_domain_filter_init(&f, true, TM_GROWTH_DOMAIN_PAGES);
	return tm_snapshot_filter_traces(s, &f, 1, err) ? -1 : 1;
}
