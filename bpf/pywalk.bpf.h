/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Python frame walker shared by every tmbpf BPF program.
 *
 * tracemalloc attributes an allocation to the calling OS thread's own thread
 * state (PyGILState_GetThisThreadState(), i.e. pthread_getspecific(autoTSSkey)),
 * not to the GIL holder: raw-domain allocations happen without the GIL. We do
 * the same lookup from BPF: the thread pointer (task->thread.fsbase) is glibc's
 * struct pthread, whose thread-specific-data array holds the tstate under the
 * interpreter's key. Then the frame chain of that tstate is followed, skipping
 * the frames tracemalloc skips, storing up to nframe_max frames and counting
 * up to max_walk frames for total_nframe. Every read is a bounded
 * bpf_probe_read_user(); a failed read ends the walk and is counted.
 */
#ifndef TMBPF_PYWALK_BPF_H
#define TMBPF_PYWALK_BPF_H

#include "pyframe.h"

/* Result of one walk, kept in a per-CPU scratch slot (too big for the stack).
 * The layout is also the head of the stack event sent to user space. */
struct walk_result {
	__u32 type;                     /* event type when sent to user space */
	__u32 tgid;
	__u64 stack_id;                 /* hash of (frames, nframe, total_nframe) */
	__u32 nframe;
	__u32 total_nframe;
	__u32 status;                   /* WALK_* bits */
	__u32 pad;
	struct py_frame frames[PY_MAX_NFRAME];
	/* raw bytes of the frame being decoded; in the map, not on the BPF stack,
	 * because the per-version field offsets are only known at run time */
	__u8 fbuf[136];
	__u8 cbuf[136];                 /* the same for the frame's code object */
	/* per stored frame: its code object's filename and line-table objects */
	__u64 fname_obj[PY_MAX_NFRAME];
	__u64 ltab_obj[PY_MAX_NFRAME];
	/* the walk in progress: kept here rather than in the bpf_loop context on
	 * the stack, because the verifier tracks stack values precisely and a
	 * counter that changes every iteration keeps the loop's states from
	 * converging (740k instructions verified per program, 1.2 s to load) */
	__u64 cur_frame;
	__u64 hash;
	/* the first recorded (most recent complete) frame and the one it
	 * returns to: where the thread is, for _Py_NewReference's shortcut */
	__u64 top_frame;
	__u64 top_prev;
};


struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_result);
} walk_scratch SEC(".maps");

/* The processes a program works for, with their interpreter's layout
 * (written by user space; the load bias and TSS key are learnt here). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);                     /* tgid */
	__type(value, struct py_proc);
} procs SEC(".maps");

/* Stack ids already sent to user space. LRU: an evicted id is simply sent again.
 * Ids include the tgid: user space keeps stacks per process, and processes
 * forked from one parent share their code objects' addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, __u8);
} seen_stacks SEC(".maps");

/* Every record for user space: new stacks and the program's own events. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Code objects already sent to user space, by (process, address, identity):
 * user space keeps the copies per process. */
struct code_key {
	__u64 code;
	__u32 ident;
	__s32 firstlineno;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct code_key);
	__type(value, __u8);
} seen_code SEC(".maps");

/* One slot per CPU (a per-CPU array cannot hold values this big); the
 * loader sizes it to the number of possible CPUs. Programs on one CPU never
 * overlap: the kernel skips a BPF program that would nest in another. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct code_event);
} code_scratch SEC(".maps");

/* Set by user space before load. */
const volatile __u32 nframe_max = 1;            /* tracemalloc's traceback limit */
const volatile __u32 max_walk = PY_DEFAULT_MAX_WALK;

/* Records do not wake the reader one by one: each wakeup is an irq_work, a
 * self-IPI on the CPU of the thread being traced (a VM exit under
 * virtualization), and cost the growth tier ~25% of a fast-growing program's
 * time (scripts/bench-growth). The tracers poll on a timeout and drain what is
 * there; a reader is woken early only when a good part of the buffer waits. */
#define EVENTS_WAKEUP_BYTES (1u << 20)

