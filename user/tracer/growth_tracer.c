// SPDX-License-Identifier: MIT
/*
 * User-space half of the growth tier (see growth_tracer.h, bpf/growth.bpf.c).
 *
 * For each traced process we keep what it holds that tracing saw arrive:
 * sampled pages (page address -> stack, weight), in an open-addressing table
 * with backward-shift deletion so that releases leave no tombstones, and the
 * mappings it created (sorted, non-overlapping intervals), split and trimmed by
 * munmap, mremap and brk exactly as the kernel does to the address space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "growth.skel.h"
#include "tracer/bpf_util.h"
#include "tracer/growth_tracer.h"
#include "tracer/stack_table.h"

#define PAGE 4096ull

struct page_slot {
	uint64_t page;                  /* 0 = empty (page 0 is never mapped) */
	uint64_t stack_id;
	uint32_t weight;
};

struct page_table {
	struct page_slot *slots;
	size_t nslots, used;            /* power of two */
};

struct mapping {
	uint64_t start, end;
	uint64_t stack_id;
};

struct gproc {
	pid_t pid;
	bool exited;
	struct page_table pages;
	struct mapping *maps;
	size_t nmaps, maps_cap;
	uint64_t brk;                   /* last program break seen; 0 = unknown */
	uint64_t rss_start;
	uint64_t start_ns;
	uint64_t pages_released;        /* sampled weight given back */
	uint64_t bytes_mapped, bytes_unmapped;
	struct growth_stats final;      /* BPF counters saved at exit */
	bool have_final;
};

struct growth_tracer {
	struct growth_bpf *skel;
	struct ring_buffer *rb;
	struct frame_resolver resolver;
	struct stack_table stacks;
	struct bpf_link **links;
	size_t nlinks;
	struct gproc **procs;
	size_t nprocs, procs_cap;
	growth_exec_cb on_exec;
	growth_exit_cb on_exit;
	void *cb_ctx;
	uint64_t bad_events;
	struct growth_opts opts;
};

/* ---------------------------------------------------------------- page table */

static size_t page_hash(uint64_t page, size_t mask)
{
	uint64_t h = (page >> 12) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & mask;
}

static int pages_grow(struct page_table *pt)
{
	size_t n = pt->nslots ? pt->nslots * 2 : 1024;
	struct page_slot *s = calloc(n, sizeof(*s));

	if (!s)
		return -1;
	for (size_t i = 0; i < pt->nslots; i++) {
		size_t j;

		if (!pt->slots[i].page)
			continue;
		for (j = page_hash(pt->slots[i].page, n - 1); s[j].page; j = (j + 1) & (n - 1))
			;
		s[j] = pt->slots[i];
	}
	free(pt->slots);
	pt->slots = s;
	pt->nslots = n;
	return 0;
}

static struct page_slot *pages_find(const struct page_table *pt, uint64_t page)
{
	size_t mask = pt->nslots - 1;

	if (!pt->nslots)
		return NULL;
	for (size_t j = page_hash(page, mask); pt->slots[j].page; j = (j + 1) & mask)
		if (pt->slots[j].page == page)
			return &pt->slots[j];
	return NULL;
}

/* A page faulted again after its release is a new sample: replace. */
static int pages_put(struct page_table *pt, uint64_t page, uint64_t stack_id, uint32_t weight)
{
	struct page_slot *s = pages_find(pt, page);
	size_t j, mask;

	if (s) {
		s->stack_id = stack_id;
		s->weight = weight;
		return 0;
	}
	if ((pt->used + 1) * 4 > pt->nslots * 3 && pages_grow(pt) < 0)
		return -1;
	mask = pt->nslots - 1;
	for (j = page_hash(page, mask); pt->slots[j].page; j = (j + 1) & mask)
		;
	pt->slots[j] = (struct page_slot){ page, stack_id, weight };
	pt->used++;
	return 0;
}

/* Removes slot i, shifting back later members of its probe run (no tombstones). */
static void pages_delete_at(struct page_table *pt, size_t i)
{
	size_t mask = pt->nslots - 1, j = i;

	pt->slots[i].page = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!pt->slots[j].page)
			break;
		home = page_hash(pt->slots[j].page, mask);
		/* can slot j move to i? only if i lies cyclically in [home, j) */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			pt->slots[i] = pt->slots[j];
			pt->slots[j].page = 0;
			i = j;
		}
	}
	pt->used--;
}

