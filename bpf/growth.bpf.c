// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Growth tier: memory growth of Python processes, attributed to Python lines,
 * from tracepoints only. Resident memory grows through not-present page faults
 * (first touch of anonymous memory, file pages mapped in) and shrinks through
 * munmap, madvise and brk; address space grows through mmap, mremap and brk.
 * Each of these events records the Python traceback of the thread causing it.
 *
 * Faults are sampled per process with random gaps of mean sample_pages: a
 * sample stands for the pages since the previous one, so the sum of weights is
 * the exact number of faults, and a fast-growing process pays for one stack
 * walk per sample, not per page. Processes are chosen by user space (map
 * "procs"); every other process costs one hash lookup per event.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "growth.h"
#include "pywalk.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 sample_pages = 16;         /* mean fault-sample gap; 1 = every fault */
const volatile bool report_execs = false;       /* host-wide mode: tell user space about execs */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);                     /* tgid */
	__type(value, struct py_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);                     /* tgid */
	__type(value, struct growth_stats);
} stats SEC(".maps");

/* A memory syscall in progress on a thread: its arguments and traceback. */
struct thread_syscall {
	__u64 stack_id;
	__u64 a0, a1, a2, a3, a4;
	__u32 nr;                               /* which GROWTH_EV_* it will produce */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_syscall);
} thread_syscalls SEC(".maps");

/* exceptions:page_fault_user */
struct fault_ctx {
	__u64 common;
	__u64 address;
	__u64 ip;
	__u64 error_code;
};

/* syscalls:sys_enter_* / sys_exit_* */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

#define X86_PF_PROT 1ull                        /* fault on a present page */
#define PAGE_SHIFT 12

static __always_inline struct py_proc *traced(__u32 tgid, struct growth_stats **st)
{
	struct py_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p)
		return 0;
	*st = bpf_map_lookup_elem(&stats, &tgid);
	return *st ? p : 0;
}

static __always_inline void emit(struct growth_stats *st, struct growth_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		__sync_fetch_and_add(&st->lost_events, 1);
}

static __always_inline __u64 next_gap(void)
{
	/* uniform on [1, 2*mean - 1]: mean sample_pages, no fixed stride to alias with */
	if (sample_pages <= 1)
		return 1;
	return 1 + bpf_get_prandom_u32() % (2 * sample_pages - 1);
}

SEC("tp/exceptions/page_fault_user")
int on_page_fault(struct fault_ctx *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct growth_event ev = {};
	struct growth_stats *st;
	struct py_proc *p;
	__s64 left;

	if (ctx->error_code & X86_PF_PROT)
		return 0;                       /* the page is present: nothing grows */
	p = traced(tgid, &st);
	if (!p)
		return 0;
	__sync_fetch_and_add(&st->faults, 1);
	left = (__s64)__sync_fetch_and_sub(&st->sample_countdown, 1) - 1;
	if (left > 0)
		return 0;
	ev.weight = (__u32)st->sample_gap;
	if (!ev.weight)
		ev.weight = 1;
	st->sample_gap = next_gap();
	st->sample_countdown = st->sample_gap;
	__sync_fetch_and_add(&st->samples, 1);
	ev.type = GROWTH_EV_FAULT;
	ev.tgid = tgid;
	ev.addr = ctx->address >> PAGE_SHIFT << PAGE_SHIFT;
	ev.stack_id = py_stack_id(p, tgid, &st->walk);
	emit(st, &ev);
	return 0;
}

/* Saves a syscall's arguments and the caller's traceback until it returns.
 * nargs is a constant per program: a tracepoint program may only read its
 * own event's fields (attach fails with EACCES otherwise). */
static __always_inline int syscall_enter(struct sys_enter_ctx *ctx, __u32 kind, int nargs)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct thread_syscall *t;
	struct growth_stats *st;
	struct py_proc *p = traced(tgid, &st);

	if (!p)
		return 0;
	t = bpf_task_storage_get(&thread_syscalls, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	t->nr = kind;
	t->a0 = ctx->args[0];
	t->a1 = nargs > 1 ? ctx->args[1] : 0;
	t->a2 = nargs > 2 ? ctx->args[2] : 0;
	t->a3 = nargs > 3 ? ctx->args[3] : 0;
	t->a4 = nargs > 4 ? ctx->args[4] : 0;
	/* releases need no traceback: they only remove what is there */
	t->stack_id = kind == GROWTH_EV_MUNMAP || kind == GROWTH_EV_MADVISE ? 0 :
		      py_stack_id(p, tgid, &st->walk);
	return 0;
}

