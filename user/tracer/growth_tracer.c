// SPDX-License-Identifier: MIT
/*
 * User-space half of the growth tier (see growth_tracer.h, bpf/growth.bpf.c).
 *
 * For each traced process we keep what it holds that tracing saw arrive
 * (growth_state.h: sampled pages and the mappings it created), the BPF
 * counters it ended with, and its RSS, for the snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "growth.skel.h"
#include "tracer/bpf_util.h"
#include "tracer/growth_state.h"
#include "tracer/growth_tracer.h"
#include "tracer/stack_table.h"

#define MAX_LINKS 32

struct gproc {
	pid_t pid;
	enum growth_end ended;          /* 0 while BPF traces it */
	struct growth_state state;
	uint64_t rss_start;
	uint64_t rss_last;              /* last RSS read while it ran */
	uint64_t start_ns;
	struct growth_stats final;      /* BPF counters when it ended */
	bool have_final;
};

struct growth_tracer {
	struct growth_bpf *skel;
	struct ring_buffer *rb;
	struct frame_resolver resolver;
	struct stack_table stacks;
	struct bpf_link *links[MAX_LINKS];
	size_t nlinks;
	struct gproc **procs;
	size_t nprocs, procs_cap;
	struct growth_callbacks cb;
	uint64_t bad_events;
	struct growth_opts opts;
};

/* ---------------------------------------------------------------- processes */

static struct gproc *gproc_find(struct growth_tracer *t, pid_t pid)
{
	for (size_t i = 0; i < t->nprocs; i++)
		if (t->procs[i]->pid == pid)
			return t->procs[i];
	return NULL;
}

static void gproc_free(struct gproc *g)
{
	if (!g)
		return;
	growth_state_free(&g->state);
	free(g);
}

/* The program break of pid now: the end of its [heap] mapping, or where the
 * heap would start when it has none (start_brk, /proc/PID/stat field 47).
 * Page-rounded, which is all the break changes are compared at. 0 = unknown. */
static uint64_t current_brk(pid_t pid)
{
	char path[64], line[512];
	unsigned long long lo, hi, v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " [heap]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2)
			v = hi;
	fclose(f);
	if (v)
		return v;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		char *p = strrchr(line, ')');   /* comm may hold spaces */
		int field = 2;

		for (; p && *p; p++) {
			if (*p != ' ')
				continue;
			if (++field == 47) {
				v = strtoull(p + 1, NULL, 10);
				break;
			}
		}
	}
	fclose(f);
	return v;
}

/* BPF stopped tracing g (it exited or exec'd): keep its last counters. */
static void gproc_end(struct growth_tracer *t, struct gproc *g, enum growth_end why)
{
	__u32 key = (__u32)g->pid;

	if (!g->have_final)
		g->have_final = !bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key),
						       &g->final, sizeof(g->final), 0);
	if (!g->ended)
		g->ended = why;
	bpf_map__delete_elem(t->skel->maps.procs, &key, sizeof(key), 0);
	bpf_map__delete_elem(t->skel->maps.stats, &key, sizeof(key), 0);
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct growth_tracer *t = ctx;
	const struct stack_event_head *h = data;
	const struct growth_event *ev = data;
	const struct growth_host_event *hev = data;
	char comm[sizeof(hev->comm) + 1];
	struct gproc *g;

	int r = stack_table_event(&t->stacks, &t->resolver, data, len);

	if (r) {
		if (r < 0)
			t->bad_events++;
		return 0;
	}
	if (h->type == GROWTH_EV_EXEC || h->type == GROWTH_EV_FORK) {
		if (len < sizeof(*hev)) {
			t->bad_events++;
			return 0;
		}
		memcpy(comm, hev->comm, sizeof(hev->comm));
		comm[sizeof(hev->comm)] = '\0';
		g = gproc_find(t, (pid_t)hev->tgid);
		if (h->type == GROWTH_EV_FORK) {
			if (t->opts.host_wide && t->cb.on_fork)
				t->cb.on_fork(t->cb.ctx, (pid_t)hev->tgid, (pid_t)hev->parent, comm);
			return 0;
		}
		/* the traced program is gone first, then the new one is examined */
		if (g && !g->ended && (hev->arg & GROWTH_EXEC_TRACED)) {
			gproc_end(t, g, GROWTH_END_EXEC);
			if (t->cb.on_end)
				t->cb.on_end(t->cb.ctx, g->pid, GROWTH_END_EXEC);
		}
		if (t->opts.host_wide && t->cb.on_exec)
			t->cb.on_exec(t->cb.ctx, (pid_t)hev->tgid, comm);
		return 0;
	}
	if (len < sizeof(*ev)) {
		t->bad_events++;
		return 0;
	}
	g = gproc_find(t, (pid_t)ev->tgid);
	switch (ev->type) {
	case GROWTH_EV_EXIT:
		if (g && !g->ended) {
			gproc_end(t, g, GROWTH_END_EXIT);
			if (t->cb.on_end)
				t->cb.on_end(t->cb.ctx, g->pid, GROWTH_END_EXIT);
		}
		return 0;
	}
	/* events of an ended process still in flight from its other CPUs apply:
	 * they happened before it ended */
	if (g)
		growth_state_apply(&g->state, ev);
	return 0;
}

