// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Growth tier: memory growth of Python processes, attributed to Python lines,
 * from tracepoints only. Resident memory grows through not-present page faults
 * (first touch of anonymous memory, file pages mapped in) and shrinks through
 * munmap, madvise and brk; address space grows through mmap, mremap and brk.
 * Each of these events records the Python traceback of the thread causing it.
 *
 * Faults are sampled per process with random gaps of mean sample_pages: a
 * sample stands for the faults since the previous one, so the weights add up
 * to the exact number of faults, and a fast-growing process pays for one stack
 * walk per sample, not per page. Faults the kernel takes on user pages (a
 * read() filling a new buffer) count as the calling thread's. Processes are
 * chosen by user space (map "procs"); every other process costs one hash
 * lookup per event.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "growth.h"
#include "pywalk.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 sample_pages = 16;         /* mean fault-sample gap; 1 = every fault */
const volatile bool report_execs = false;       /* host-wide mode: tell user space about execs and forks */

/* Host-wide events (exec, fork) that the full ring buffer dropped: processes
 * that may start untraced. These few events wake the reader at once: a
 * process that runs for a fraction of a second is examined as it starts. */
__u64 lost_host_events = 0;


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

#define MADV_DONTNEED 4
#define MADV_REMOVE 9
#define MADV_PAGEOUT 21
#define MADV_POPULATE_WRITE 23
#define MADV_DONTNEED_LOCKED 24

#define X86_PF_PROT 1ull                        /* fault on a present page */
#define PAGE_SHIFT 12
#define USER_ADDR_END 0x00007ffffffff000ull     /* x86-64 TASK_SIZE_MAX, 4-level paging */

static __always_inline struct py_proc *traced(__u32 tgid, struct growth_stats **st)
{
	struct py_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p)
		return 0;
	*st = bpf_map_lookup_elem(&stats, &tgid);
	return *st ? p : 0;
}

static __always_inline int emit(struct growth_stats *st, struct growth_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), events_flags())) {
		__sync_fetch_and_add(&st->lost_events, 1);
		return -1;
	}
	return 0;
}

static __always_inline __u64 next_gap(void)
{
	/* uniform on [1, 2*mean - 1]: mean sample_pages, no fixed stride to alias with */
	if (sample_pages <= 1)
		return 1;
	return 1 + bpf_get_prandom_u32() % (2 * sample_pages - 1);
}

/* A not-present fault on a user page of the current process. */
static __always_inline int on_fault(__u64 address, __u64 error_code, bool kernel)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct growth_event ev = {};
	struct growth_stats *st;
	struct py_proc *p;
	__u64 n, through, gap;

	if (error_code & X86_PF_PROT)
		return 0;                       /* the page is present: nothing grows */
	if (address >= USER_ADDR_END)
		return 0;                       /* the kernel's own memory */
	/* one lookup per fault: the process's config is only needed for a sample */
	st = bpf_map_lookup_elem(&stats, &tgid);
	if (!st)
		return 0;
	n = __sync_fetch_and_add(&st->faults, 1) + 1;
	if (kernel)
		__sync_fetch_and_add(&st->kernel_faults, 1);
	through = st->sampled_through;
	gap = st->sample_gap;
	/* signed: a fault numbered before the last sample was already covered */
	if ((__s64)(n - through) < (__s64)(gap ? gap : 1))
		return 0;
	if (__sync_val_compare_and_swap(&st->sampled_through, through, n) != through)
		return 0;                       /* another thread took this sample */
	st->sample_gap = next_gap();
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p) {
		/* being registered or forgotten by user space right now */
		__sync_fetch_and_add(&st->lost_pages, n - through);
		return 0;
	}
	__sync_fetch_and_add(&st->samples, 1);
	ev.weight = (__u32)(n - through);
	ev.type = GROWTH_EV_FAULT;
	ev.tgid = tgid;
	ev.addr = address >> PAGE_SHIFT << PAGE_SHIFT;
	ev.arg = kernel;
	ev.stack_id = py_stack_id(p, tgid, &st->walk);
	if (emit(st, &ev))
		__sync_fetch_and_add(&st->lost_pages, ev.weight);
	return 0;
}

