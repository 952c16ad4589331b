// SPDX-License-Identifier: MIT
/*
 * User-space half of the exact tier (see exact_tracer.h, bpf/exact.bpf.c).
 *
 * New stacks arrive on a ring buffer the first time BPF sees them; they are
 * resolved to (filename, lineno) right away, while their code objects are
 * certainly alive, and interned into one long-lived table snapshot. A snapshot
 * of a process is then a copy of those tables plus one trace per entry of the
 * live-block map.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "exact.skel.h"
#include "tracer/exact_tracer.h"
#include "tracer/bpf_util.h"
#include "tracer/capture_plan.h"
#include "tracer/stack_table.h"

/* One attachment: a uprobe_multi link (all the probe points of one program
 * in one file), or, on kernels without them, a perf-event uprobe. */
struct exact_link {
	struct bpf_link *link;          /* perf-event uprobe, or NULL */
	int fd;                         /* uprobe_multi link, or -1 */
	pid_t pid;
};

struct exact_tracer {
	struct exact_bpf *skel;
	struct ring_buffer *rb;
	struct frame_resolver resolver;
	struct stack_table stacks;      /* stack id -> traceback in stacks.tables */
	struct exact_link *links;
	size_t nlinks, links_cap;
	pid_t finalized[64];
	size_t nfinalized;
	uint64_t lost_events_bad;       /* malformed ring buffer records */
	bool multi;                     /* uprobe_multi links (kernel 6.6+) */
	struct exact_opts opts;
};

static int keep_link(struct exact_tracer *t, struct bpf_link *l, int fd, pid_t pid);

static int handle_event(void *ctx, void *data, size_t len)
{
	struct exact_tracer *t = ctx;
	const struct exact_note *h = data;
	int r = stack_table_event(&t->stacks, &t->resolver, data, len);

	if (r) {
		if (r < 0)
			t->lost_events_bad++;
		return 0;
	}
	if (len < sizeof(*h)) {
		t->lost_events_bad++;
		return 0;
	}
	if (h->type == EXACT_EV_EXEC) {
		if (t->opts.on_exec)
			t->opts.on_exec(t->opts.exec_ctx, (pid_t)h->tgid);
		return 0;
	}
	if (h->type == EXACT_EV_FINALIZE) {
		/* several probes mark finalization (Py_Exit -> Py_FinalizeEx) */
		if (!exact_tracer_finalized(t, (pid_t)h->tgid) &&
		    t->nfinalized < sizeof(t->finalized) / sizeof(t->finalized[0]))
			t->finalized[t->nfinalized++] = (pid_t)h->tgid;
		return 0;
	}
	t->lost_events_bad++;                   /* a record of no known kind */
	return 0;
}

#define ATTACH_UPROBE_MULTI 48          /* BPF_TRACE_UPROBE_MULTI (uapi 6.6) */
#define UPROBE_MULTI_RETURN 1           /* BPF_F_UPROBE_MULTI_RETURN */

/* Entries of the live-block map. */
static uint32_t live_entries(const struct exact_opts *opts)
{
	return opts->max_traces ? opts->max_traces : EXACT_DEFAULT_MAX_TRACES;
}

static struct exact_bpf *open_and_load(const struct exact_opts *opts, bool multi, int *err)
{
	struct exact_bpf *skel = exact_bpf__open();
	struct bpf_program *prog;

