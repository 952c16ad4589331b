/* SPDX-License-Identifier: MIT */
/*
 * What `tmbpf run` and `tmbpf attach` share: the tracing options, the set of
 * traced processes, periodic and final snapshots written to files, and the
 * report printed at the end (tracemalloc's "display top" plus traced memory,
 * the tracer's own memory, coverage and every loss).
 */
#ifndef TMBPF_CLI_TRACE_H
#define TMBPF_CLI_TRACE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cli_common.h"
#include "tracer/capture_plan.h"
#include "tracer/exact_tracer.h"
#include "tracer/growth_tracer.h"
#include "tracer/pyinterp.h"
#include "tracer/symbolizer.h"

struct traced_proc {
	pid_t pid;
	struct py_interp *pi;
	char *command;                  /* its command line, for reports */
	enum tm_coverage coverage;
	char *coverage_note;
	bool exited;
	bool reported;
	unsigned seq;                   /* snapshots written so far */
	/* growth tier */
	unsigned incarnation;           /* 2, 3...: its PID was traced before (exec, reuse) */
	enum growth_end ended;          /* BPF stopped tracing it (exit, exec); 0 = no */
	char *final_report;             /* report rendered when it ended (cli_trace_end) */
	bool symbols_kept;              /* ended, its symbolizer state not freed yet */
};

/* Host-wide exact mode: an interpreter file whose probes are attached. */
struct traced_file {
	dev_t dev;
	ino_t ino;
	enum tm_coverage coverage;
	char *coverage_note;
};

struct trace_cli {
	/* options */
	uint32_t nframe;
	uint32_t max_walk;
	uint32_t max_traces;
	uint32_t sample_pages;          /* growth: mean pages per fault sample */
	const char *output;             /* -o FILE (NULL: tmbpf-PID.tmbpf) */
	double interval;                /* seconds between snapshots, 0 = only at the end */
	double duration;                /* attach: seconds, 0 = until Ctrl-C / exit */
	bool growth;
	bool all;
	bool reattribute;
	bool verbose;
	bool quiet;                     /* no report (files only) */
	struct cli_analysis analysis;   /* the final report's key type, limit, filters */

	/* state */
	struct symbolizer *sym;
	struct exact_tracer *exact;
	struct growth_tracer *growth_t;
	struct traced_proc **procs;
	size_t nprocs, procs_cap;
	struct traced_file *files;      /* --all, exact tier: probes per interpreter file */
	size_t nfiles;
	char **skipped;                 /* --all: "PID (command): reason" */
	size_t nskipped, skipped_cap;
	uint64_t started_ns;
	/* growth tier, host-wide (set before cli_trace_open, called with its
	 * cb_ctx): pid exec'd the program comm; traced process parent forked pid */
	void (*on_exec_comm)(void *ctx, pid_t pid, const char *comm);
	void (*on_fork)(void *ctx, pid_t pid, pid_t parent, const char *comm);
};

extern const struct argp_option cli_trace_options[];
/* keys of the attach-only options, for its own option table */
#define CLI_TRACE_OPT_DURATION (CLI_OPT_BASE + 0x60)
#define CLI_TRACE_OPT_ALL (CLI_OPT_BASE + 0x61)
#define CLI_TRACE_OPT_PID 'p'

void cli_trace_init(struct trace_cli *tc);
/* 0 handled, -1 error reported, 1 not a tracing/analysis option */
int cli_trace_parse_opt(struct trace_cli *tc, int key, char *arg);
/* Checks option combinations; 0 or -1 after cli_err(). */
int cli_trace_finish(struct trace_cli *tc);
void cli_trace_destroy(struct trace_cli *tc);

/* -p PID: a positive process id; 0, or -1 after cli_err(). */
int cli_trace_parse_pid(const char *arg, pid_t *out);

/* Needs root: 0, or -1 after cli_err(). */
int cli_trace_check_root(const char *what);

/* Opens the tracer of the chosen tier (exact, or growth). 0 or -1. */
int cli_trace_open(struct trace_cli *tc, growth_exec_cb on_exec, void *cb_ctx);

/* Registers a process (takes pi) with the tracer: for the exact tier, plan
 * is where to probe (NULL in host-wide mode: the probes of its interpreter
 * file are attached once, for every process, the first time it is seen). */
struct traced_proc *cli_trace_add(struct trace_cli *tc, pid_t pid, struct py_interp *pi,
				  const struct capture_plan *plan, const char *command,
				  struct tm_error *err);

int cli_trace_poll(struct trace_cli *tc, int timeout_ms);

/* Growth tier: p is gone (exited, exec'd another program, or found gone).
 * Writes its final snapshot now, with what it held when it ended, keeps its
 * report for cli_trace_finish_all() and drops the tracer's state, so that
 * its PID can be traced again. 0, or -1 after cli_err(). */
int cli_trace_end(struct trace_cli *tc, struct traced_proc *p);

/* Frees the symbolizer state of up to max processes that ended (each takes a
 * few milliseconds: host-wide mode does it when no new process waits). */
void cli_trace_release_ended(struct trace_cli *tc, size_t max);

/* Takes a snapshot of p now and writes it to its next file (printing the
 * name on stderr). Returns the snapshot (caller frees) or NULL after cli_err. */
struct tm_snapshot *cli_trace_snapshot_to_file(struct trace_cli *tc, struct traced_proc *p);

/* Final snapshot + report on stdout for every process not yet reported. */
int cli_trace_finish_all(struct trace_cli *tc);

/* The command line of pid from /proc (malloc'ed, never NULL on success). */
char *cli_proc_cmdline(pid_t pid);

/* Set by SIGINT/SIGTERM handlers installed with cli_trace_catch_signals(). */
extern volatile sig_atomic_t cli_trace_stop;
void cli_trace_catch_signals(void);

/* ---- one process at a time (tmbpf top) ---------------------------------- */

/* Starts tracing pid as `tmbpf attach -p PID` does: its interpreter examined
 * and, for the exact tier, its probes planned. The traced process, or NULL
 * with err. */
struct traced_proc *cli_trace_attach_pid(struct trace_cli *tc, pid_t pid, struct tm_error *err);

/* A snapshot of p now, with the capture information the reports show
 * (command, interpreter, coverage, counters); no file is written. The caller
 * frees it. NULL with err. */
struct tm_snapshot *cli_trace_snapshot(struct trace_cli *tc, struct traced_proc *p,
				       struct tm_error *err);

/* True once pid has exited, or is a zombie (which allocates no more). */
bool cli_trace_pid_gone(pid_t pid);

/* Growth-tier snapshots show domain 1 (resident pages) unless the filters
 * name a domain (--include-domain, --exclude-domain, PATTERN@DOMAIN): keeps
 * only domain 1 of s then. Returns 1 when it did, 0 when the user chose, -1
 * with err. Snapshots of other tiers are left alone (0). */
int cli_trace_growth_default_domain(const struct cli_analysis *a, struct tm_snapshot *s,
				    struct tm_error *err);

#endif