static __always_inline int syscall_exit(struct sys_exit_ctx *ctx, __u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct growth_event ev = {};
	struct thread_syscall *t;
	struct growth_stats *st;
	struct py_proc *p = traced(tgid, &st);
	__s64 ret = ctx->ret;

	if (!p)
		return 0;
	t = bpf_task_storage_get(&thread_syscalls, bpf_get_current_task_btf(), 0, 0);
	if (!t || t->nr != kind)
		return 0;
	t->nr = 0;
	ev.type = kind;
	ev.tgid = tgid;
	ev.stack_id = t->stack_id;
	switch (kind) {
	case GROWTH_EV_MMAP:                    /* mmap(addr, len, prot, flags, fd, off) */
		if (ret < 0 && ret > -4096)
			return 0;
		ev.addr = (__u64)ret;
		ev.len = t->a1;
		ev.arg = (__u32)t->a2;
		ev.flags = (__u32)t->a3;
		ev.fd = (__s32)t->a4;
		__sync_fetch_and_add(&st->mmaps, 1);
		break;
	case GROWTH_EV_MUNMAP:                  /* munmap(addr, len) */
		if (ret)
			return 0;
		ev.addr = t->a0;
		ev.len = t->a1;
		__sync_fetch_and_add(&st->munmaps, 1);
		break;
	case GROWTH_EV_MREMAP:                  /* mremap(old, old_len, new_len, flags, new) */
		if (ret < 0 && ret > -4096)
			return 0;
		ev.addr = (__u64)ret;
		ev.len = t->a2;
		ev.old_addr = t->a0;
		ev.old_len = t->a1;
		ev.flags = (__u32)t->a3;
		__sync_fetch_and_add(&st->mremaps, 1);
		break;
	case GROWTH_EV_MADVISE:                 /* madvise(addr, len, advice) */
		if (ret)
			return 0;
		ev.addr = t->a0;
		ev.len = t->a1;
		ev.arg = (__u32)t->a2;
		__sync_fetch_and_add(&st->madvises, 1);
		break;
	case GROWTH_EV_BRK:                     /* brk(addr) returns the new break */
		ev.addr = (__u64)ret;
		ev.len = t->a0;                 /* what was asked; 0 = a query */
		__sync_fetch_and_add(&st->brks, 1);
		break;
	default:
		return 0;
	}
	emit(st, &ev);
	return 0;
}

SEC("tp/syscalls/sys_enter_mmap")
int on_mmap_enter(struct sys_enter_ctx *ctx) { return syscall_enter(ctx, GROWTH_EV_MMAP, 5); }
SEC("tp/syscalls/sys_exit_mmap")
int on_mmap_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_MMAP); }
SEC("tp/syscalls/sys_enter_munmap")
int on_munmap_enter(struct sys_enter_ctx *ctx) { return syscall_enter(ctx, GROWTH_EV_MUNMAP, 2); }
SEC("tp/syscalls/sys_exit_munmap")
int on_munmap_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_MUNMAP); }
SEC("tp/syscalls/sys_enter_mremap")
int on_mremap_enter(struct sys_enter_ctx *ctx) { return syscall_enter(ctx, GROWTH_EV_MREMAP, 5); }
SEC("tp/syscalls/sys_exit_mremap")
int on_mremap_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_MREMAP); }
SEC("tp/syscalls/sys_enter_brk")
int on_brk_enter(struct sys_enter_ctx *ctx) { return syscall_enter(ctx, GROWTH_EV_BRK, 1); }
SEC("tp/syscalls/sys_exit_brk")
int on_brk_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_BRK); }

#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9
#define MADV_PAGEOUT 21
#define MADV_DONTNEED_LOCKED 24

SEC("tp/syscalls/sys_enter_madvise")
int on_madvise_enter(struct sys_enter_ctx *ctx)
{
	__u64 advice = ctx->args[2];

	/* only advice that gives pages back changes what the process holds */
	if (advice != MADV_DONTNEED && advice != MADV_FREE && advice != MADV_REMOVE &&
	    advice != MADV_PAGEOUT && advice != MADV_DONTNEED_LOCKED)
		return 0;
	return syscall_enter(ctx, GROWTH_EV_MADVISE, 3);
}
SEC("tp/syscalls/sys_exit_madvise")
int on_madvise_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_MADVISE); }

/* Host-wide mode: new programs are examined by user space as they start. */
SEC("tp/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct growth_event ev = {};

	if (!report_execs)
		return 0;
	ev.type = GROWTH_EV_EXEC;
	ev.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct growth_event ev = {};
	struct growth_stats *st;

	if ((__u32)id != tgid || !traced(tgid, &st))
		return 0;                       /* a thread, or a process we do not trace */
	ev.type = GROWTH_EV_EXIT;
	ev.tgid = tgid;
	emit(st, &ev);
	return 0;
}