	if (!skel) {
		*err = -errno;
		return NULL;
	}
	skel->rodata->nframe_max = opts->nframe;
	skel->rodata->max_walk = opts->max_walk;
	skel->rodata->reattribute = opts->reattribute;
	skel->rodata->report_execs = opts->host_wide;
	bpf_map__set_max_entries(skel->maps.live, live_entries(opts));
	bpf_map__set_max_entries(skel->maps.code_scratch, libbpf_num_possible_cpus());
	if (multi)
		bpf_object__for_each_program(prog, skel->obj)
			if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
				bpf_program__set_expected_attach_type(prog, ATTACH_UPROBE_MULTI);
	*err = exact_bpf__load(skel);
	if (*err) {
		exact_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* Kernel memory of the preallocated live-block map: its elements (htab_elem,
 * key and value: 72 bytes each, measured on 6.18) and a 16-byte bucket per
 * entry rounded up to a power of two. */
static unsigned long long live_map_bytes(uint32_t entries)
{
	unsigned long long buckets = 1;

	while (buckets < entries)
		buckets <<= 1;
	return entries * 72ull + buckets * 16;
}

/* MemAvailable from /proc/meminfo in bytes, 0 if unknown. */
static unsigned long long mem_available(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib * 1024;
}

/* The live-block map takes all its memory at load: refuse a size that would
 * starve the host rather than let the kernel try (or succeed). */
static int check_live_map_size(uint32_t entries, struct tm_error *err)
{
	unsigned long long need = live_map_bytes(entries), avail = mem_available();

	if (avail && need > avail / 2) {
		tm_error_set(err, "--max-traces %u needs ~%llu MiB of kernel memory, more than half of the %llu MiB available",
			     entries, need >> 20, avail >> 20);
		return -1;
	}
	return 0;
}

struct exact_tracer *exact_tracer_open(const struct exact_opts *opts,
				       const struct frame_resolver *resolver,
				       struct tm_error *err)
{
	struct exact_tracer *t;
	int e;

	if (check_live_map_size(live_entries(opts), err))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		tm_error_set(err, "out of memory");
		return NULL;
	}
	t->opts = *opts;
	t->resolver = *resolver;
	tm_libbpf_setup(opts->verbose);
	if (stack_table_init(&t->stacks) < 0) {
		tm_error_set(err, "out of memory");
		free(t);
		return NULL;
	}
	/* uprobe_multi links (kernel 6.6+) attach a program to all its probe
	 * points at once and detach in one RCU grace period; perf-event uprobes
	 * cost one each (150 ms apiece at exit here). Older kernels refuse the
	 * attach type at load: then the object is loaded again without it. */
	t->skel = open_and_load(opts, true, &e);
	t->multi = t->skel != NULL;
	if (!t->skel)
		t->skel = open_and_load(opts, false, &e);
	if (!t->skel && (e == -ENOMEM || e == -E2BIG)) {
		tm_error_set(err, "cannot load the exact-tier BPF programs: %s (the live-block map preallocates room for %u blocks; lower --max-traces)",
			     strerror(-e), live_entries(opts));
		goto fail;
	}
	if (!t->skel) {
		tm_error_set(err, "cannot load the exact-tier BPF programs: %s (run as root on a kernel with BPF, BTF and uprobes)",
			     strerror(-e));
		goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), handle_event, t, NULL);
	if (!t->rb) {
		tm_error_set(err, "cannot open the BPF ring buffer: %s", strerror(errno));
		goto fail;
	}
	if (opts->host_wide) {
		struct bpf_link *l = bpf_program__attach(t->skel->progs.on_exec);

		if (!l || keep_link(t, l, -1, -1) < 0) {
			tm_error_set(err, "cannot attach to the sched:sched_process_exec tracepoint: %s",
				     strerror(errno));
			bpf_link__destroy(l);
			goto fail;
		}
	}
	return t;
fail:
	exact_tracer_close(t);
	return NULL;
}

static void destroy_links(struct exact_link *links, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (links[i].fd >= 0)
			close(links[i].fd);
		bpf_link__destroy(links[i].link);
	}
}

void exact_tracer_close(struct exact_tracer *t)
{
	if (!t)
		return;
	destroy_links(t->links, t->nlinks);
	free(t->links);
	ring_buffer__free(t->rb);
	exact_bpf__destroy(t->skel);
	stack_table_destroy(&t->stacks);
	free(t);
}

static int keep_link(struct exact_tracer *t, struct bpf_link *l, int fd, pid_t pid)
{
	if (t->nlinks == t->links_cap) {
		size_t cap = t->links_cap ? t->links_cap * 2 : 32;
		struct exact_link *n = realloc(t->links, cap * sizeof(*n));

		if (!n)
			return -1;
		t->links = n;
		t->links_cap = cap;
	}
	t->links[t->nlinks].link = l;
	t->links[t->nlinks].fd = fd;
	t->links[t->nlinks].pid = pid;
	t->nlinks++;
	return 0;
}