/* Drops the sampled pages in [start, end); returns the weight given back. */
static uint64_t pages_release(struct page_table *pt, uint64_t start, uint64_t end)
{
	uint64_t released = 0;

	if (!pt->used || end <= start)
		return 0;
	start &= ~(PAGE - 1);
	if ((end - start) / PAGE <= pt->used * 4) {
		for (uint64_t a = start; a < end; a += PAGE) {
			struct page_slot *s = pages_find(pt, a);

			if (s) {
				released += s->weight;
				pages_delete_at(pt, (size_t)(s - pt->slots));
			}
		}
		return released;
	}
	/* a range far bigger than what we hold: walk the table instead */
	for (size_t i = 0; i < pt->nslots;) {
		struct page_slot *s = &pt->slots[i];

		if (s->page && s->page >= start && s->page < end) {
			released += s->weight;
			pages_delete_at(pt, i);
			continue;               /* slot i now holds a shifted entry */
		}
		i++;
	}
	return released;
}

/* mremap moves what was resident in [old, old+len) to [new, new+len). */
static int pages_move(struct page_table *pt, uint64_t old, uint64_t new, uint64_t len)
{
	struct page_slot *moved = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (uint64_t off = 0; off < len && pt->used; off += PAGE) {
		struct page_slot *s = pages_find(pt, old + off);

		if (!s)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct page_slot *m = realloc(moved, c * sizeof(*m));

			if (!m) {
				ret = -1;
				break;
			}
			moved = m;
			cap = c;
		}
		moved[n] = *s;
		moved[n++].page = new + off;
		pages_delete_at(pt, (size_t)(s - pt->slots));
	}
	for (size_t i = 0; i < n && !ret; i++)
		ret = pages_put(pt, moved[i].page, moved[i].stack_id, moved[i].weight);
	free(moved);
	return ret;
}

/* ---------------------------------------------------------------- mappings */

/* Removes [start, end) from the mapping list, splitting as munmap does. */
static uint64_t maps_remove(struct gproc *g, uint64_t start, uint64_t end)
{
	uint64_t removed = 0;
	size_t i = 0;

	while (i < g->nmaps) {
		struct mapping *m = &g->maps[i];

		if (m->end <= start || m->start >= end) {
			i++;
			continue;
		}
		removed += (m->end < end ? m->end : end) - (m->start > start ? m->start : start);
		if (m->start < start && m->end > end) {
			/* a hole in the middle: split */
			struct mapping tail = { end, m->end, m->stack_id };

			m->end = start;
			if (g->nmaps == g->maps_cap) {
				size_t c = g->maps_cap * 2;
				struct mapping *n = realloc(g->maps, c * sizeof(*n));

				if (!n)
					return removed;
				g->maps = n;
				g->maps_cap = c;
				m = &g->maps[i];
			}
			memmove(&g->maps[i + 2], &g->maps[i + 1], (g->nmaps - i - 1) * sizeof(*m));
			g->maps[i + 1] = tail;
			g->nmaps++;
			return removed;
		}
		if (m->start < start) {
			m->end = start;
			i++;
		} else if (m->end > end) {
			m->start = end;
			i++;
		} else {
			memmove(m, m + 1, (g->nmaps - i - 1) * sizeof(*m));
			g->nmaps--;
		}
	}
	return removed;
}

/* Adds [start, end) created by stack (after removing what it replaces). */
static int maps_add(struct gproc *g, uint64_t start, uint64_t end, uint64_t stack_id)
{
	size_t i;

	if (end <= start)
		return 0;
	maps_remove(g, start, end);
	if (g->nmaps == g->maps_cap) {
		size_t c = g->maps_cap ? g->maps_cap * 2 : 64;
		struct mapping *n = realloc(g->maps, c * sizeof(*n));

		if (!n)
			return -1;
		g->maps = n;
		g->maps_cap = c;
	}
	for (i = 0; i < g->nmaps && g->maps[i].start < start; i++)
		;
	memmove(&g->maps[i + 1], &g->maps[i], (g->nmaps - i) * sizeof(g->maps[0]));
	g->maps[i] = (struct mapping){ start, end, stack_id };
	g->nmaps++;
	return 0;
}

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
	free(g->pages.slots);
	free(g->maps);
	free(g);
}

