/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Finding and understanding the CPython interpreter of a process (or of a
 * python binary before it runs): which file holds it, its version, where
 * _PyRuntime is, the offsets the BPF walker needs, the allocator entry points
 * and tables, and whether the build inlined its allocators (LTO).
 *
 *   py_interp_open_pid(pid)     a live process: module from /proc/PID/maps,
 *                               load bias known, 3.13 offsets read live
 *   py_interp_open_binary(path) `tmbpf run`: the executable, or the libpython
 *                               its DT_NEEDED resolves to; no bias yet
 *
 * Supported: CPython 3.8 - 3.13, x86-64, glibc, release GIL builds. Anything
 * else gets one error line saying why.
 */
#ifndef TMBPF_TRACER_PYINTERP_H
#define TMBPF_TRACER_PYINTERP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyframe.h"
#include "snapshot/snapshot.h"
#include "tracer/glibc_tsd.h"
#include "tracer/pyoffsets.h"

struct remote;

/* Functions the capture plan may probe. */
enum py_func_id {
	PY_FN_RAW_MALLOC, PY_FN_RAW_CALLOC, PY_FN_RAW_REALLOC, PY_FN_RAW_FREE,
	PY_FN_MEM_MALLOC, PY_FN_MEM_CALLOC, PY_FN_MEM_REALLOC, PY_FN_MEM_FREE,
	PY_FN_OBJ_MALLOC, PY_FN_OBJ_CALLOC, PY_FN_OBJ_REALLOC, PY_FN_OBJ_FREE,
	PY_FN_TRACEMALLOC_TRACK, PY_FN_TRACEMALLOC_UNTRACK,
	PY_FN_FINALIZE_EX,
	PY_FN_NEW_REFERENCE,            /* _Py_NewReference: exported 3.9+ */
	PY_FN_EVAL_FRAME,               /* _PyEval_EvalFrameDefault */
	PY_FN_COUNT
};

/* The function's C name ("PyMem_RawMalloc", ...). */
const char *py_func_name(enum py_func_id id);

struct py_func {
	bool found;
	bool exported;                  /* in .dynsym */
	uint64_t vaddr;                 /* link-time address */
	uint64_t size;
	uint64_t file_offset;           /* for uprobe attachment */
	/* Where an entry+return probe pair can go (x86_probe_offset): offset
	 * from the function start, and whether the kernel emulates the
	 * instruction there (cheap) or single-steps it. */
	uint32_t probe_offset;
	bool probe_emulated;
	bool entry_emulated;            /* is the instruction at offset 0 emulated? */
};

enum py_domain { PY_DOMAIN_RAW = 0, PY_DOMAIN_MEM = 1, PY_DOMAIN_OBJ = 2 };

/* PyMemAllocatorEx */
struct py_allocator {
	uint64_t ctx, malloc, calloc, realloc, free;
};

struct py_alloc_table {
	bool found;
	uint64_t vaddr;                 /* link-time address of the PyMemAllocatorEx */
	char how[96];                   /* how it was found */
	struct py_allocator initial;    /* static contents (link-time addresses) */
};

/* Code references, in .text, to the allocator tables and to the default
 * allocator functions, outside the functions that are supposed to use them
 * (public API, allocator set-up, the default functions themselves). */
struct py_inline_report {
	bool analyzed;
	uint64_t insns;                 /* instructions decoded in .text */
	uint64_t undecoded;             /* bytes skipped as undecodable */
	uint64_t slot_refs[3];          /* memory operands in table[domain] */
	uint64_t target_imm;            /* immediates equal to a default function (guards) */
	uint64_t target_lea;            /* RIP-relative address-of a default function */
	uint64_t target_calls;          /* direct call/jmp to a default function */
	uint64_t slot_refs_inside;      /* the same kinds of reference, inside the */
	uint64_t target_refs_inside;    /*  expected functions (not counted above) */
	bool complete;                  /* verdict: no reference outside */
	char verdict[200];              /* one line for the user */
};

