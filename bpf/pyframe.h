/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the BPF frame walker needs to know about one CPython interpreter, and
 * what it records per frame. Shared by the BPF programs and user/tracer/.
 *
 * The walker finds the calling thread's own PyThreadState the way tracemalloc
 * does (PyGILState_GetThisThreadState = pthread_getspecific(autoTSSkey)), by
 * reading glibc's thread-specific-data array from the thread pointer (fsbase),
 * then follows the frame chain of that thread state, skipping the frames that
 * tracemalloc skips, and records (code object, instruction offset) pairs.
 * Line numbers are decoded in user space from the code object's line table.
 */
#ifndef TMBPF_PYFRAME_H
#define TMBPF_PYFRAME_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* How a version chains its frames. */
enum py_frame_layout {
	PY_LAYOUT_FRAMEOBJ_38 = 1,      /* 3.8, 3.9: PyFrameObject, f_lasti in bytes, f_trace rule */
	PY_LAYOUT_FRAMEOBJ_310 = 2,     /* 3.10: PyFrameObject, f_lasti in code units, f_lineno rule */
	PY_LAYOUT_INTERP_311 = 3,       /* 3.11: tstate->cframe->current_frame, _PyInterpreterFrame */
	PY_LAYOUT_INTERP_312 = 4,       /* 3.12: same chain, C-stack shim frames (owner 3) */
	PY_LAYOUT_INTERP_313 = 5,       /* 3.13: tstate->current_frame, f_executable may be None */
};

#define PY_OWNED_BY_GENERATOR 1
#define PY_OWNED_BY_CSTACK 3

/* Byte offsets; all verified per version (see user/tracer/pyoffsets.c). */
struct py_offsets {
	__u32 py_version;               /* PY_VERSION_HEX >> 8, e.g. 0x030b02 for 3.11.2 */
	__u32 layout;                   /* enum py_frame_layout */
	/* _PyRuntime.autoTSSkey: Py_tss_t { int _is_initialized; unsigned _key; } */
	__u32 rt_tss_initialized;
	__u32 rt_tss_key;
	/* PyThreadState */
	__u32 ts_frame;                 /* <=3.10 frame, 3.11/3.12 cframe, 3.13 current_frame */
	__u32 cframe_current_frame;     /* 3.11/3.12: _PyCFrame.current_frame */
	/* PyFrameObject (<=3.10) or _PyInterpreterFrame (3.11+) */
	__u32 f_back;                   /* f_back / previous */
	__u32 f_code;                   /* f_code / f_executable */
	__u32 f_lasti;                  /* <=3.10: int f_lasti; 3.11+: prev_instr / instr_ptr */
	__u32 f_trace;                  /* 3.8/3.9: f_trace */
	__u32 f_lineno;                 /* <=3.10: f_lineno */
	__u32 f_owner;                  /* 3.11+: owner (char) */
	/* PyCodeObject: the walker reads [co_block_off, co_block_off + co_block_len)
	 * of each frame's code object (<= 128 bytes) to tell apart code objects
	 * that lived at the same address one after the other */
	__u32 co_block_off;
	__u32 co_block_len;
	__u32 co_firstlineno;           /* int */
	__u32 co_filename;              /* PyObject* */
	__u32 co_linetable;             /* co_lnotab (3.8/3.9) or co_linetable */
	__u32 co_firsttraceable;        /* 3.11+ */
	__u32 co_code_adaptive;         /* 3.11+ */
	/* str (PyASCIIObject...) and bytes objects, to copy a new code object's
	 * filename and line table while it is certainly alive */
	__u32 u_length;
	__u32 u_state;
	__u32 u_ascii_data;             /* data offset of compact ASCII strings */
	__u32 u_compact_data;           /* data offset of compact non-ASCII strings */
	__u32 b_size;
	__u32 b_sval;
	/* glibc: struct pthread offsets from the thread pointer (fsbase) */
	__u32 tsd_first_block;          /* specific_1stblock[0] (keys 0..31, 16 B each) */
	__u32 tsd_second_level;         /* specific[] (pointers to blocks of 32 keys) */
};

/* Per-process state the BPF programs keep (map "procs", keyed by tgid). */
struct py_proc {
	struct py_offsets off;
	__u64 runtime_vaddr;            /* link-time address of _PyRuntime in its module */
	__s64 bias;                     /* load bias of that module; valid if bias_known */
	__u32 bias_known;
	__u32 tss_key;                  /* pthread key of autoTSSkey; valid if tss_key_known */
	__u32 tss_key_known;
	__u32 flags;                    /* PY_PROC_* */
	/* Frames below the first complete one are counted for total_nframe
	 * without reading their code object when count_fast is set: 3.11 has no
	 * incomplete frame there, 3.12 only C-stack shims (owner 3, told by the
	 * frame itself), 3.13 those and the __init__ shims, whose code object is
	 * _Py_InitCleanup (link-time address below, 0: unknown, then no fast count). */
	__u32 count_fast;
	__u32 pad;
	__u64 init_cleanup_vaddr;
};

