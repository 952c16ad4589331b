/* SPDX-License-Identifier: MIT */
/*
 * The exact tracer: loads bpf/exact.bpf.c, attaches its uprobes to chosen
 * functions of one or more target processes (perf events bound to each PID, so
 * no other process traps), receives new stacks, and turns the live-block map
 * into a tracemalloc Snapshot.
 */
#ifndef TMBPF_EXACT_TRACER_H
#define TMBPF_EXACT_TRACER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "snapshot/snapshot.h"
#include "exact.h"
#include "pyframe.h"

/* Live blocks the BPF map has room for unless told (--max-traces). */
#define EXACT_DEFAULT_MAX_TRACES (1u << 20)

/* One probe point. */
struct exact_probe {
	const char *name;               /* for messages, e.g. "PyObject_Malloc" */
	const char *binary;             /* path to open (host view, /proc/PID/root/...) */
	uint64_t file_offset;           /* uprobe offset of the probed instruction */
	uint64_t vaddr;                 /* its link-time address (cookie: load bias) */
	enum exact_fn fn;
	bool ctx_arg;                   /* first argument is an allocator ctx */
	bool optional;                  /* attach failure is reported, not fatal */
};

struct exact_opts {
	uint32_t nframe;                /* traceback limit, 1..PY_MAX_NFRAME */
	uint32_t max_walk;              /* frames counted for total_nframe */
	uint32_t max_traces;            /* live-block map size, 0: EXACT_DEFAULT_MAX_TRACES */
	bool reattribute;               /* follow free-list reuse via _Py_NewReference */
	bool verbose;                   /* libbpf debug output */
	/* host-wide mode: on_exec(exec_ctx, pid) for every exec of the host */
	bool host_wide;
	void (*on_exec)(void *ctx, pid_t pid);
	void *exec_ctx;
};

/* Turns a recorded frame into (filename, lineno) while its code object is
 * alive. Returns 0, or -1 when the frame cannot be read (counted). */
struct frame_resolver {
	int (*resolve)(void *ctx, pid_t pid, const struct py_frame *f,
		       const char **filename, size_t *len, uint32_t *lineno);
	/* a copy of a code object, sent before the first stack that uses it */
	void (*add_code)(void *ctx, pid_t pid, const struct code_event *ev, size_t len);
	void *ctx;
};

struct exact_tracer;

struct exact_tracer *exact_tracer_open(const struct exact_opts *opts,
				       const struct frame_resolver *resolver,
				       struct tm_error *err);
void exact_tracer_close(struct exact_tracer *t);

/* Registers a process (its interpreter's offsets) and attaches its probes. */
int exact_tracer_add_process(struct exact_tracer *t, pid_t pid, const struct py_proc *cfg,
			     const struct exact_probe *probes, size_t nprobes,
			     struct tm_error *err);

/* Host-wide mode: attaches the probes to every process that runs the
 * interpreter file, now and later (one perf event per probe, not per
 * process); processes are then registered with no probes of their own. */
int exact_tracer_attach_file(struct exact_tracer *t, const struct exact_probe *probes,
			     size_t nprobes, struct tm_error *err);

/* Handles pending events for up to timeout_ms. Returns the number of events,
 * or -1 on error. */
int exact_tracer_poll(struct exact_tracer *t, int timeout_ms);

/* True once pid entered Py_FinalizeEx (its traces are frozen). */
bool exact_tracer_finalized(struct exact_tracer *t, pid_t pid);

/* Builds a snapshot of pid's live traces now (events are drained first). The
 * capture info (tier, counters, traced memory, tracer memory) is filled in;
 * the caller adds command/python/coverage. NULL with err on failure. */
struct tm_snapshot *exact_tracer_snapshot(struct exact_tracer *t, pid_t pid,
					  struct tm_error *err);

/* Counters of pid as BPF keeps them. */
int exact_tracer_stats(struct exact_tracer *t, pid_t pid, struct exact_stats *out);

/* get_tracemalloc_memory(): BPF map memory plus this process's heap. */
uint64_t exact_tracer_memory(struct exact_tracer *t);

#endif