SEC("tp/exceptions/page_fault_user")
int on_page_fault(struct fault_ctx *ctx)
{
	return on_fault(ctx->address, ctx->error_code, false);
}

/* The kernel touching a user page for the process (copy_to_user() of a
 * read(), recv(), getrandom()... into a buffer never touched before). */
SEC("tp/exceptions/page_fault_kernel")
int on_page_fault_kernel(struct fault_ctx *ctx)
{
	return on_fault(ctx->address, ctx->error_code, true);
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
	if (!t) {
		__sync_fetch_and_add(&st->lost_syscalls, 1);
		return 0;
	}
	t->nr = kind;
	t->a0 = ctx->args[0];
	t->a1 = nargs > 1 ? ctx->args[1] : 0;
	t->a2 = nargs > 2 ? ctx->args[2] : 0;
	t->a3 = nargs > 3 ? ctx->args[3] : 0;
	t->a4 = nargs > 4 ? ctx->args[4] : 0;
	/* releases need no traceback: they only remove what is there */
	t->stack_id = kind == GROWTH_EV_MUNMAP ||
		      (kind == GROWTH_EV_MADVISE && t->a2 != MADV_POPULATE_WRITE) ? 0 :
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
		/* a range with unmapped gaps fails with ENOMEM, but the advice
		 * was applied to every mapping in it; populating stops at the gap */
		if (ret && (ret != -12 || t->a2 == MADV_POPULATE_WRITE))
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

SEC("tp/syscalls/sys_enter_madvise")
int on_madvise_enter(struct sys_enter_ctx *ctx)
{
	__u64 advice = ctx->args[2];

	/* only advice that gives pages back, or makes them resident without a
	 * fault, changes what the process holds. MADV_FREE does neither: the
	 * pages stay resident (and in RSS) until memory runs short, and a write
	 * takes them back without a fault. */
	if (advice != MADV_DONTNEED && advice != MADV_REMOVE && advice != MADV_PAGEOUT &&
	    advice != MADV_DONTNEED_LOCKED && advice != MADV_POPULATE_WRITE)
		return 0;
	return syscall_enter(ctx, GROWTH_EV_MADVISE, 3);
}
SEC("tp/syscalls/sys_exit_madvise")
int on_madvise_exit(struct sys_exit_ctx *ctx) { return syscall_exit(ctx, GROWTH_EV_MADVISE); }

/* A traced process that execs runs another program: the walker's offsets
 * no longer apply, so it stops being traced here, at once, and user space
 * ends its trace. In host-wide mode every exec is reported, so that user
 * space examines new programs as they start. */
SEC("tp/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct growth_host_event ev = {};
	struct growth_stats *st;

	ev.type = GROWTH_EV_EXEC;
	ev.tgid = tgid;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (traced(tgid, &st)) {
		bpf_map_delete_elem(&procs, &tgid);
		ev.arg = GROWTH_EXEC_TRACED;
		if (!bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
			return 0;
		__sync_fetch_and_add(&st->lost_events, 1);
	} else if (!report_execs) {
		return 0;
	}
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
		__sync_fetch_and_add(&lost_host_events, 1);
	return 0;
}

/* Host-wide mode: a traced process forked a new process (not a thread, not a
 * vfork child sharing its memory until it execs). A forked worker runs the
 * same interpreter at the same addresses; user space starts tracing it. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct growth_host_event ev = {};
	struct growth_stats *st;
	__u32 ptgid = parent->tgid;

	if (!report_execs || child->tgid != child->pid || child->mm == parent->mm ||
	    !traced(ptgid, &st))
		return 0;
	ev.type = GROWTH_EV_FORK;
	ev.tgid = child->tgid;
	ev.parent = ptgid;
	bpf_probe_read_kernel_str(ev.comm, sizeof(ev.comm), parent->comm);
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
		__sync_fetch_and_add(&lost_host_events, 1);
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
	/* a process that reuses the PID before user space reads this event is
	 * not this one: stop now (the counters stay for user space) */
	bpf_map_delete_elem(&procs, &tgid);
	ev.type = GROWTH_EV_EXIT;
	ev.tgid = tgid;
	emit(st, &ev);
	return 0;
}