static __always_inline __u64 events_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= EVENTS_WAKEUP_BYTES ?
	       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 mix64(__u64 h)
{
	/* murmur3 fmix64: the stack id must spread well, it keys two hash maps */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Current thread's PyThreadState*, or 0. Caches the TSS key in the proc entry
 * once the runtime has created it. */
static __always_inline __u64 py_thread_state(struct py_proc *p, __u32 *status)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 fsbase, slot, tstate = 0;
	__u32 key;

	if (!p->tss_key_known) {
		struct { int initialized; unsigned int key; } tss = {};
		__u64 rt;

		if (!p->bias_known) {
			*status |= WALK_NO_RUNTIME;
			return 0;
		}
		rt = p->runtime_vaddr + p->bias;
		if (bpf_probe_read_user(&tss.initialized, sizeof(int), (void *)(rt + p->off.rt_tss_initialized)) ||
		    bpf_probe_read_user(&tss.key, sizeof(unsigned int), (void *)(rt + p->off.rt_tss_key))) {
			*status |= WALK_UNREADABLE;
			return 0;
		}
		if (!tss.initialized || tss.key >= 1024) {
			*status |= WALK_NO_RUNTIME;
			return 0;
		}
		p->tss_key = tss.key;
		p->tss_key_known = 1;
	}
	key = p->tss_key;
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		goto none;
	if (key < 32) {
		slot = fsbase + p->off.tsd_first_block + key * 16 + 8;
	} else {
		__u64 level2 = 0;

		key &= 1023;
		if (bpf_probe_read_user(&level2, sizeof(level2),
					(void *)(fsbase + p->off.tsd_second_level + (key >> 5) * 8)))
			goto unreadable;
		if (!level2)
			goto none;
		slot = level2 + (key & 31) * 16 + 8;
	}
	if (bpf_probe_read_user(&tstate, sizeof(tstate), (void *)slot))
		goto unreadable;
	if (!tstate)
		goto none;
	return tstate;
unreadable:
	*status |= WALK_UNREADABLE;
	return 0;
none:
	*status |= WALK_NO_TSTATE;
	return 0;
}

/* Constants of one walk, carried through bpf_loop(): the offsets, copied
 * in. What changes from frame to frame lives in struct walk_result. */
struct walk_loop {
	__u32 layout;
	__u32 f_back, f_code, f_lasti, f_trace, f_lineno, f_owner;
	__u32 co_block_off, co_block_len;
	__u32 co_firstlineno, co_filename, co_linetable;
	__u32 co_firsttraceable, co_code_adaptive;
	__u32 nframe_limit;
	__u32 first_only;               /* stop at the first complete frame */
	__u32 count_fast;
	__u64 init_cleanup;             /* run-time address, 0 if none */
};

#define CBUF_U64(r, off) (*(__u64 *)&(r)->cbuf[(off) & 127])
#define CBUF_S32(r, off) (*(__s32 *)&(r)->cbuf[(off) & 127])

/* Reads the identifying block of a code object into r->cbuf. */
static __always_inline int read_code_block(struct walk_loop *w, struct walk_result *r, __u64 code)
{
	__u32 len = w->co_block_len & 127;

	if (!len || bpf_probe_read_user(r->cbuf, len, (void *)(code + w->co_block_off)))
		return -1;
	return 0;
}

static __always_inline void walk_record(struct walk_loop *w, struct walk_result *r,
					__u64 code, __s32 addr, __u32 flags)
{
	__u32 i = r->nframe;

	if (i < w->nframe_limit && i < PY_MAX_NFRAME) {
		struct py_frame *f = &r->frames[i & (PY_MAX_NFRAME - 1)];

		f->code = code;
		f->addr = addr;
		f->flags = flags;
		f->firstlineno = 0;
		f->ident = 0;
		r->fname_obj[i & (PY_MAX_NFRAME - 1)] = 0;
		r->ltab_obj[i & (PY_MAX_NFRAME - 1)] = 0;
		if (code) {
			__u64 fname = CBUF_U64(r, w->co_filename - w->co_block_off);
			__u64 ltab = CBUF_U64(r, w->co_linetable - w->co_block_off);

			f->firstlineno = CBUF_S32(r, w->co_firstlineno - w->co_block_off);
			f->ident = py_code_ident(fname, ltab);
			r->fname_obj[i & (PY_MAX_NFRAME - 1)] = fname;
			r->ltab_obj[i & (PY_MAX_NFRAME - 1)] = ltab;
		}
		r->hash = mix64(r->hash ^ code) + ((__u64)(__u32)addr << 32 | flags);
		r->hash = mix64(r->hash ^ ((__u64)f->ident << 32 | (__u32)f->firstlineno));
		r->nframe = i + 1;
	}
	r->total_nframe++;
}

#define FBUF_U64(r, off) (*(__u64 *)&(r)->fbuf[(off) & 127])
#define FBUF_S32(r, off) (*(__s32 *)&(r)->fbuf[(off) & 127])

