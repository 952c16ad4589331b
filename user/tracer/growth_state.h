/* SPDX-License-Identifier: MIT */
/*
 * What one process of the growth tier holds, apart from BPF (so that it can
 * be checked against the kernel in a test): the pages it faulted in while
 * traced and still has, and the mappings it created and still has, each with
 * the traceback (stack id) that caused it.
 *
 *   pages     sampled pages, page address -> (stack id, weight). A sample
 *             stands for `weight` faults: itself and the unsampled ones since
 *             the previous sample, so sizes are estimates unless every fault
 *             is sampled (weight 1).
 *   mappings  sorted, non-overlapping [start, end) intervals, split and
 *             trimmed by munmap, mremap and brk as the kernel does to the
 *             address space; a moved mapping keeps its tracebacks.
 */
#ifndef TMBPF_GROWTH_STATE_H
#define TMBPF_GROWTH_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "growth.h"

#define GROWTH_PAGE 4096ull

struct growth_page {
	uint64_t page;                  /* page address; 0 = empty slot (page 0 is never mapped) */
	uint64_t stack_id;
	uint32_t weight;                /* faults this sample stands for, >= 1 */
};

/* Open addressing, linear probing, backward-shift deletion: releases leave no
 * tombstones, so a table that churns stays as fast as a fresh one. */
struct growth_pages {
	struct growth_page *slots;
	size_t nslots, used;            /* nslots is 0 or a power of two */
};

struct growth_mapping {
	uint64_t start, end;
	uint64_t stack_id;
};

struct growth_state {
	struct growth_pages pages;
	struct growth_mapping *maps;
	size_t nmaps, maps_cap;
	uint64_t brk;                   /* program break last seen; 0 = unknown */
	/* counters, in pages (weights) and bytes */
	uint64_t pages_received;        /* weight of the fault samples applied */
	uint64_t pages_released;        /* weight given back (munmap, madvise, brk, mremap, MAP_FIXED) */
	uint64_t pages_held;            /* weight in the table now */
	uint64_t pages_peak;            /* highest pages_held */
	uint64_t pages_refaulted;       /* samples of a page already held (see growth_state_fault) */
	uint64_t pages_populated;       /* made resident with no fault (MAP_POPULATE...), weight 1 */
	uint64_t bytes_mapped;          /* address space added by mmap, mremap, brk */
	uint64_t bytes_unmapped;        /* mapped while traced, then removed */
	uint64_t oom;                   /* events applied only in part, for lack of memory */
};

void growth_state_init(struct growth_state *gs);
void growth_state_free(struct growth_state *gs);

/* Applies one BPF event (GROWTH_EV_FAULT ... GROWTH_EV_BRK; others are
 * ignored). Returns 0, or -1 if memory ran out (counted in gs->oom; the state
 * stays consistent, a sample or a mapping may be missing). */
int growth_state_apply(struct growth_state *gs, const struct growth_event *ev);

/* A sampled page that is faulted again without a release we saw (its page was
 * reclaimed and read back, or two threads faulted it at once) keeps one slot:
 * the page counts once, the other faults of both samples' gaps are kept. */
int growth_state_fault(struct growth_state *gs, uint64_t addr, uint64_t stack_id, uint32_t weight);

/* The sample of one page, or NULL. */
const struct growth_page *growth_state_page(const struct growth_state *gs, uint64_t addr);

/* Resident page runs: maximal runs of adjacent sampled pages with the same
 * stack, in address order; size = their weight in bytes. Calls fn for each
 * (stops and returns its value when non-zero). -1 if memory ran out. */
typedef int (*growth_run_fn)(void *ctx, uint64_t addr, uint64_t size, uint64_t stack_id);
int growth_state_page_runs(const struct growth_state *gs, growth_run_fn fn, void *ctx);

#endif
