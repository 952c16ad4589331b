/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the tracers' loaders. */
#ifndef TMBPF_BPF_UTIL_H
#define TMBPF_BPF_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_object;

/* Routes libbpf's messages to stderr; debug/info only when verbose. */
void tm_libbpf_setup(bool verbose);

/* What the tracer costs: memory charged to the object's BPF maps plus this
 * process's heap (tracemalloc's get_tracemalloc_memory() counterpart). */
uint64_t tm_tracer_memory(struct bpf_object *obj);

/* Program runs the kernel skipped because another BPF program was already
 * running on that CPU (a preempted program, an interrupt): events lost. */
uint64_t tm_bpf_recursion_misses(struct bpf_object *obj);

/* Resident set size of pid in bytes (from /proc/PID/statm), 0 if unknown. */
uint64_t tm_proc_rss(pid_t pid);

struct ring_buffer;

/* Waits up to timeout_ms for ring-buffer records and handles all that are
 * there (most records do not wake the reader: events_flags() in
 * pywalk.bpf.h). Returns the number handled, or -1 (EINTR counts as 0). */
int tm_ring_poll(struct ring_buffer *rb, int timeout_ms);

/* CLOCK_REALTIME in nanoseconds. */
uint64_t tm_now_ns(void);

#endif