static struct bpf_program *program_for(struct exact_tracer *t, enum exact_fn fn)
{
	switch (fn) {
	case EXACT_FN_MALLOC:
	case EXACT_FN_CALLOC:
	case EXACT_FN_REALLOC:
		return t->skel->progs.alloc_enter;
	case EXACT_FN_FREE:
		return t->skel->progs.free_enter;
	case EXACT_FN_TRACK:
		return t->skel->progs.track_enter;
	case EXACT_FN_UNTRACK:
		return t->skel->progs.untrack_enter;
	case EXACT_FN_NEWREF:
		return t->skel->progs.newref_enter;
	case EXACT_FN_FINALIZE:
		return t->skel->progs.finalize_enter;
	case EXACT_FN_START:
		return NULL;
	}
	return NULL;
}

static struct bpf_program *return_program_for(struct exact_tracer *t, enum exact_fn fn)
{
	switch (fn) {
	case EXACT_FN_MALLOC:
	case EXACT_FN_CALLOC:
	case EXACT_FN_REALLOC:
		return t->skel->progs.alloc_exit;
	case EXACT_FN_START:
		return t->skel->progs.start_exit;
	default:
		return NULL;
	}
}

static __u64 probe_cookie(const struct exact_probe *p);
static void attach_error(const struct exact_probe *p, pid_t pid, bool retprobe, int e,
			 struct tm_error *err);

/* Perf-event uprobes, one per probe point (kernels before 6.6). */
static int attach_perf(struct exact_tracer *t, pid_t pid, struct bpf_program *prog, bool retprobe,
		       const struct exact_probe *const *sel, size_t n, struct tm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo);
		struct bpf_link *l;

		uo.retprobe = retprobe;
		uo.bpf_cookie = probe_cookie(sel[i]);
		l = bpf_program__attach_uprobe_opts(prog, pid, sel[i]->binary, sel[i]->file_offset, &uo);
		if (!l) {
			attach_error(sel[i], pid, retprobe, errno, err);
			return -1;
		}
		if (keep_link(t, l, -1, pid) < 0) {
			bpf_link__destroy(l);
			tm_error_set(err, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* struct bpf_attr's link_create for uprobe_multi (uapi 6.6), spelled out:
 * the libbpf and headers of the build machine may predate it. */
struct uprobe_multi_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
};

static __u64 probe_cookie(const struct exact_probe *p)
{
	return EXACT_COOKIE(p->fn, p->ctx_arg ? EXACT_FN_CTX : 0, p->vaddr);
}

static void attach_error(const struct exact_probe *p, pid_t pid, bool retprobe, int e,
			 struct tm_error *err)
{
	char who[32];

	if (pid < 0)
		snprintf(who, sizeof(who), "every process");
	else
		snprintf(who, sizeof(who), "PID %d", (int)pid);
	tm_error_set(err, "cannot attach %s to %s (%s at file offset 0x%llx) for %s: %s",
		     retprobe ? "a uretprobe" : "a uprobe", p->name, p->binary,
		     (unsigned long long)p->file_offset, who, strerror(e));
}

/* One uprobe_multi link: prog on the probes in sel[] (same binary). */
static int attach_multi(struct exact_tracer *t, pid_t pid, struct bpf_program *prog, bool retprobe,
			const struct exact_probe *const *sel, size_t n, struct tm_error *err)
{
	union bpf_attr attr;
	struct uprobe_multi_attr *a = (struct uprobe_multi_attr *)&attr;
	__u64 offsets[CAPTURE_LINK_MAX], cookies[CAPTURE_LINK_MAX];
	int fd;

	_Static_assert(sizeof(struct uprobe_multi_attr) <= sizeof(union bpf_attr), "bpf_attr");
	if (n > CAPTURE_LINK_MAX) {
		tm_error_set(err, "too many probe points in one link");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		offsets[i] = sel[i]->file_offset;
		cookies[i] = probe_cookie(sel[i]);
	}
	memset(&attr, 0, sizeof(attr));
	a->prog_fd = (__u32)bpf_program__fd(prog);
	a->attach_type = ATTACH_UPROBE_MULTI;
	a->path = (__u64)(uintptr_t)sel[0]->binary;
	a->offsets = (__u64)(uintptr_t)offsets;
	a->cookies = (__u64)(uintptr_t)cookies;
	a->cnt = (__u32)n;
	a->multi_flags = retprobe ? UPROBE_MULTI_RETURN : 0;
	a->pid = pid < 0 ? 0 : (__u32)pid;      /* 0: every process */
	fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd < 0) {
		attach_error(sel[0], pid, retprobe, errno, err);
		return -1;
	}
	if (keep_link(t, NULL, fd, pid) < 0) {
		close(fd);
		tm_error_set(err, "out of memory");
		return -1;
	}
	return 0;
}