static uint64_t page_up(uint64_t v)
{
	return (v + PAGE - 1) & ~(PAGE - 1);
}

static void apply_event(struct growth_tracer *t, const struct growth_event *ev)
{
	struct gproc *g = gproc_find(t, (pid_t)ev->tgid);
	uint64_t end;

	if (!g)
		return;
	switch (ev->type) {
	case GROWTH_EV_FAULT:
		pages_put(&g->pages, ev->addr, ev->stack_id, ev->weight);
		break;
	case GROWTH_EV_MMAP:
		end = ev->addr + page_up(ev->len);
		/* MAP_FIXED over existing pages replaces them */
		g->pages_released += pages_release(&g->pages, ev->addr, end);
		maps_add(g, ev->addr, end, ev->stack_id);
		g->bytes_mapped += page_up(ev->len);
		break;
	case GROWTH_EV_MUNMAP:
		end = ev->addr + page_up(ev->len);
		g->pages_released += pages_release(&g->pages, ev->addr, end);
		g->bytes_unmapped += maps_remove(g, ev->addr, end);
		break;
	case GROWTH_EV_MADVISE:
		g->pages_released += pages_release(&g->pages, ev->addr, ev->addr + page_up(ev->len));
		break;
	case GROWTH_EV_MREMAP: {
		uint64_t old_len = page_up(ev->old_len), new_len = page_up(ev->len);
		uint64_t keep = old_len < new_len ? old_len : new_len;

		if (ev->addr != ev->old_addr) {
			pages_move(&g->pages, ev->old_addr, ev->addr, keep);
			g->pages_released += pages_release(&g->pages, ev->old_addr, ev->old_addr + old_len);
			g->bytes_unmapped += maps_remove(g, ev->old_addr, ev->old_addr + old_len);
			maps_add(g, ev->addr, ev->addr + new_len, ev->stack_id);
			g->bytes_mapped += new_len;
		} else if (new_len < old_len) {
			g->pages_released += pages_release(&g->pages, ev->addr + new_len, ev->addr + old_len);
			g->bytes_unmapped += maps_remove(g, ev->addr + new_len, ev->addr + old_len);
		} else if (new_len > old_len) {
			maps_add(g, ev->addr + old_len, ev->addr + new_len, ev->stack_id);
			g->bytes_mapped += new_len - old_len;
		}
		break;
	}
	case GROWTH_EV_BRK:
		if (!ev->len || !g->brk) {
			g->brk = ev->addr;      /* a query, or our first sight of the break */
			break;
		}
		if (ev->addr > g->brk) {
			maps_add(g, page_up(g->brk), page_up(ev->addr), ev->stack_id);
			g->bytes_mapped += page_up(ev->addr) - page_up(g->brk);
		} else if (ev->addr < g->brk) {
			g->pages_released += pages_release(&g->pages, page_up(ev->addr), page_up(g->brk));
			g->bytes_unmapped += maps_remove(g, page_up(ev->addr), page_up(g->brk));
		}
		g->brk = ev->addr;
		break;
	}
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct growth_tracer *t = ctx;
	const struct stack_event_head *h = data;
	const struct growth_event *ev = data;

	if (len < 8) {
		t->bad_events++;
		return 0;
	}
	if (h->type == PY_EV_CODE) {
		if (t->resolver.add_code)
			t->resolver.add_code(t->resolver.ctx, (pid_t)h->tgid, data, len);
		return 0;
	}
	if (h->type == PY_EV_STACK) {
		if (len < sizeof(*h) || h->nframe == 0 || h->nframe > PY_MAX_NFRAME ||
		    len < sizeof(*h) + h->nframe * sizeof(struct py_frame)) {
			t->bad_events++;
			return 0;
		}
		stack_table_add(&t->stacks, (pid_t)h->tgid, h->stack_id, h->nframe, h->total_nframe,
				(const struct py_frame *)(h + 1), &t->resolver);
		return 0;
	}
	if (len < sizeof(*ev)) {
		t->bad_events++;
		return 0;
	}
	if (ev->type == GROWTH_EV_EXEC) {
		if (t->on_exec)
			t->on_exec(t->cb_ctx, (pid_t)ev->tgid);
		return 0;
	}
	if (ev->type == GROWTH_EV_EXIT) {
		struct gproc *g = gproc_find(t, (pid_t)ev->tgid);

		if (g && !g->exited) {
			__u32 key = ev->tgid;

			g->have_final = !bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key),
							       &g->final, sizeof(g->final), 0);
			growth_tracer_forget_process(t, g->pid);
			if (t->on_exit)
				t->on_exit(t->cb_ctx, g->pid);
		}
		return 0;
	}
	apply_event(t, ev);
	return 0;
}