/* One step over a PyFrameObject chain (3.8-3.10): every frame counts. */
static __always_inline int walk_step_frameobj(struct walk_loop *w, struct walk_result *r)
{
	__u64 code, back;
	__s32 lasti, lineno;
	__u32 flags = 0;

	/* f_back..f_lineno all lie within the first 112 bytes of PyFrameObject */
	if (bpf_probe_read_user(r->fbuf, 112, (void *)r->cur_frame)) {
		r->status |= WALK_UNREADABLE;
		return 1;
	}
	back = FBUF_U64(r, w->f_back);
	code = FBUF_U64(r, w->f_code);
	lasti = FBUF_S32(r, w->f_lasti);
	lineno = FBUF_S32(r, w->f_lineno);
	if (w->layout == PY_LAYOUT_FRAMEOBJ_38) {
		/* PyFrame_GetLineNumber: a traced frame reports f_lineno */
		if (FBUF_U64(r, w->f_trace))
			flags = PYF_LINENO;
	} else {
		/* 3.10: f_lineno != 0 overrides; f_lasti counts code units */
		if (lineno)
			flags = PYF_LINENO;
		else if (lasti >= 0)
			lasti *= 2;
	}
	if (!r->nframe) {
		r->top_frame = r->cur_frame;
		r->top_prev = back;
	}
	r->cur_frame = back;
	if (!code) {
		flags = PYF_NONE;
	} else if (r->nframe < w->nframe_limit && read_code_block(w, r, code)) {
		r->status |= WALK_CODE_UNREADABLE;
		code = 0;
		flags = PYF_NONE;
	}
	walk_record(w, r, code, flags & PYF_LINENO ? lineno : lasti, flags);
	return 0;
}

/* One step over a _PyInterpreterFrame chain (3.11+), skipping incomplete frames
 * (not yet past RESUME) and 3.12+ C-stack shim frames, as tracemalloc does. */
static __always_inline int walk_step_interp(struct walk_loop *w, struct walk_result *r)
{
	__u64 frame, code, back, instr, code_start;
	__u8 owner;
	__s32 firsttraceable = 0;

	/* f_code/previous/instr_ptr/owner all lie within the first 72 bytes */
	if (bpf_probe_read_user(r->fbuf, 72, (void *)r->cur_frame)) {
		r->status |= WALK_UNREADABLE;
		return 1;
	}
	frame = r->cur_frame;
	code = FBUF_U64(r, w->f_code);
	back = FBUF_U64(r, w->f_back);
	instr = FBUF_U64(r, w->f_lasti);
	owner = r->fbuf[w->f_owner & 127];
	r->cur_frame = back;

	if (owner == PY_OWNED_BY_CSTACK && w->layout >= PY_LAYOUT_INTERP_312)
		return 0;                       /* shim frame: f_executable may be None */
	if (!code) {
		walk_record(w, r, 0, 0, PYF_NONE);
		return 0;
	}
	if (w->count_fast && r->nframe >= w->nframe_limit) {
		/* only counted, and below a complete frame: complete unless it
		 * is 3.13's __init__ shim (struct py_proc's count_fast) */
		if (code != w->init_cleanup)
			r->total_nframe++;
		return 0;
	}
	code_start = code + w->co_code_adaptive;
	/* one read gives _co_firsttraceable and the object's identity */
	if (read_code_block(w, r, code)) {
		r->status |= WALK_UNREADABLE;
		return 1;
	}
	if (owner != PY_OWNED_BY_GENERATOR) {
		firsttraceable = CBUF_S32(r, w->co_firsttraceable - w->co_block_off);
		if ((__s64)(instr - code_start) < 2 * (__s64)firsttraceable)
			return 0;               /* _PyFrame_IsIncomplete() */
	}
	if (!r->nframe) {
		r->top_frame = frame;
		r->top_prev = back;
	}
	walk_record(w, r, code, (__s32)(instr - code_start), 0);
	return 0;
}

static long walk_loop_cb(__u32 index, void *ctx)
{
	struct walk_loop *w = ctx;
	struct walk_result *r;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!r || !r->cur_frame || (w->first_only && r->nframe))
		return 1;
	if (r->total_nframe >= 65535)           /* tracemalloc saturates total_nframe */
		return 1;
	if (w->layout <= PY_LAYOUT_FRAMEOBJ_310)
		return walk_step_frameobj(w, r);
	return walk_step_interp(w, r);
}

/* Walks the current thread's Python stack into the per-CPU walk_result.
 * Never fails: a thread without Python frames gets tracemalloc's
 * ("<unknown>", 0) traceback (one PYF_NONE frame, total 1). first_only: stop
 * at the first complete frame (top_frame/top_prev/frames[0] only; the stack
 * id and counts are then meaningless). */
