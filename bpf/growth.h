/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The growth tier: which Python lines make a process's memory grow, from
 * tracepoints only (page faults, brk, mmap, mremap, munmap, madvise). Nothing
 * traps in the target: these events fire only when its memory really changes.
 * Shared by growth.bpf.c and its loader.
 */
#ifndef TMBPF_GROWTH_H
#define TMBPF_GROWTH_H

#include "pyframe.h"

/* Ring buffer records (besides PY_EV_STACK): struct growth_event. */
enum growth_event_type {
	GROWTH_EV_FAULT = 16,           /* sampled not-present fault: addr, weight pages */
	GROWTH_EV_MMAP = 17,            /* addr, len, prot, flags, fd */
	GROWTH_EV_MUNMAP = 18,          /* addr, len */
	GROWTH_EV_MREMAP = 19,          /* addr (new), len (new), old_addr, old_len */
	GROWTH_EV_MADVISE = 20,         /* addr, len, advice (only advice that frees pages) */
	GROWTH_EV_BRK = 21,             /* addr = new program break */
	GROWTH_EV_EXEC = 22,            /* a process exec'd (host-wide mode) */
	GROWTH_EV_EXIT = 23,            /* a traced process exited */
};

struct growth_event {
	__u32 type;
	__u32 tgid;
	__u64 stack_id;                 /* traceback of the thread that caused it */
	__u64 addr;
	__u64 len;
	__u64 old_addr;
	__u64 old_len;
	__u32 weight;                   /* pages this fault sample stands for */
	__u32 arg;                      /* prot / advice */
	__u32 flags;                    /* mmap flags */
	__s32 fd;
};

/* Per-process counters. */
struct growth_stats {
	__u64 faults;                   /* not-present user page faults (every one) */
	__u64 samples;                  /* faults sampled with a traceback */
	__u64 mmaps, munmaps, mremaps, madvises, brks;
	__u64 lost_events;              /* ring buffer full: an event was dropped */
	__u64 sample_countdown;         /* pages until the next sample */
	__u64 sample_gap;               /* the gap that countdown started from */
	struct walk_counters walk;
};

#endif /* TMBPF_GROWTH_H */
