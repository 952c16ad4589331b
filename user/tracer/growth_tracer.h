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
	bool host_wide;                 /* report execs (tmbpf attach --all) */
	bool verbose;
};

struct growth_tracer;

/* Called for every exec seen in host-wide mode (from growth_tracer_poll). */
typedef void (*growth_exec_cb)(void *ctx, pid_t pid);
/* Called when a traced process exits (its state is kept for a final snapshot). */
typedef void (*growth_exit_cb)(void *ctx, pid_t pid);

struct growth_tracer *growth_tracer_open(const struct growth_opts *opts,
					 const struct frame_resolver *resolver,
					 growth_exec_cb on_exec, growth_exit_cb on_exit, void *cb_ctx,
					 struct tm_error *err);
void growth_tracer_close(struct growth_tracer *t);

/* Starts tracing pid (its interpreter's offsets, bias known). */
int growth_tracer_add_process(struct growth_tracer *t, pid_t pid, const struct py_proc *cfg,
			      struct tm_error *err);
/* Stops tracing pid in BPF; its state stays for growth_tracer_snapshot(). */
void growth_tracer_forget_process(struct growth_tracer *t, pid_t pid);
/* Drops everything about pid. */
void growth_tracer_remove_process(struct growth_tracer *t, pid_t pid);

int growth_tracer_poll(struct growth_tracer *t, int timeout_ms);

/* Snapshot of what pid holds now (or held when it exited). */
struct tm_snapshot *growth_tracer_snapshot(struct growth_tracer *t, pid_t pid,
					   struct tm_error *err);

/* Resident set size of pid (bytes) when tracing started; 0 if unknown. */
uint64_t growth_tracer_rss_start(struct growth_tracer *t, pid_t pid);

uint64_t growth_tracer_memory(struct growth_tracer *t);

#endif