static __always_inline struct walk_result *py_walk(struct py_proc *p, __u32 tgid, bool first_only)
{
	struct walk_loop w = {};
	struct walk_result *r;
	__u64 tstate, frame = 0;
	__u32 zero = 0, status = 0;

	r = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!r)
		return 0;
	tstate = py_thread_state(p, &status);
	if (tstate) {
		__u64 first = 0;

		if (bpf_probe_read_user(&first, sizeof(first), (void *)(tstate + p->off.ts_frame))) {
			status |= WALK_UNREADABLE;
		} else if (p->off.layout == PY_LAYOUT_INTERP_311 || p->off.layout == PY_LAYOUT_INTERP_312) {
			/* tstate->cframe->current_frame */
			if (first && bpf_probe_read_user(&frame, sizeof(frame),
							 (void *)(first + p->off.cframe_current_frame)))
				status |= WALK_UNREADABLE;
		} else {
			frame = first;
		}
	}
	r->cur_frame = frame;
	r->top_frame = 0;
	r->top_prev = 0;
	r->hash = 0x9e3779b97f4a7c15ULL;
	r->nframe = 0;
	r->total_nframe = 0;
	r->status = status;
	w.layout = p->off.layout;
	w.f_back = p->off.f_back;
	w.f_code = p->off.f_code;
	w.f_lasti = p->off.f_lasti;
	w.f_trace = p->off.f_trace;
	w.f_lineno = p->off.f_lineno;
	w.f_owner = p->off.f_owner;
	w.co_block_off = p->off.co_block_off;
	w.co_block_len = p->off.co_block_len;
	w.co_firstlineno = p->off.co_firstlineno;
	w.co_filename = p->off.co_filename;
	w.co_linetable = p->off.co_linetable;
	w.co_firsttraceable = p->off.co_firsttraceable;
	w.co_code_adaptive = p->off.co_code_adaptive;
	w.nframe_limit = nframe_max;
	w.first_only = first_only;
	w.count_fast = p->count_fast;
	if (p->off.layout == PY_LAYOUT_INTERP_313 && p->count_fast) {
		if (p->bias_known && p->init_cleanup_vaddr)
			w.init_cleanup = p->init_cleanup_vaddr + p->bias;
		else
			w.count_fast = 0;
	}
	if (frame)
		bpf_loop(max_walk, walk_loop_cb, &w, 0);
	if (r->cur_frame && r->total_nframe < 65535 && !(r->status & WALK_UNREADABLE))
		r->status |= WALK_TRUNCATED;
	if (r->nframe == 0) {
		/* tracemalloc_empty_traceback */
		r->frames[0].code = 0;
		r->frames[0].addr = 0;
		r->frames[0].flags = PYF_NONE;
		r->frames[0].firstlineno = 0;
		r->frames[0].ident = 0;
		r->nframe = 1;
		r->total_nframe = 1;
		r->hash = 0x2545f4914f6cdd1dULL;
	}
	r->tgid = tgid;
	r->stack_id = mix64(r->hash ^ ((__u64)r->total_nframe << 32 | r->nframe) ^
			    ((__u64)tgid * 0x9e3779b97f4a7c15ULL));
	if (!r->stack_id)
		r->stack_id = 1;                /* 0 means "no stack" */
	return r;
}

/* Constants of the code-object pass over one new stack. */
struct code_loop {
	struct py_proc *p;
	struct walk_counters *wc;       /* map value: counted there, not on the stack */
	__u32 tgid;
	__u32 nframe;
};

/* Copies one code object's filename (compact str data) and line table (bytes
 * data) into a code event. Parts that cannot be copied are left to user
 * space, which reads them from the live object if it is still there. */
