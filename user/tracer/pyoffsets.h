/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-version structure offsets of CPython 3.8 - 3.13 (x86-64, release GIL
 * builds), for the BPF frame walker (struct py_offsets, bpf/pyframe.h) and for
 * user space (struct py_user_offsets: code objects, strings, bytes, runtime
 * lists).
 *
 * Every number was read with gdb `ptype /o` / offsetof from the pyenv builds
 * (tests/tracer/test_discovery.c re-checks them against the DWARF of each
 * installed libpython), and the 3.11 table was checked against Debian's
 * stripped python3.11 by live reads. For 3.13 the interpreter publishes most
 * of them itself in _Py_DebugOffsets at the start of _PyRuntime: those values
 * are used, after checking they agree with the table.
 */
#ifndef TMBPF_TRACER_PYOFFSETS_H
#define TMBPF_TRACER_PYOFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyframe.h"
#include "snapshot/snapshot.h"

#define PY_SUPPORTED_VERSIONS "3.8, 3.9, 3.10, 3.11, 3.12, 3.13"
#define PY_MIN_MINOR 8
#define PY_MAX_MINOR 13

/* How a code object maps instruction offsets to lines (see pycode.h). */
enum py_linetable_kind {
	PY_LINETABLE_LNOTAB = 1,        /* 3.8, 3.9: co_lnotab */
	PY_LINETABLE_310 = 2,           /* 3.10: PEP 626 co_linetable */
	PY_LINETABLE_311 = 3,           /* 3.11+: location table */
};

struct py_user_offsets {
	/* PyObject / PyTypeObject */
	uint32_t ob_type;
	uint32_t tp_name;
	uint32_t tp_flags;              /* unsigned long; Py_TPFLAGS_UNICODE_SUBCLASS = 1 << 28 */
	/* PyCodeObject */
	uint32_t co_filename;
	uint32_t co_name;
	uint32_t co_qualname;           /* 0: no co_qualname (<= 3.10) */
	uint32_t co_firstlineno;        /* int */
	uint32_t co_linetable;          /* co_lnotab (3.8, 3.9) or co_linetable */
	uint32_t co_code;               /* <= 3.10: bytes object; 0 on 3.11+ */
	uint32_t co_ob_size;            /* 3.11+: Py_SIZE(code) = code units; 0 before */
	uint32_t co_code_adaptive;      /* 3.11+: inline bytecode */
	uint32_t sizeof_code;
	uint32_t linetable_kind;        /* enum py_linetable_kind */
	/* PyASCIIObject / PyCompactUnicodeObject / PyUnicodeObject */
	uint32_t u_length;              /* Py_ssize_t, code points */
	uint32_t u_state;               /* u32 bit field */
	uint32_t u_ascii_size;          /* data of compact ASCII strings */
	uint32_t u_compact_size;        /* data of compact non-ASCII strings */
	uint32_t u_data;                /* PyUnicodeObject.data.any (non-compact) */
	bool u_has_ready;               /* <= 3.11: state bit 7 is "ready" */
	/* PyBytesObject */
	uint32_t b_size;
	uint32_t b_sval;
	/* _PyRuntimeState */
	uint32_t rt_interp_head;
	uint32_t rt_interp_main;
	uint32_t rt_tss;                /* autoTSSkey (Py_tss_t) */
	uint32_t rt_alloc_raw;          /* 3.12+: allocators.standard.raw; 0: static _PyMem_Raw */
	uint32_t rt_alloc_mem;
	uint32_t rt_alloc_obj;
	bool rt_debug_offsets;          /* 3.13+: _Py_DebugOffsets at offset 0 */
	/* PyInterpreterState / PyThreadState */
	uint32_t is_next;
	uint32_t is_threads_head;
	uint32_t ts_next;
	uint32_t ts_thread_id;          /* pthread_self() of the thread */
	uint32_t ts_native_thread_id;   /* 3.11+: kernel TID; 0 before */
};

struct py_version_offsets {
	unsigned minor;                 /* 3.minor */
	struct py_offsets bpf;          /* py_version and the tsd_* fields are left 0 */
	struct py_user_offsets user;
};

/* The table for 3.minor, or NULL if unsupported. */
const struct py_version_offsets *pyoffsets_for_minor(unsigned minor);

/* Size of the _Py_DebugOffsets prefix we read (3.13: 584 bytes). */
#define PY_DEBUG_OFFSETS_SIZE 584
#define PY_DEBUG_OFFSETS_COOKIE "xdebugpy"

/* Applies 3.13's _Py_DebugOffsets (raw = the first PY_DEBUG_OFFSETS_SIZE
 * bytes of _PyRuntime, from the live process or the file) to bpf/user.
 * Checks the cookie, that the version's major.minor equals hexversion's, that
 * the build is not free-threaded, and that every field the table also knows
 * has the table's value. Returns 0, or -EINVAL with err naming the field. */
int pyoffsets_apply_debug_offsets(const uint8_t *raw, size_t len, uint32_t hexversion,
				  struct py_offsets *bpf, struct py_user_offsets *user,
				  struct tm_error *err);

/* Reads the version fields of a _Py_DebugOffsets block without applying it:
 * returns false if the cookie is missing. */
bool pyoffsets_debug_version(const uint8_t *raw, size_t len, uint64_t *version,
			     uint64_t *free_threaded);

#endif /* TMBPF_TRACER_PYOFFSETS_H */
