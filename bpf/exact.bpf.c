// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Exact tier: tracemalloc's own view of a CPython process, from outside.
 *
 * tracemalloc wraps the three allocator domains (PyMem_SetAllocator) and records
 * a trace when an outermost allocation call succeeds; nested calls (pymalloc
 * forwarding a big request to PyMem_RawMalloc, growing its arena table) pass
 * through untraced thanks to a per-thread reentrancy flag. We put uprobes on the
 * functions those wrappers would sit on and keep the same per-thread nesting
 * depth, so each block is traced once, at the outermost call, with the size the
 * caller asked for and the traceback of the calling thread.
 *
 * The loader attaches one uprobe per function, per target process (a perf
 * event bound to the PID), so no other process on the host ever traps.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exact.h"
#include "pywalk.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool reattribute = true;         /* follow free-list reuse (_Py_NewReference) */
const volatile bool report_execs = false;       /* host-wide mode: tell user space about execs */


struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);                     /* tgid */
	__type(value, struct exact_stats);
} stats SEC(".maps");

/* Sized by the loader (--max-traces) and preallocated: every free deletes an
 * element and every allocation inserts one, and a map that allocates its
 * elements hands freed ones back through RCU and refills its per-CPU caches
 * from irq_work (a self-IPI, a VM exit under virtualization). Measured on
 * 3.11.7 json: free_enter 494 -> 237 ns a run, alloc_exit 913 -> 653 ns,
 * for ~70 MiB of kernel memory per million entries, taken at load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct block_key);
	__type(value, struct block_val);
} live SEC(".maps");

/* The outermost allocator call in progress on a thread. */
struct thread_call {
	__u64 sp;                               /* stack pointer at its entry */
	__u64 arg0;                             /* size, or the old pointer of realloc */
	__u64 arg1;                             /* new size of realloc */
	__u64 last_block;                       /* last block this thread recorded */
	/* where the thread was when it recorded last_block: its most recent
	 * complete frame, the frame below, and that frame's code and offset */
	__u64 last_frame, last_prev, last_code;
	__s32 last_addr;
	__u32 depth;                            /* allocator calls in progress (nesting) */
	__u32 fn;                               /* enum exact_fn of the outermost call */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_call);
} thread_calls SEC(".maps");

__u64 no_proc_hits;                             /* probe hits from unknown processes */

#define STAT_ADD(st, field, v) __sync_fetch_and_add(&(st)->field, (v))

/* The first three integer arguments, or the three after an allocator ctx.
 * Each register is loaded on its own: the verifier rejects the computed
 * ctx offsets clang would otherwise produce for a conditional pick. */
static __always_inline void call_args(struct pt_regs *ctx, __u64 cookie, __u64 *a0, __u64 *a1)
{
	__u64 di = PT_REGS_PARM1(ctx), si = PT_REGS_PARM2(ctx), dx = PT_REGS_PARM3(ctx);

	asm volatile("" : "+r"(di), "+r"(si), "+r"(dx));
	if (cookie & EXACT_FN_CTX) {
		*a0 = si;
		*a1 = dx;
	} else {
		*a0 = di;
		*a1 = si;
	}
}

static __always_inline struct py_proc *proc_for(struct pt_regs *ctx, __u32 tgid, __u64 cookie)
{
	struct py_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p) {
		__sync_fetch_and_add(&no_proc_hits, 1);
		return 0;
	}
	if (!p->bias_known && cookie >> 8) {
		/* an entry probe's ip is the probed instruction: bias = ip - link address */
		p->bias = (__s64)(PT_REGS_IP(ctx) - (cookie >> 8));
		p->bias_known = 1;
	}
	return p;
}

static __always_inline void update_peak(struct exact_stats *st, __u64 cur)
{
	/* tracemalloc: peak_traced_memory = max(peak, traced_memory) after each add */
	for (int i = 0; i < 4; i++) {
		__u64 peak = st->traced_peak;

		if (cur <= peak)
			return;
		if (__sync_val_compare_and_swap(&st->traced_peak, peak, cur) == peak)
			return;
	}
}

/* tracemalloc_add_trace(): a new trace, or replace the one at this address. */
static __always_inline void add_block(struct py_proc *p, __u32 tgid, __u64 addr, __u32 domain,
				      __u64 size)
{
	struct block_key key = { .addr = addr, .domain = domain, .tgid = tgid };
	struct exact_stats *st = bpf_map_lookup_elem(&stats, &tgid);
	struct block_val *old, val;
	__u64 cur;

	if (!st)
		return;
	val.size = size;
	val.stack_id = py_stack_id(p, tgid, &st->walk);
	/* before the runtime has its thread-state key no tracemalloc can trace:
	 * interpreter start-up (counted in walk.before_init) */
	if (!p->tss_key_known)
		return;
	old = bpf_map_lookup_elem(&live, &key);
	if (old) {
		__u64 old_size = old->size;

		old->size = size;
		old->stack_id = val.stack_id;
		cur = __sync_fetch_and_add(&st->traced_current, size - old_size) + size - old_size;
	} else {
		if (bpf_map_update_elem(&live, &key, &val, BPF_NOEXIST)) {
			STAT_ADD(st, lost_live_full, 1);
			return;
		}
		STAT_ADD(st, ntraces, 1);
		cur = __sync_fetch_and_add(&st->traced_current, size) + size;
	}
	STAT_ADD(st, allocs, 1);
	update_peak(st, cur);
}