struct growth_tracer *growth_tracer_open(const struct growth_opts *opts,
					 const struct frame_resolver *resolver,
					 const struct growth_callbacks *cb, struct tm_error *err)
{
	struct growth_tracer *t = calloc(1, sizeof(*t));
	struct bpf_program *prog;
	int e;

	if (!t) {
		tm_error_set(err, "out of memory");
		return NULL;
	}
	t->opts = *opts;
	t->resolver = *resolver;
	if (cb)
		t->cb = *cb;
	tm_libbpf_setup(opts->verbose);
	if (stack_table_init(&t->stacks) < 0) {
		tm_error_set(err, "out of memory");
		free(t);
		return NULL;
	}
	t->skel = growth_bpf__open();
	if (!t->skel) {
		tm_error_set(err, "cannot open the growth-tier BPF object: %s", strerror(errno));
		goto fail;
	}
	t->skel->rodata->nframe_max = opts->nframe;
	t->skel->rodata->max_walk = opts->max_walk;
	t->skel->rodata->sample_pages = opts->sample_pages ? opts->sample_pages : 1;
	t->skel->rodata->report_execs = opts->host_wide;
	bpf_map__set_max_entries(t->skel->maps.code_scratch, libbpf_num_possible_cpus());
	if (opts->ringbuf_bytes)
		bpf_map__set_max_entries(t->skel->maps.events, opts->ringbuf_bytes);
	e = growth_bpf__load(t->skel);
	if (e) {
		tm_error_set(err, "cannot load the growth-tier BPF programs: %s (run as root on a kernel with BPF, BTF and tracepoints)",
			     strerror(-e));
		goto fail;
	}
	bpf_object__for_each_program(prog, t->skel->obj) {
		struct bpf_link *l;

		if (t->nlinks == MAX_LINKS) {
			tm_error_set(err, "too many BPF programs in the growth tier");
			goto fail;
		}
		l = bpf_program__attach(prog);
		if (!l) {
			tm_error_set(err, "cannot attach %s to its tracepoint (%s): %s",
				     bpf_program__name(prog), bpf_program__section_name(prog),
				     strerror(errno));
			goto fail;
		}
		t->links[t->nlinks++] = l;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), handle_event, t, NULL);
	if (!t->rb) {
		tm_error_set(err, "cannot open the BPF ring buffer: %s", strerror(errno));
		goto fail;
	}
	return t;
fail:
	growth_tracer_close(t);
	return NULL;
}

void growth_tracer_close(struct growth_tracer *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	ring_buffer__free(t->rb);
	growth_bpf__destroy(t->skel);
	for (size_t i = 0; i < t->nprocs; i++)
		gproc_free(t->procs[i]);
	free(t->procs);
	stack_table_destroy(&t->stacks);
	free(t);
}

int growth_tracer_add_process(struct growth_tracer *t, pid_t pid, const struct py_proc *cfg,
			      struct tm_error *err)
{
	/* the first fault is sampled, with weight 1; then random gaps */
	struct growth_stats zero = { .sample_gap = 1 };
	struct gproc *g;
	__u32 key = (__u32)pid;