/* Attaches one program to the probes it serves: grouped into links per
 * binary; optional probes alone, so that one that fails drops only itself. */
static int attach_program(struct exact_tracer *t, pid_t pid, struct bpf_program *prog, bool retprobe,
			  const struct exact_probe *probes, size_t nprobes, struct tm_error *err)
{
	bool done[CAPTURE_LINK_MAX] = { false };

	if (nprobes > CAPTURE_LINK_MAX) {
		tm_error_set(err, "too many probe points");
		return -1;
	}
	for (size_t i = 0; i < nprobes; i++) {
		const struct exact_probe *sel[CAPTURE_LINK_MAX];
		size_t n = 0;
		struct tm_error e2;

		if (done[i] || (retprobe ? return_program_for(t, probes[i].fn) : program_for(t, probes[i].fn)) != prog)
			continue;
		for (size_t j = i; j < nprobes; j++) {
			struct bpf_program *pj = retprobe ? return_program_for(t, probes[j].fn) :
							    program_for(t, probes[j].fn);

			if (done[j] || pj != prog || strcmp(probes[j].binary, probes[i].binary) ||
			    probes[j].optional != probes[i].optional || (probes[i].optional && j != i))
				continue;
			sel[n++] = &probes[j];
			done[j] = true;
		}
		if (t->multi ? attach_multi(t, pid, prog, retprobe, sel, n, &e2) :
			       attach_perf(t, pid, prog, retprobe, sel, n, &e2)) {
			if (probes[i].optional)
				continue;
			*err = e2;
			return -1;
		}
	}
	return 0;
}

/* pid -1: every process that maps the probed files. Return probes first: a
 * call already inside a function when its entry probe appears must not
 * leave the nesting depth raised. */
static int attach_probes(struct exact_tracer *t, pid_t pid, const struct exact_probe *probes,
			 size_t nprobes, struct tm_error *err)
{
	struct bpf_program *ret_progs[] = { t->skel->progs.alloc_exit, t->skel->progs.start_exit };
	struct bpf_program *entry_progs[] = {
		t->skel->progs.alloc_enter, t->skel->progs.free_enter, t->skel->progs.track_enter,
		t->skel->progs.untrack_enter, t->skel->progs.newref_enter, t->skel->progs.finalize_enter,
	};

	for (size_t i = 0; i < sizeof(ret_progs) / sizeof(ret_progs[0]); i++)
		if (attach_program(t, pid, ret_progs[i], true, probes, nprobes, err))
			return -1;
	for (size_t i = 0; i < sizeof(entry_progs) / sizeof(entry_progs[0]); i++)
		if (attach_program(t, pid, entry_progs[i], false, probes, nprobes, err))
			return -1;
	return 0;
}

int exact_tracer_add_process(struct exact_tracer *t, pid_t pid, const struct py_proc *cfg,
			     const struct exact_probe *probes, size_t nprobes,
			     struct tm_error *err)
{
	struct exact_stats zero = {};
	__u32 key = (__u32)pid;

	if (bpf_map__update_elem(t->skel->maps.procs, &key, sizeof(key), cfg, sizeof(*cfg), BPF_ANY) ||
	    bpf_map__update_elem(t->skel->maps.stats, &key, sizeof(key), &zero, sizeof(zero), BPF_ANY)) {
		tm_error_set(err, "cannot register PID %d with the BPF programs: %s", (int)pid,
			     strerror(errno));
		return -1;
	}
	return attach_probes(t, pid, probes, nprobes, err);
}

int exact_tracer_attach_file(struct exact_tracer *t, const struct exact_probe *probes,
			     size_t nprobes, struct tm_error *err)
{
	return attach_probes(t, -1, probes, nprobes, err);
}

int exact_tracer_poll(struct exact_tracer *t, int timeout_ms)
{
	return tm_ring_poll(t->rb, timeout_ms);
}

bool exact_tracer_finalized(struct exact_tracer *t, pid_t pid)
{
	for (size_t i = 0; i < t->nfinalized; i++)
		if (t->finalized[i] == pid)
			return true;
	return false;
}

int exact_tracer_stats(struct exact_tracer *t, pid_t pid, struct exact_stats *out)
{
	__u32 key = (__u32)pid;

	return bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key), out, sizeof(*out), 0);
}