struct growth_tracer *growth_tracer_open(const struct growth_opts *opts,
					 const struct frame_resolver *resolver,
					 growth_exec_cb on_exec, growth_exit_cb on_exit, void *cb_ctx,
					 struct tm_error *err)
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
	t->on_exec = on_exec;
	t->on_exit = on_exit;
	t->cb_ctx = cb_ctx;
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
	e = growth_bpf__load(t->skel);
	if (e) {
		tm_error_set(err, "cannot load the growth-tier BPF programs: %s (run as root on a kernel with BPF, BTF and tracepoints)",
			     strerror(-e));
		goto fail;
	}
	t->links = calloc(32, sizeof(*t->links));
	if (!t->links) {
		tm_error_set(err, "out of memory");
		goto fail;
	}
	bpf_object__for_each_program(prog, t->skel->obj) {
		struct bpf_link *l = bpf_program__attach(prog);

		if (!l) {
			tm_error_set(err, "cannot attach %s to its tracepoint (%s): %s",
				     bpf_program__name(prog), bpf_program__section_name(prog),
				     strerror(errno));
			goto fail;
		}
		if (t->nlinks < 32)
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
	free(t->links);
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
	struct growth_stats zero = {};
	struct gproc *g;
	__u32 key = (__u32)pid;

	growth_tracer_remove_process(t, pid);   /* a reused PID starts afresh */
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
	g->rss_start = tm_proc_rss(pid);
	g->start_ns = tm_now_ns();
	zero.sample_gap = 1;
	zero.sample_countdown = 1;
	if (bpf_map__update_elem(t->skel->maps.stats, &key, sizeof(key), &zero, sizeof(zero), BPF_ANY) ||
	    bpf_map__update_elem(t->skel->maps.procs, &key, sizeof(key), cfg, sizeof(*cfg), BPF_ANY)) {
		tm_error_set(err, "cannot register PID %d with the BPF programs: %s", (int)pid,
			     strerror(errno));
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

	if (g && !g->have_final)
		g->have_final = !bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key),
						       &g->final, sizeof(g->final), 0);
	if (g)
		g->exited = true;
	bpf_map__delete_elem(t->skel->maps.procs, &key, sizeof(key), 0);
	bpf_map__delete_elem(t->skel->maps.stats, &key, sizeof(key), 0);
}

void growth_tracer_remove_process(struct growth_tracer *t, pid_t pid)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		if (t->procs[i]->pid != pid)
			continue;
		growth_tracer_forget_process(t, pid);
		gproc_free(t->procs[i]);
		t->procs[i] = t->procs[--t->nprocs];
		return;
	}
}

int growth_tracer_poll(struct growth_tracer *t, int timeout_ms)
{
	int n = ring_buffer__poll(t->rb, timeout_ms);

	if (n == -EINTR)
		return 0;
	return n < 0 ? -1 : n;
}

uint64_t growth_tracer_rss_start(struct growth_tracer *t, pid_t pid)
{
	struct gproc *g = gproc_find(t, pid);

	return g ? g->rss_start : 0;
}

uint64_t growth_tracer_memory(struct growth_tracer *t)
{
	return tm_tracer_memory(t->skel->obj);
}

static int cmp_page(const void *a, const void *b)
{
	const struct page_slot *x = a, *y = b;

	return x->page < y->page ? -1 : x->page > y->page;
}

static tm_id traceback_of(struct growth_tracer *t, pid_t pid, uint64_t stack_id, uint64_t *missing)
{
	tm_id tb = stack_table_lookup(&t->stacks, pid, stack_id);

	if (tb == TM_ID_NONE) {
		(*missing)++;
		tb = stack_table_unknown(&t->stacks);
	}
	return tb;
}

struct tm_snapshot *growth_tracer_snapshot(struct growth_tracer *t, pid_t pid,
					   struct tm_error *err)
{
	struct gproc *g = gproc_find(t, pid);
	struct page_slot *sorted = NULL;
	struct growth_stats st = {};
	struct tm_snapshot *s = NULL;
	uint64_t missing = 0, rss_now;
	size_t n = 0;
	__u32 key = (__u32)pid;

