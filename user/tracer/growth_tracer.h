/* SPDX-License-Identifier: MIT */
/*
 * The growth tracer: loads bpf/growth.bpf.c (tracepoints only) for a set of
 * processes, keeps for each one the sampled pages and the mappings it still
 * holds with the tracebacks that made them, and turns that into a Snapshot:
 *
 *   domain TM_GROWTH_DOMAIN_PAGES     resident pages faulted in while tracing and
 *                                     not given back (munmap, madvise, brk), as
 *                                     runs of adjacent sampled pages; size = the
 *                                     pages the samples stand for
 *   domain TM_GROWTH_DOMAIN_MAPPINGS  address space mapped while tracing (mmap,
 *                                     mremap, brk growth) and still mapped
 */
#ifndef TMBPF_GROWTH_TRACER_H
#define TMBPF_GROWTH_TRACER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "snapshot/snapshot.h"
#include "tracer/exact_tracer.h"        /* struct frame_resolver */
#include "growth.h"

#define TM_GROWTH_DOMAIN_PAGES 1u
#define TM_GROWTH_DOMAIN_MAPPINGS 2u

struct growth_opts {
	uint32_t nframe;
	uint32_t max_walk;
	uint32_t sample_pages;          /* mean pages between fault samples; 1 = all */
	uint32_t ringbuf_bytes;         /* BPF ring buffer size (power of two); 0 = 8 MiB */
	bool host_wide;                 /* report execs and forks (tmbpf attach --all) */
	bool verbose;
};

/* Why a traced process stopped being traced by BPF. */
enum growth_end {
	GROWTH_END_EXIT = 1,            /* it exited */
	GROWTH_END_EXEC = 2,            /* it exec'd: another program runs under its PID */
};

typedef void (*growth_exec_cb)(void *ctx, pid_t pid);

/* Called from growth_tracer_poll(). comm: the task's name (NUL-terminated). */
struct growth_callbacks {
	/* host-wide mode: pid exec'd (any process of the host) the program comm */
	void (*on_exec)(void *ctx, pid_t pid, const char *comm);
	/* host-wide mode: traced process parent (comm) forked pid */
	void (*on_fork)(void *ctx, pid_t pid, pid_t parent, const char *comm);
	/* a traced process ended; its state stays for growth_tracer_snapshot()
	 * until growth_tracer_remove_process() */
	void (*on_end)(void *ctx, pid_t pid, enum growth_end why);
	void *ctx;
};

struct growth_tracer;

struct growth_tracer *growth_tracer_open(const struct growth_opts *opts,
					 const struct frame_resolver *resolver,
					 const struct growth_callbacks *cb, struct tm_error *err);
void growth_tracer_close(struct growth_tracer *t);

/* Starts tracing pid (its interpreter's offsets, bias known). A PID traced
 * before (reused, or exec'd) starts afresh: take the old one's snapshot first. */
int growth_tracer_add_process(struct growth_tracer *t, pid_t pid, const struct py_proc *cfg,
			      struct tm_error *err);
/* Stops tracing pid in BPF (it is gone); its state stays for growth_tracer_snapshot(). */
void growth_tracer_forget_process(struct growth_tracer *t, pid_t pid);
/* Drops everything about pid. */
void growth_tracer_remove_process(struct growth_tracer *t, pid_t pid);

/* Handles pending events for up to timeout_ms: 0 or more events, -1 on error. */
int growth_tracer_poll(struct growth_tracer *t, int timeout_ms);

/* Snapshot of what pid holds now (or held when it ended). */
struct tm_snapshot *growth_tracer_snapshot(struct growth_tracer *t, pid_t pid,
					   struct tm_error *err);

/* Resident set size of pid (bytes) when tracing started; 0 if unknown. */
uint64_t growth_tracer_rss_start(struct growth_tracer *t, pid_t pid);

/* Host-wide events (exec, fork) dropped because the ring buffer was full. */
uint64_t growth_tracer_lost_host_events(struct growth_tracer *t);

uint64_t growth_tracer_memory(struct growth_tracer *t);

#endif