uint64_t exact_tracer_memory(struct exact_tracer *t)
{
	return tm_tracer_memory(t->skel->obj);
}

static void set_exact_counters(struct tm_snapshot *s, const struct exact_stats *st,
			       uint64_t missing_stacks, uint64_t unresolved_frames,
			       uint64_t bad_events, uint64_t no_proc, uint64_t recursion_misses)
{
	tm_set_counter(s, "lost.live_map_full", st->lost_live_full);
	tm_set_counter(s, "lost.stack_events", st->walk.lost_stack_events);
	tm_set_counter(s, "lost.stack_unknown", missing_stacks);
	tm_set_counter(s, "lost.bad_events", bad_events);
	tm_set_counter(s, "lost.bpf_recursion", recursion_misses);
	tm_set_counter(s, "frames.unreadable_stacks", st->walk.unreadable_stacks);
	tm_set_counter(s, "frames.unresolved", unresolved_frames);
	tm_set_counter(s, "frames.truncated_walks", st->walk.truncated_stacks);
	tm_set_counter(s, "calls.missed_returns", st->missed_returns);
	tm_set_counter(s, "calls.no_thread_state", st->walk.no_tstate);
	tm_set_counter(s, "calls.before_runtime_init", st->walk.before_init);
	tm_set_counter(s, "calls.after_finalize", st->after_finalize);
	tm_set_counter(s, "calls.unknown_process", no_proc);
	tm_set_counter(s, "blocks.recorded", st->allocs);
	tm_set_counter(s, "blocks.freed", st->frees);
	tm_set_counter(s, "blocks.reattributed", st->reattributed);
}

struct tm_snapshot *exact_tracer_snapshot(struct exact_tracer *t, pid_t pid,
					  struct tm_error *err)
{
	enum { BATCH = 4096 };
	struct block_key *keys = NULL;
	struct block_val *vals = NULL;
	struct exact_stats st = {};
	struct stack_builder b = { .s = NULL };
	struct tm_snapshot *s = NULL;
	__u64 in_batch = 0, out_batch = 0;
	bool first = true;
	int fd = bpf_map__fd(t->skel->maps.live);

	/* every stack referenced by the live map has been queued before the block */
	ring_buffer__consume(t->rb);
	if (exact_tracer_stats(t, pid, &st)) {
		tm_error_set(err, "PID %d is not traced", (int)pid);
		return NULL;
	}
	keys = malloc(BATCH * sizeof(*keys));
	vals = malloc(BATCH * sizeof(*vals));
	if (stack_builder_init(&b, &t->stacks, pid) < 0 || !keys || !vals) {
		tm_error_set(err, "out of memory");
		goto fail;
	}
	for (;;) {
		__u32 count = BATCH;
		int r;

		r = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals,
					 &count, NULL);
		if (r < 0 && errno != ENOENT) {
			tm_error_set(err, "cannot read the live-block map: %s", strerror(errno));
			goto fail;
		}
		for (__u32 i = 0; i < count; i++) {
			tm_id tb;

			if (keys[i].tgid != (__u32)pid)
				continue;
			tb = stack_builder_traceback(&b, vals[i].stack_id);
			if (tb == TM_ID_NONE ||
			    tm_add_trace(b.s, keys[i].domain, vals[i].size, tb, keys[i].addr) < 0) {
				tm_error_set(err, "out of memory");
				goto fail;
			}
		}
		if (r < 0)
			break;                  /* ENOENT: that was the last batch */
		in_batch = out_batch;
		first = false;
	}
	s = stack_builder_finish(&b);
	s->traceback_limit = t->opts.nframe;
	s->capture.tier = TM_TIER_EXACT;
	s->capture.pid = pid;
	s->capture.taken_ns = tm_now_ns();
	s->capture.traced_current = st.traced_current;
	s->capture.traced_peak = st.traced_peak;
	s->capture.tracer_memory = exact_tracer_memory(t);
	set_exact_counters(s, &st, b.missing, t->stacks.unresolved_frames, t->lost_events_bad,
			   t->skel->bss->no_proc_hits, tm_bpf_recursion_misses(t->skel->obj));
	free(keys);
	free(vals);
	return s;
fail:
	free(keys);
	free(vals);
	stack_builder_abort(&b);
	return NULL;
}
