/* SPDX-License-Identifier: MIT */
/*
 * Where the exact tier puts its uprobes on one interpreter, and what coverage
 * that gives.
 *
 * tracemalloc hooks the three allocator tables (PyMem_SetAllocator), so the
 * faithful probe points are the functions those tables point at: every
 * allocation of a domain is a call through its table. On builds without LTO
 * nothing else calls them, so probing them is exactly tracemalloc's view, and
 * cheaper than the public API (their first instructions are often ones the
 * kernel emulates). LTO builds (Debian's python3.11) inline the default
 * targets behind "is the pointer still the default?" guards into ~100 callers;
 * there, a domain is only fully visible when its table points somewhere else,
 * which PYTHONMALLOC=malloc arranges for the object and memory domains.
 */
#ifndef TMBPF_CAPTURE_PLAN_H
#define TMBPF_CAPTURE_PLAN_H

#include "snapshot/snapshot.h"
#include "tracer/exact_tracer.h"
#include "tracer/pyinterp.h"

#define CAPTURE_MAX_PROBES 32
#define CAPTURE_LINK_MAX CAPTURE_MAX_PROBES    /* probe points in one BPF link */

struct capture_plan {
	struct exact_probe probes[CAPTURE_MAX_PROBES];
	size_t nprobes;
	char names[CAPTURE_MAX_PROBES][160];    /* storage for probes[i].name */
	char binaries[4][PATH_MAX];             /* storage for probes[i].binary */
	size_t nbinaries;
	enum tm_coverage coverage;
	char coverage_note[640];
	const char *set_pythonmalloc;           /* `run`: value to give the child, or NULL */
	unsigned single_stepped;                /* probes on instructions the kernel single-steps */
	bool start_gate;                        /* `run`: record from PYTHONTRACEMALLOC's start point */
};

/* `tmbpf run`: the program has not started. user_pythonmalloc is the
 * PYTHONMALLOC the child would inherit (NULL if unset). */
int capture_plan_for_run(const struct py_interp *pi, const char *user_pythonmalloc,
			 bool reattribute, struct capture_plan *plan, struct tm_error *err);

/* Host-wide mode (`tmbpf attach --all`): one plan per interpreter file, on
 * its default allocator functions, attached for every process at once. */
int capture_plan_for_file(const struct py_interp *pi, bool reattribute,
			  struct capture_plan *plan, struct tm_error *err);

/* `tmbpf attach -p PID`: from the allocator tables as they are now. */
int capture_plan_for_pid(const struct py_interp *pi, bool reattribute,
			 struct capture_plan *plan, struct tm_error *err);

#endif
