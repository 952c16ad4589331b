/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The exact tier: what tracemalloc sees, from uprobes on the functions that
 * CPython's allocator domains dispatch to. Shared by exact.bpf.c and the loader.
 */
#ifndef TMBPF_EXACT_H
#define TMBPF_EXACT_H

#include "pyframe.h"

/* A uprobe's BPF cookie says what the probed function is and where it is:
 *   bits 0..3  enum exact_fn
 *   bit  4     EXACT_FN_CTX: the first argument is an allocator ctx (the
 *              functions behind PyMemAllocatorEx), so the real ones shift by one
 *   bits 8..63 link-time address of the probe in its module, so the program
 *              learns the module's load bias from the first hit (tmbpf run
 *              attaches before the program has even been mapped) */
enum exact_fn {
	EXACT_FN_MALLOC = 0,
	EXACT_FN_CALLOC = 1,
	EXACT_FN_REALLOC = 2,
	EXACT_FN_FREE = 3,
	EXACT_FN_TRACK = 4,             /* PyTraceMalloc_Track(domain, ptr, size) */
	EXACT_FN_UNTRACK = 5,           /* PyTraceMalloc_Untrack(domain, ptr) */
	EXACT_FN_NEWREF = 6,            /* _Py_NewReference(op): free-list reuse */
	EXACT_FN_FINALIZE = 7,          /* Py_FinalizeEx(): freeze the snapshot */
	EXACT_FN_START = 8,             /* return of _PySignal_Init(): where PYTHONTRACEMALLOC starts */
};
#define EXACT_FN_MASK 15ull
#define EXACT_FN_CTX (1ull << 4)
#define EXACT_COOKIE(fn, flags, vaddr) ((__u64)(fn) | (flags) | ((__u64)(vaddr) << 8))

/* Live blocks: (pid, domain, address) -> size and stack. */
struct block_key {
	__u64 addr;
	__u32 domain;
	__u32 tgid;
};

struct block_val {
	__u64 size;
	__u64 stack_id;                 /* 0: the stack event was lost */
};

/* Per-process counters: traced memory as get_traced_memory(), and every loss. */
struct exact_stats {
	__u64 traced_current;
	__u64 traced_peak;
	__u64 ntraces;
	__u64 allocs;                   /* blocks recorded */
	__u64 frees;                    /* traced blocks removed */
	__u64 reattributed;             /* free-list reuse: traceback replaced */
	__u64 lost_live_full;           /* live-block map full: block not recorded */
	__u64 missed_returns;           /* a uretprobe never fired (nesting reset) */
	__u64 after_finalize;           /* events ignored after Py_FinalizeEx */
	struct walk_counters walk;
};

/* Ring buffer records: stack events (PY_EV_STACK, see pyframe.h) and notes. */
#define EXACT_EV_FINALIZE 3             /* struct exact_note: Py_FinalizeEx entered */
#define EXACT_EV_EXEC 4                 /* struct exact_note: a process exec'd (host-wide mode) */

struct exact_note {
	__u32 type;
	__u32 tgid;
};

#endif /* TMBPF_EXACT_H */
