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
	GROWTH_EV_EXEC = 22,            /* a process exec'd: arg = GROWTH_EXEC_TRACED if it was traced */
	GROWTH_EV_EXIT = 23,            /* a traced process exited */
	GROWTH_EV_FORK = 24,            /* host-wide: a traced process forked tgid */
};

/* GROWTH_EV_EXEC and GROWTH_EV_FORK are struct growth_host_event. */
struct growth_host_event {
	__u32 type;
	__u32 tgid;
	__u32 parent;                   /* GROWTH_EV_FORK: the traced parent */
	__u32 arg;                      /* GROWTH_EV_EXEC: GROWTH_EXEC_TRACED */
	char comm[16];                  /* the new program's name (exec), the parent's (fork) */
};

/* GROWTH_EV_EXEC of a traced process: BPF stopped tracing it (its walker
 * offsets describe the old program); user space ends that trace. Execs of
 * other processes are only reported in host-wide mode. */
#define GROWTH_EXEC_TRACED 1u

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
	__u64 faults;                   /* not-present page faults on user pages (every one) */
	__u64 kernel_faults;            /* of which taken in the kernel (read(), recv()... into the page) */
	__u64 samples;                  /* faults sampled with a traceback */
	__u64 mmaps, munmaps, mremaps, madvises, brks;
	__u64 lost_events;              /* ring buffer full: an event was dropped */
	__u64 lost_pages;               /* faults the dropped samples stood for */
	__u64 lost_syscalls;            /* no per-thread slot for a syscall's arguments */
	/* Sampling. Faults are numbered 1, 2, ... (faults); a sample is taken at
	 * fault n when n - sampled_through >= sample_gap, by whichever thread
	 * wins a compare-and-swap of sampled_through; its weight is
	 * n - sampled_through. Weights are thus exact and add up to the faults
	 * up to the last sample, however many threads fault at once. */
	__u64 sampled_through;
	__u64 sample_gap;
	struct walk_counters walk;
};

#endif /* TMBPF_GROWTH_H */