enum py_version_source {
	PY_VERSION_SRC_PY_VERSION = 1,  /* the Py_Version constant (3.11+) */
	PY_VERSION_SRC_GETVERSION,      /* the version string Py_GetVersion formats */
	PY_VERSION_SRC_SONAME,          /* libpythonX.Y in the file name (major.minor only) */
};

struct py_interp {
	/* the module that holds the interpreter */
	char host_path[PATH_MAX];       /* open this (uprobes, ELF reads) */
	char target_path[PATH_MAX];     /* the same file as the target names it */
	bool shared_lib;                /* libpython*.so, else the executable itself */
	bool exec_type;                 /* ET_EXEC (non-PIE): link-time = run-time addresses */
	pid_t pid;                      /* 0 for a binary not yet running */
	bool bias_known;
	int64_t bias;
	/* version */
	uint32_t hexversion;            /* PY_VERSION_HEX (micro/level 0 from the soname) */
	unsigned major, minor, micro;
	char version[32];               /* "3.11.2" */
	enum py_version_source version_source;
	/* runtime state */
	uint64_t runtime_vaddr;         /* _PyRuntime, link-time */
	char runtime_how[64];           /* "symbol _PyRuntime" / "section .PyRuntime" */
	bool debug_offsets_used;        /* 3.13: offsets checked/taken from _Py_DebugOffsets */
	char debug_offsets_from[32];    /* "live process" / "file" */
	struct py_offsets off;          /* for the BPF walker, tsd_* included */
	struct py_user_offsets uoff;
	struct glibc_tsd tsd;
	/* types (link-time addresses) */
	uint64_t code_type_vaddr;       /* PyCode_Type */
	uint64_t unicode_type_vaddr;    /* PyUnicode_Type */
	uint64_t bytes_type_vaddr;      /* PyBytes_Type */
	uint64_t init_cleanup_vaddr;    /* 3.13: _Py_InitCleanup (local symbol); 0 if unknown */
	/* allocator capture plan */
	struct py_func funcs[PY_FN_COUNT];
	struct py_alloc_table tables[3];        /* by enum py_domain */
	struct py_inline_report inl;
};

/* Inspects the interpreter of a running process. Errors (one line): bad pid,
 * permission, not CPython, unsupported version (names the supported ones),
 * debug or free-threaded build, not glibc. Returns 0 or a negative errno. */
int py_interp_open_pid(pid_t pid, struct py_interp *pi, struct tm_error *err);

/* py_interp_open_pid() without what only the exact tier's capture plan
 * needs (allocator tables, inlining analysis: most of its cost): what the
 * frame walker and the symbolizer need, for the growth tier, which examines
 * every process as it starts. tables[] and inl are left empty. */
int py_interp_open_pid_walker(pid_t pid, struct py_interp *pi, struct tm_error *err);

/* Inspects a python executable before it runs (path on the host). The
 * interpreter is the executable itself or the libpython it loads (DT_NEEDED,
 * resolved with its RPATH/RUNPATH, LD_LIBRARY_PATH, ld.so.cache, default
 * dirs). Returns 0 or a negative errno. */
int py_interp_open_binary(const char *path, struct py_interp *pi, struct tm_error *err);

/* Run-time address of a link-time address of the module (needs the bias). */
static inline uint64_t py_interp_addr(const struct py_interp *pi, uint64_t vaddr)
{
	return vaddr + (uint64_t)pi->bias;
}

/* The three allocator tables as they are now in the live process (run-time
 * addresses): PYTHONMALLOC=malloc/malloc_debug and an active tracemalloc
 * change them. Returns 0 or a negative errno. */
int py_interp_read_allocators(const struct py_interp *pi, struct remote *mem,
			      struct py_allocator out[3]);

/* The pthread key of _PyRuntime.autoTSSkey in the live process; -ENOENT if
 * the key is not initialised yet. */
int py_interp_read_tss_key(const struct py_interp *pi, struct remote *mem, uint32_t *key);

/* Fills a struct py_proc for the BPF "procs" map (live process). */
void py_interp_fill_proc(const struct py_interp *pi, uint32_t tss_key, bool tss_key_known,
			 struct py_proc *out);

#endif /* TMBPF_TRACER_PYINTERP_H */
