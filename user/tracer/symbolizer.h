/* SPDX-License-Identifier: MIT */
/*
 * Resolves recorded frames (code object, offset) of traced processes to
 * (filename, lineno) by reading the code objects from the target's memory
 * (pycode.c), through one validated cache per process. Provides the
 * struct frame_resolver the tracers call as new stacks arrive.
 */
#ifndef TMBPF_SYMBOLIZER_H
#define TMBPF_SYMBOLIZER_H

#include "tracer/exact_tracer.h"
#include "tracer/pycode.h"
#include "tracer/pyinterp.h"

struct symbolizer;

struct symbolizer *symbolizer_new(void);
void symbolizer_free(struct symbolizer *sy);

/* Registers pid with its interpreter (copied). For a program that has not
 * started yet (tmbpf run), the load bias is found from /proc/PID/maps when
 * its first stack arrives. */
int symbolizer_add(struct symbolizer *sy, pid_t pid, const struct py_interp *pi);
void symbolizer_remove(struct symbolizer *sy, pid_t pid);

/* The resolver to give a tracer. */
struct frame_resolver symbolizer_resolver(struct symbolizer *sy);

/* A code object BPF copied with the first stack that used it (PY_EV_CODE):
 * frames of that object resolve from the copy, so objects that die right
 * after running (a module's top-level code) still get their lines. */
void symbolizer_add_code(struct symbolizer *sy, pid_t pid, const struct code_event *ev, size_t len);
uint64_t symbolizer_from_copy(const struct symbolizer *sy, pid_t pid);

/* Frames whose code object had been replaced by another at the same address
 * by the time it was read (counted, resolved as "<unknown>"). */
uint64_t symbolizer_replaced(const struct symbolizer *sy, pid_t pid);

/* py_interp_fill_proc() plus the code-object block the walker reads to tell
 * code objects apart (see struct py_offsets). */
void symbolizer_fill_proc(const struct py_interp *pi, uint32_t tss_key, bool tss_key_known,
			  struct py_proc *out);

/* The BPF configuration of pi's process: symbolizer_fill_proc() with the TSS
 * key read from the live process when it exists yet (else BPF reads it). */
void symbolizer_proc_config(const struct py_interp *pi, struct py_proc *out);

/* Code-object read statistics of pid (all zero if unknown). */
struct py_code_stats symbolizer_stats(const struct symbolizer *sy, pid_t pid);

#endif
