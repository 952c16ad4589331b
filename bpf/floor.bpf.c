// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of any uprobe tracer, for scripts/bench-overhead: programs that
 * do nothing, attached where the exact tier attaches (same functions, same
 * instructions, entry + return where it has both, per-PID perf-event
 * uprobes with a BPF cookie) by scripts/bench/uprobe-floor.c. Whatever a
 * traced program loses under them is the trap, the kernel's uprobe and
 * uretprobe machinery and the call of a BPF program: the time tmbpf's own BPF
 * work is then measured against.
 *
 * count_hits is read-only data fixed at load time: when false (timing runs)
 * the verifier removes the branch and both programs are `return 0`; when true
 * (one separate run) each hit adds one to its probe's per-CPU counter, which
 * gives the number of events the timings are divided by.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FLOOR_MAX_COUNTERS 128          /* cookie = 2 * probe index + is_return */

const volatile bool count_hits = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOOR_MAX_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void count(struct pt_regs *ctx)
{
	__u32 slot = (__u32)bpf_get_attach_cookie(ctx);
	__u64 *n;

	n = bpf_map_lookup_elem(&hits, &slot);
	if (n)
		(*n)++;                         /* per-CPU: no atomic needed */
}

SEC("uprobe")
int floor_entry(struct pt_regs *ctx)
{
	if (count_hits)
		count(ctx);
	return 0;
}

SEC("uretprobe")
int floor_return(struct pt_regs *ctx)
{
	if (count_hits)
		count(ctx);
	return 0;
}