#define PY_PROC_FINALIZING (1u << 0)   /* Py_FinalizeEx entered: snapshot frozen */
#define PY_PROC_WAIT_START (1u << 1)   /* record nothing until PY_PROC_STARTED */
#define PY_PROC_STARTED    (1u << 2)   /* the interpreter reached tracemalloc's start point */

/* One recorded frame. */
#define PYF_LINENO (1u << 0)            /* addr is a line number (<=3.10 tracing override) */
#define PYF_NONE   (1u << 1)            /* no usable code object: ("<unknown>", 0) */

struct py_frame {
	__u64 code;                     /* PyCodeObject* in the target */
	__s32 addr;                     /* byte offset for PyCode_Addr2Line, or a line (PYF_LINENO) */
	__u32 flags;
	/* what the code object held when the frame was recorded: user space
	 * checks the object it reads later is still that one */
	__s32 firstlineno;
	__u32 ident;                    /* py_code_ident(co_filename, co_linetable) */
};

/* A 32-bit digest of a code object's filename and line-table pointers. */
static inline __u32 py_code_ident(__u64 filename, __u64 linetable)
{
	__u64 h = (filename ^ (linetable * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;

	return (__u32)(h >> 32);
}

/* Status bits of one walk (stack events carry them). */
#define WALK_NO_TSTATE   (1u << 0)      /* no thread state: ("<unknown>", 0) */
#define WALK_TRUNCATED   (1u << 1)      /* more than max_walk frames: total is a lower bound */
#define WALK_UNREADABLE  (1u << 2)      /* a read of target memory failed mid-walk */
#define WALK_NO_RUNTIME  (1u << 3)      /* interpreter not initialised (no TSS key yet) */
#define WALK_CODE_UNREADABLE (1u << 4)  /* a code object could not be read: frame dropped */

/* Counters every program that walks stacks keeps (embedded in its stats). */
struct walk_counters {
	__u64 lost_stack_events;        /* ring buffer full: traceback unknown */
	__u64 unreadable_stacks;        /* a frame read failed mid-walk */
	__u64 truncated_stacks;         /* deeper than max_walk: total_nframe is a lower bound */
	__u64 no_tstate;                /* no Python thread state: ("<unknown>", 0) */
	__u64 before_init;              /* before the runtime's TSS key existed */
};

/* Ring buffer records all start with { __u32 type; __u32 tgid; }. */
#define PY_EV_STACK 1                   /* struct stack_event_head + nframe py_frame */

struct stack_event_head {
	__u32 type;
	__u32 tgid;
	__u64 stack_id;
	__u32 nframe;
	__u32 total_nframe;
	__u32 status;
	__u32 pad;
};

/* The first stack that uses a code object brings a copy of what resolving it
 * needs: the object may die (a module's top-level code is freed right after
 * the import) before user space could read it. */
#define PY_EV_CODE 2
#define PY_CODE_STR_MAX 1024            /* bytes of filename data copied */
#define PY_CODE_LT_MAX 32768            /* bytes of line table copied */
#define PY_CODE_STR_OBJ 64              /* bytes [8, 72) of the str object */

#define CODE_EV_STR     (1u << 0)       /* str_obj and string data are valid */
#define CODE_EV_LT      (1u << 1)       /* line table is valid */

struct code_event {
	__u32 type;                     /* PY_EV_CODE */
	__u32 tgid;
	__u64 code;
	__s32 firstlineno;
	__u32 ident;
	__u32 flags;                    /* CODE_EV_* */
	__u32 str_nbytes;               /* string data bytes in data[0..) */
	__u32 lt_nbytes;                /* line table bytes in data[PY_CODE_STR_MAX..) */
	__u32 pad;
	__u8 str_obj[PY_CODE_STR_OBJ];  /* ob_type, length, hash, state... */
	__u8 data[PY_CODE_STR_MAX + PY_CODE_LT_MAX];
};

#define PY_MAX_NFRAME 256               /* frames stored per traceback (--nframe) */
#define PY_DEFAULT_MAX_WALK 1024        /* frames walked to count total_nframe */

#endif /* TMBPF_PYFRAME_H */