/* tracemalloc_remove_trace() */
static __always_inline void remove_block(__u32 tgid, __u64 addr, __u32 domain)
{
	struct block_key key = { .addr = addr, .domain = domain, .tgid = tgid };
	struct block_val *old = bpf_map_lookup_elem(&live, &key);
	struct exact_stats *st;
	__u64 size;

	if (!old)
		return;                         /* allocated before we attached, or not traced */
	size = old->size;
	if (bpf_map_delete_elem(&live, &key))
		return;                         /* another CPU removed it first */
	st = bpf_map_lookup_elem(&stats, &tgid);
	if (!st)
		return;
	__sync_fetch_and_sub(&st->traced_current, size);
	__sync_fetch_and_sub(&st->ntraces, 1);
	STAT_ADD(st, frees, 1);
}

/* Nothing is recorded before the point where PYTHONTRACEMALLOC would start
 * tracing (tmbpf run), nor after Py_FinalizeEx (the final snapshot). */
static __always_inline bool frozen(struct py_proc *p, __u32 tgid)
{
	struct exact_stats *st;

	if ((p->flags & (PY_PROC_WAIT_START | PY_PROC_STARTED)) == PY_PROC_WAIT_START)
		return true;
	if (!(p->flags & PY_PROC_FINALIZING))
		return false;
	st = bpf_map_lookup_elem(&stats, &tgid);
	if (st)
		STAT_ADD(st, after_finalize, 1);
	return true;
}

SEC("uprobe")
int BPF_KPROBE(alloc_enter)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 fn = cookie & EXACT_FN_MASK;
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_call *t;
	struct py_proc *p;
	__u64 sp = PT_REGS_SP(ctx), a0, a1;

	p = proc_for(ctx, tgid, cookie);
	if (!p)
		return 0;
	t = bpf_task_storage_get(&thread_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	if (t->depth && sp > t->sp) {
		/* the outer call's frame is gone but its uretprobe never fired. Not
		 * sp == t->sp: that is a tail call from the outer function (pymalloc
		 * jumping to PyMem_RawRealloc), a genuinely nested call */
		struct exact_stats *st = bpf_map_lookup_elem(&stats, &tgid);

		if (st)
			STAT_ADD(st, missed_returns, 1);
		t->depth = 0;
	}
	if (t->depth++)
		return 0;                       /* nested: tracemalloc's reentrant path */
	call_args(ctx, cookie, &a0, &a1);
	t->sp = sp;
	t->fn = fn;
	if (fn == EXACT_FN_CALLOC) {
		t->arg0 = a0 * a1;              /* nelem * elsize */
	} else {
		t->arg0 = a0;
		t->arg1 = a1;
	}
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_exit, __u64 ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_call *t;
	struct py_proc *p;
	__u64 size;

	t = bpf_task_storage_get(&thread_calls, task, 0, 0);
	if (!t || !t->depth)
		return 0;
	if (--t->depth)
		return 0;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !ret || frozen(p, tgid))
		return 0;
	if (t->fn == EXACT_FN_REALLOC) {
		if (t->arg0 && t->arg0 != ret)
			remove_block(tgid, t->arg0, 0);
		size = t->arg1;
	} else {
		size = t->arg0;
	}
	add_block(p, tgid, ret, 0, size);
	t->last_block = ret;
	t->last_frame = 0;
	{
		__u32 zero = 0;
		struct walk_result *r = bpf_map_lookup_elem(&walk_scratch, &zero);

		/* the walk add_block() just made (same CPU, same program run) */
		if (r && r->tgid == tgid && r->top_frame) {
			t->last_frame = r->top_frame;
			t->last_prev = r->top_prev;
			t->last_code = r->frames[0].code;
			t->last_addr = r->frames[0].addr;
		}
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(free_enter)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct py_proc *p;
	__u64 ptr, unused;

	call_args(ctx, cookie, &ptr, &unused);
	if (!ptr)
		return 0;
	p = proc_for(ctx, tgid, cookie);
	if (!p || frozen(p, tgid))
		return 0;
	remove_block(tgid, ptr, 0);
	return 0;
}

/* PyTraceMalloc_Track(unsigned int domain, uintptr_t ptr, size_t size). NumPy
 * calls it whether or not tracemalloc runs; record what tracemalloc would. */