static long code_loop_cb(__u32 i, void *ctx)
{
	struct code_loop *c = ctx;
	struct walk_result *r;
	struct code_event *ev;
	struct code_key key = {};
	struct py_frame *f;
	__u64 fname, ltab, len = 0, size;
	__u32 zero = 0, state, kind, cpu;
	__u8 one = 1;

	if (i >= c->nframe || i >= PY_MAX_NFRAME)
		return 1;
	r = bpf_map_lookup_elem(&walk_scratch, &zero);
	cpu = bpf_get_smp_processor_id();
	ev = bpf_map_lookup_elem(&code_scratch, &cpu);
	if (!r || !ev)
		return 1;
	f = &r->frames[i & (PY_MAX_NFRAME - 1)];
	if (!f->code)
		return 0;
	key.code = f->code;
	key.ident = f->ident;
	key.firstlineno = f->firstlineno;
	key.tgid = c->tgid;
	if (bpf_map_lookup_elem(&seen_code, &key))
		return 0;
	fname = r->fname_obj[i & (PY_MAX_NFRAME - 1)];
	ltab = r->ltab_obj[i & (PY_MAX_NFRAME - 1)];
	ev->type = PY_EV_CODE;
	ev->tgid = c->tgid;
	ev->code = f->code;
	ev->firstlineno = f->firstlineno;
	ev->ident = f->ident;
	ev->flags = 0;
	ev->str_nbytes = 0;
	ev->lt_nbytes = 0;
	if (fname && !bpf_probe_read_user(ev->str_obj, PY_CODE_STR_OBJ, (void *)(fname + 8))) {
		struct py_offsets *o = &c->p->off;

		len = *(__u64 *)&ev->str_obj[(o->u_length - 8) & 63];
		state = *(__u32 *)&ev->str_obj[(o->u_state - 8) & 63];
		kind = (state >> 2) & 7;
		/* only compact strings hold their data inline */
		if ((state & (1u << 5)) && (kind == 1 || kind == 2 || kind == 4) &&
		    len * kind <= PY_CODE_STR_MAX) {
			size = len * kind;
			if (!size || !bpf_probe_read_user(ev->data, size & (PY_CODE_STR_MAX - 1 + PY_CODE_STR_MAX),
							  (void *)(fname + ((state & (1u << 6)) ?
									    o->u_ascii_data : o->u_compact_data)))) {
				ev->str_nbytes = (__u32)size;
				ev->flags |= CODE_EV_STR;
			}
		}
	}
	if (ltab && !bpf_probe_read_user(&len, sizeof(len), (void *)(ltab + c->p->off.b_size)) &&
	    len <= PY_CODE_LT_MAX) {
		if (!len || !bpf_probe_read_user(ev->data + PY_CODE_STR_MAX, len & (2 * PY_CODE_LT_MAX - 1),
						 (void *)(ltab + c->p->off.b_sval))) {
			ev->lt_nbytes = (__u32)len;
			ev->flags |= CODE_EV_LT;
		}
	}
	size = offsetof(struct code_event, data) + PY_CODE_STR_MAX + ev->lt_nbytes;
	if (size > sizeof(*ev))
		return 0;
	if (bpf_ringbuf_output(&events, ev, size, events_flags())) {
		__sync_fetch_and_add(&c->wc->lost_stack_events, 1);
		return 0;
	}
	bpf_map_update_elem(&seen_code, &key, &one, BPF_ANY);
	return 0;
}

/* Walks the stack and makes sure user space has it: the first time a stack id
 * is seen its frames go out on the ring buffer. Returns the id, 0 if lost. */
static __always_inline __u64 py_stack_id(struct py_proc *p, __u32 tgid, struct walk_counters *wc)
{
	struct walk_result *r = py_walk(p, tgid, false);
	__u32 n, size;
	__u8 one = 1;

	if (!r)
		return 0;
	if (r->status) {
		if (r->status & (WALK_UNREADABLE | WALK_CODE_UNREADABLE))
			__sync_fetch_and_add(&wc->unreadable_stacks, 1);
		if (r->status & WALK_TRUNCATED)
			__sync_fetch_and_add(&wc->truncated_stacks, 1);
		if (r->status & WALK_NO_TSTATE)
			__sync_fetch_and_add(&wc->no_tstate, 1);
		if (r->status & WALK_NO_RUNTIME)
			__sync_fetch_and_add(&wc->before_init, 1);
	}
	if (bpf_map_lookup_elem(&seen_stacks, &r->stack_id))
		return r->stack_id;
	n = r->nframe;
	if (n > PY_MAX_NFRAME)
		n = PY_MAX_NFRAME;
	{
		/* a new stack may hold new code objects: send them first */
		struct code_loop cl = { .p = p, .wc = wc, .tgid = tgid, .nframe = n };

		bpf_loop(n, code_loop_cb, &cl, 0);
	}
	size = sizeof(struct stack_event_head) + n * sizeof(struct py_frame);
	if (size > sizeof(*r))
		return 0;
	r->type = PY_EV_STACK;
	if (bpf_ringbuf_output(&events, r, size, events_flags())) {
		__sync_fetch_and_add(&wc->lost_stack_events, 1);
		return 0;
	}
	bpf_map_update_elem(&seen_stacks, &r->stack_id, &one, BPF_ANY);
	return r->stack_id;
}

#endif /* TMBPF_PYWALK_BPF_H */