	growth_tracer_remove_process(t, pid);
	if (t->nprocs == t->procs_cap) {
		size_t c = t->procs_cap ? t->procs_cap * 2 : 16;
		struct gproc **n = realloc(t->procs, c * sizeof(*n));

		if (!n) {
			tm_error_set(err, "out of memory");
			return -1;
		}
		t->procs = n;
		t->procs_cap = c;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		tm_error_set(err, "out of memory");
		return -1;
	}
	g->pid = pid;
	growth_state_init(&g->state);
	g->state.brk = current_brk(pid);
	g->start_ns = tm_now_ns();
	/* stats first: a process in "procs" without stats is not traced */
	if (bpf_map__update_elem(t->skel->maps.stats, &key, sizeof(key), &zero, sizeof(zero), BPF_ANY)) {
		tm_error_set(err, "cannot register PID %d with the BPF programs: %s", (int)pid,
			     strerror(errno));
		free(g);
		return -1;
	}
	/* RSS read after the stats are in place and before faults are counted:
	 * faults in between would be in both */
	g->rss_start = g->rss_last = tm_proc_rss(pid);
	if (bpf_map__update_elem(t->skel->maps.procs, &key, sizeof(key), cfg, sizeof(*cfg), BPF_ANY)) {
		tm_error_set(err, "cannot register PID %d with the BPF programs: %s", (int)pid,
			     strerror(errno));
		bpf_map__delete_elem(t->skel->maps.stats, &key, sizeof(key), 0);
		free(g);
		return -1;
	}
	t->procs[t->nprocs++] = g;
	return 0;
}

void growth_tracer_forget_process(struct growth_tracer *t, pid_t pid)
{
	struct gproc *g = gproc_find(t, pid);
	__u32 key = (__u32)pid;

	if (g) {
		gproc_end(t, g, GROWTH_END_EXIT);
		return;
	}
	bpf_map__delete_elem(t->skel->maps.procs, &key, sizeof(key), 0);
	bpf_map__delete_elem(t->skel->maps.stats, &key, sizeof(key), 0);
}

void growth_tracer_remove_process(struct growth_tracer *t, pid_t pid)
{
	__u32 key = (__u32)pid;

	for (size_t i = 0; i < t->nprocs; i++) {
		if (t->procs[i]->pid != pid)
			continue;
		gproc_free(t->procs[i]);
		t->procs[i] = t->procs[--t->nprocs];
		break;
	}
	bpf_map__delete_elem(t->skel->maps.procs, &key, sizeof(key), 0);
	bpf_map__delete_elem(t->skel->maps.stats, &key, sizeof(key), 0);
}

int growth_tracer_poll(struct growth_tracer *t, int timeout_ms)
{
	return tm_ring_poll(t->rb, timeout_ms);
}

uint64_t growth_tracer_rss_start(struct growth_tracer *t, pid_t pid)
{
	struct gproc *g = gproc_find(t, pid);

	return g ? g->rss_start : 0;
}

uint64_t growth_tracer_lost_host_events(struct growth_tracer *t)
{
	return t->skel->bss->lost_host_events;
}

uint64_t growth_tracer_memory(struct growth_tracer *t)
{
	return tm_tracer_memory(t->skel->obj);
}

struct run_ctx {
	struct stack_builder b;
};

static int add_trace(struct run_ctx *rc, uint32_t domain, uint64_t size, uint64_t stack_id,
		     uint64_t addr)
{
	tm_id tb = stack_builder_traceback(&rc->b, stack_id);

	return tb == TM_ID_NONE ? -1 : tm_add_trace(rc->b.s, domain, size, tb, addr);
}

static int add_run(void *ctx, uint64_t addr, uint64_t size, uint64_t stack_id)
{
	return add_trace(ctx, TM_GROWTH_DOMAIN_PAGES, size, stack_id, addr);
}

struct tm_snapshot *growth_tracer_snapshot(struct growth_tracer *t, pid_t pid,
					   struct tm_error *err)
{
	struct gproc *g = gproc_find(t, pid);
	struct growth_stats st = {};
	struct run_ctx rc;
	struct tm_snapshot *s;
	const struct growth_state *gs;
	__u32 key = (__u32)pid;