SEC("uprobe")
int BPF_KPROBE(track_enter, unsigned int domain, __u64 ptr, __u64 size)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct py_proc *p = proc_for(ctx, tgid, cookie);

	if (!p || frozen(p, tgid))
		return 0;
	add_block(p, tgid, ptr, domain, size);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(untrack_enter, unsigned int domain, __u64 ptr)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct py_proc *p = proc_for(ctx, tgid, cookie);

	if (!p || frozen(p, tgid))
		return 0;
	remove_block(tgid, ptr, domain);
	return 0;
}

#define Py_TPFLAGS_MANAGED_WEAKREF (1ul << 3)
#define Py_TPFLAGS_MANAGED_DICT (1ul << 4)
#define Py_TPFLAGS_HAVE_GC (1ul << 14)
#define PY_TYPE_TP_FLAGS 168                    /* offsetof(PyTypeObject, tp_flags), 3.8-3.13 */

/* _Py_NewReference(op): an object is (re)born. When its memory block came from
 * a type's free list it never passed through the allocator, and tracemalloc
 * (_PyTraceMalloc_NewReference / its 3.13 ref tracer) gives the block the
 * current traceback. A block this thread just allocated already has it. */
SEC("uprobe")
int BPF_KPROBE(newref_enter, __u64 op)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task = bpf_get_current_task_btf();
	struct block_key key = { .domain = 0, .tgid = tgid };
	struct thread_call *t;
	struct exact_stats *st;
	struct block_val *v;
	struct py_proc *p;
	__u64 type = 0, flags = 0, presize = 0;

	if (!reattribute || !op)
		return 0;
	p = proc_for(ctx, tgid, cookie);
	if (!p || frozen(p, tgid))
		return 0;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)(op + 8)) ||
	    bpf_probe_read_user(&flags, sizeof(flags), (void *)(type + PY_TYPE_TP_FLAGS)))
		return 0;
	if (flags & Py_TPFLAGS_HAVE_GC)
		presize = 16;                   /* sizeof(PyGC_Head) */
	/* 3.12+: _PyType_PreHeaderSize() also counts the managed dict/weakref pointers */
	if (p->off.py_version >= 0x030c00 &&
	    (flags & (Py_TPFLAGS_MANAGED_WEAKREF | Py_TPFLAGS_MANAGED_DICT)))
		presize += 16;
	key.addr = op - presize;
	v = bpf_map_lookup_elem(&live, &key);
	if (!v)
		return 0;
	/* The object just allocated by this thread is born where its block was
	 * recorded: no new walk needed, as long as the thread is still at the
	 * same place (the same frame at the same instruction, over the same
	 * caller). The block may also have come back from a free list without
	 * any allocation since: then the thread has moved on, and it is re-
	 * attributed like any other. */
	t = bpf_task_storage_get(&thread_calls, task, 0, 0);
	if (t && t->last_block == key.addr && t->last_frame) {
		struct walk_result *r = py_walk(p, tgid, true);

		if (r && r->top_frame == t->last_frame && r->top_prev == t->last_prev &&
		    r->frames[0].code == t->last_code && r->frames[0].addr == t->last_addr)
			return 0;
	}
	if (!v)
		return 0;
	st = bpf_map_lookup_elem(&stats, &tgid);
	if (!st)
		return 0;
	v->stack_id = py_stack_id(p, tgid, &st->walk);
	STAT_ADD(st, reattributed, 1);
	return 0;
}

/* Return of _PySignal_Init(): the interpreter is where PYTHONTRACEMALLOC's
 * tracemalloc.start() happens, in every version 3.8-3.13 (init_interp_main). */
SEC("uretprobe")
int BPF_KRETPROBE(start_exit)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct py_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p)
		__sync_fetch_and_or(&p->flags, PY_PROC_STARTED);
	return 0;
}

/* Py_FinalizeEx(): the program is ending. Freeze the traces as they are now,
 * the moment `tmbpf run` reports on (PYTHONTRACEMALLOC users snapshot at exit). */
SEC("uprobe")
int BPF_KPROBE(finalize_enter)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct py_proc *p = proc_for(ctx, tgid, cookie);
	struct exact_note note = { .type = EXACT_EV_FINALIZE, .tgid = tgid };

	if (!p)
		return 0;
	__sync_fetch_and_or(&p->flags, PY_PROC_FINALIZING);
	bpf_ringbuf_output(&events, &note, sizeof(note), 0);
	return 0;
}

/* Host-wide mode: the probes sit on every process of an interpreter file;
 * user space configures the new ones as they exec. */
SEC("tp/sched/sched_process_exec")
int on_exec(void *ctx)
{
	struct exact_note note = { .type = EXACT_EV_EXEC };

	if (!report_execs)
		return 0;
	note.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_output(&events, &note, sizeof(note), 0);
	return 0;
}