	if (!g) {
		tm_error_set(err, "PID %d is not traced", (int)pid);
		return NULL;
	}
	ring_buffer__consume(t->rb);
	if (g->exited)
		st = g->final;
	else
		bpf_map__lookup_elem(t->skel->maps.stats, &key, sizeof(key), &st, sizeof(st), 0);
	s = stack_table_clone(&t->stacks);
	sorted = malloc((g->pages.used ? g->pages.used : 1) * sizeof(*sorted));
	if (!s || !sorted)
		goto oom;
	for (size_t i = 0; i < g->pages.nslots; i++)
		if (g->pages.slots[i].page)
			sorted[n++] = g->pages.slots[i];
	qsort(sorted, n, sizeof(*sorted), cmp_page);
	/* one trace per run of adjacent sampled pages with the same stack */
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		uint64_t weight = sorted[i].weight;

		while (j < n && sorted[j].page == sorted[j - 1].page + PAGE &&
		       sorted[j].stack_id == sorted[i].stack_id)
			weight += sorted[j++].weight;
		if (tm_add_trace(s, TM_GROWTH_DOMAIN_PAGES, weight * PAGE,
				 traceback_of(t, pid, sorted[i].stack_id, &missing), sorted[i].page) < 0)
			goto oom;
		i = j;
	}
	for (size_t i = 0; i < g->nmaps; i++)
		if (tm_add_trace(s, TM_GROWTH_DOMAIN_MAPPINGS, g->maps[i].end - g->maps[i].start,
				 traceback_of(t, pid, g->maps[i].stack_id, &missing), g->maps[i].start) < 0)
			goto oom;
	free(sorted);
	rss_now = g->exited ? 0 : tm_proc_rss(pid);
	s->traceback_limit = t->opts.nframe;
	s->capture.tier = TM_TIER_GROWTH;
	s->capture.coverage = t->opts.sample_pages > 1 ? TM_COVERAGE_SAMPLED : TM_COVERAGE_COMPLETE;
	s->capture.sample_period = (uint64_t)(t->opts.sample_pages ? t->opts.sample_pages : 1) * PAGE;
	s->capture.pid = pid;
	s->capture.start_ns = g->start_ns;
	s->capture.taken_ns = tm_now_ns();
	s->capture.tracer_memory = growth_tracer_memory(t);
	tm_set_counter(s, "pages.faulted", st.faults);
	tm_set_counter(s, "pages.sampled", st.samples);
	tm_set_counter(s, "pages.released", g->pages_released);
	tm_set_counter(s, "bytes.mapped", g->bytes_mapped);
	tm_set_counter(s, "bytes.unmapped", g->bytes_unmapped);
	tm_set_counter(s, "calls.mmap", st.mmaps);
	tm_set_counter(s, "calls.munmap", st.munmaps);
	tm_set_counter(s, "calls.mremap", st.mremaps);
	tm_set_counter(s, "calls.madvise", st.madvises);
	tm_set_counter(s, "calls.brk", st.brks);
	tm_set_counter(s, "rss.start", g->rss_start);
	tm_set_counter(s, "rss.now", rss_now);
	tm_set_counter(s, "process.exited", g->exited);
	tm_set_counter(s, "lost.events", st.lost_events);
	tm_set_counter(s, "lost.bad_events", t->bad_events);
	tm_set_counter(s, "lost.bpf_recursion", tm_bpf_recursion_misses(t->skel->obj));
	tm_set_counter(s, "lost.stack_events", st.walk.lost_stack_events);
	tm_set_counter(s, "lost.stack_unknown", missing);
	tm_set_counter(s, "frames.unreadable_stacks", st.walk.unreadable_stacks);
	tm_set_counter(s, "frames.unresolved", t->stacks.unresolved_frames);
	tm_set_counter(s, "frames.truncated_walks", st.walk.truncated_stacks);
	tm_set_counter(s, "calls.no_thread_state", st.walk.no_tstate);
	tm_set_counter(s, "calls.before_runtime_init", st.walk.before_init);
	return s;
oom:
	free(sorted);
	tm_snapshot_free(s);
	tm_error_set(err, "out of memory");
	return NULL;
}