	if (!g) {
		tm_error_set(err, "PID %d is not traced", (int)pid);
		return NULL;
	}
	gs = &g->state;
	/* counters first, then the events: every fault counted has had its
	 * sample sent (BPF counts before it sends), so the samples that the
	 * counters account for are all applied */
	if (g->ended)
		st = g->final;
	else
		bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key), &st, sizeof(st), 0);
	ring_buffer__consume(t->rb);
	if (!g->ended) {
		uint64_t rss = tm_proc_rss(pid);

		if (rss)
			g->rss_last = rss;
	}
	if (stack_builder_init(&rc.b, &t->stacks, pid) < 0) {
		tm_error_set(err, "out of memory");
		return NULL;
	}
	if (growth_state_page_runs(gs, add_run, &rc))
		goto oom;
	for (size_t i = 0; i < gs->nmaps; i++)
		if (add_trace(&rc, TM_GROWTH_DOMAIN_MAPPINGS, gs->maps[i].end - gs->maps[i].start,
			      gs->maps[i].stack_id, gs->maps[i].start) < 0)
			goto oom;
	s = rc.b.s;
	s->traceback_limit = t->opts.nframe;
	s->capture.tier = TM_TIER_GROWTH;
	s->capture.coverage = t->opts.sample_pages > 1 ? TM_COVERAGE_SAMPLED : TM_COVERAGE_COMPLETE;
	s->capture.sample_period = (uint64_t)(t->opts.sample_pages ? t->opts.sample_pages : 1) * GROWTH_PAGE;
	s->capture.pid = pid;
	s->capture.start_ns = g->start_ns;
	s->capture.taken_ns = tm_now_ns();
	/* tracemalloc's traced memory: what the resident-page traces add up to */
	s->capture.traced_current = gs->pages_held * GROWTH_PAGE;
	s->capture.traced_peak = gs->pages_peak * GROWTH_PAGE;
	s->capture.tracer_memory = growth_tracer_memory(t);
	if (tm_set_counter(s, "pages.faulted", st.faults) ||
	    tm_set_counter(s, "pages.kernel_faulted", st.kernel_faults) ||
	    tm_set_counter(s, "pages.sampled", st.samples) ||
	    tm_set_counter(s, "pages.received", gs->pages_received) ||
	    tm_set_counter(s, "pages.refaulted", gs->pages_refaulted) ||
	    tm_set_counter(s, "pages.populated", gs->pages_populated) ||
	    tm_set_counter(s, "pages.released", gs->pages_released) ||
	    tm_set_counter(s, "bytes.mapped", gs->bytes_mapped) ||
	    tm_set_counter(s, "bytes.unmapped", gs->bytes_unmapped) ||
	    tm_set_counter(s, "calls.mmap", st.mmaps) ||
	    tm_set_counter(s, "calls.munmap", st.munmaps) ||
	    tm_set_counter(s, "calls.mremap", st.mremaps) ||
	    tm_set_counter(s, "calls.madvise", st.madvises) ||
	    tm_set_counter(s, "calls.brk", st.brks) ||
	    tm_set_counter(s, "rss.start", g->rss_start) ||
	    tm_set_counter(s, "rss.now", g->rss_last) ||
	    tm_set_counter(s, "process.exited", g->ended == GROWTH_END_EXIT) ||
	    tm_set_counter(s, "process.exec", g->ended == GROWTH_END_EXEC) ||
	    tm_set_counter(s, "lost.events", st.lost_events) ||
	    tm_set_counter(s, "lost.pages", st.lost_pages) ||
	    tm_set_counter(s, "lost.syscalls", st.lost_syscalls) ||
	    tm_set_counter(s, "lost.host_events", growth_tracer_lost_host_events(t)) ||
	    tm_set_counter(s, "lost.bad_events", t->bad_events) ||
	    tm_set_counter(s, "lost.out_of_memory", gs->oom) ||
	    tm_set_counter(s, "lost.bpf_recursion", tm_bpf_recursion_misses(t->skel->obj)) ||
	    tm_set_counter(s, "lost.stack_events", st.walk.lost_stack_events) ||
	    tm_set_counter(s, "lost.stack_unknown", rc.b.missing) ||
	    tm_set_counter(s, "frames.unreadable_stacks", st.walk.unreadable_stacks) ||
	    tm_set_counter(s, "frames.unresolved", t->stacks.unresolved_frames) ||
	    tm_set_counter(s, "frames.truncated_walks", st.walk.truncated_stacks) ||
	    tm_set_counter(s, "calls.no_thread_state", st.walk.no_tstate) ||
	    tm_set_counter(s, "calls.before_runtime_init", st.walk.before_init))
		goto oom;
	return stack_builder_finish(&rc.b);
oom:
	stack_builder_abort(&rc.b);
	tm_error_set(err, "out of memory");
	return NULL;
}
