/* SPDX-License-Identifier: MIT */
/*
 * Stacks seen by BPF, resolved to tracemalloc tracebacks.
 *
 * BPF names a stack by a 64-bit hash of its raw frames (code object, offset).
 * The first time a (process, stack id) pair arrives its frames are resolved to
 * (filename, lineno) and interned into `tables`, a snapshot that holds only
 * strings, frames and tracebacks; every snapshot of a traced process starts
 * as a copy of it.
 */
#ifndef TMBPF_STACK_TABLE_H
#define TMBPF_STACK_TABLE_H

#include <sys/types.h>
#include "snapshot/snapshot.h"
#include "tracer/exact_tracer.h"

struct stack_slot {
	uint64_t stack_id;              /* 0 = empty slot */
	uint32_t tgid;
	tm_id traceback;
};

struct stack_table {
	struct tm_snapshot *tables;
	struct stack_slot *slots;
	size_t nslots, used;            /* nslots is a power of two */
	tm_id unknown_tb;               /* ("<unknown>", 0), total_nframe 1 */
	uint64_t unresolved_frames;     /* frames whose code object could not be read */
};

int stack_table_init(struct stack_table *st);
void stack_table_destroy(struct stack_table *st);

/* Resolves and interns a new stack (no-op when known). 0, or -1 on ENOMEM. */
int stack_table_add(struct stack_table *st, pid_t tgid, uint64_t stack_id, uint32_t nframe,
		    uint32_t total_nframe, const struct py_frame *frames,
		    const struct frame_resolver *resolver);

/* A ring-buffer record every walking BPF program sends: a new stack
 * (PY_EV_STACK: resolved and added) or a code object's copy (PY_EV_CODE:
 * handed to the resolver). Returns 1 if it was one of those, 0 if it is
 * another kind of record, -1 if it is malformed (the caller counts it). */
int stack_table_event(struct stack_table *st, const struct frame_resolver *resolver,
		      const void *data, size_t len);

/* Traceback id of a stack, or TM_ID_NONE when it never arrived. */
tm_id stack_table_lookup(const struct stack_table *st, pid_t tgid, uint64_t stack_id);
tm_id stack_table_unknown(const struct stack_table *st);

/* Builds a snapshot of one process from the table: the tracebacks its
 * traces use are copied in, once each (in host-wide mode the table holds the
 * stacks of every process traced so far). */
struct stack_builder {
	const struct stack_table *st;
	struct tm_snapshot *s;          /* the snapshot being built (owned until finish) */
	pid_t pid;
	uint64_t missing;               /* stack ids that never arrived: "<unknown>" */
	tm_id *tb_map;                  /* table traceback -> s's; TM_ID_NONE: not copied yet */
};

/* 0, or -1 on ENOMEM. */
int stack_builder_init(struct stack_builder *b, const struct stack_table *st, pid_t pid);
/* The traceback in b->s of a stack id of b->pid; TM_ID_NONE on ENOMEM. */
tm_id stack_builder_traceback(struct stack_builder *b, uint64_t stack_id);
/* Hands over the snapshot. */
struct tm_snapshot *stack_builder_finish(struct stack_builder *b);
void stack_builder_abort(struct stack_builder *b);

#endif
