// SPDX-License-Identifier: MIT
/* What one process of the growth tier holds: see growth_state.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "tracer/growth_state.h"

#define PAGE GROWTH_PAGE

/* Linux x86-64 flag values (not every libc header has the newer ones). */
#define MAP_FIXED_ 0x10
#define MAP_POPULATE_ 0x8000
#define MAP_NONBLOCK_ 0x10000
#define MREMAP_FIXED_ 2
#define MREMAP_DONTUNMAP_ 4
#define MADV_POPULATE_WRITE_ 23

static uint64_t page_up(uint64_t v)
{
	return (v + PAGE - 1) & ~(PAGE - 1);
}

static uint64_t page_down(uint64_t v)
{
	return v & ~(PAGE - 1);
}

/* ---------------------------------------------------------------- page table */

static size_t page_hash(uint64_t page, size_t mask)
{
	uint64_t h = (page >> 12) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & mask;
}

static int pages_grow(struct growth_pages *pt)
{
	size_t n = pt->nslots ? pt->nslots * 2 : 1024;
	struct growth_page *s = calloc(n, sizeof(*s));

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

static struct growth_page *pages_find(const struct growth_pages *pt, uint64_t page)
{
	size_t mask = pt->nslots - 1;

	if (!pt->used)
		return NULL;
	for (size_t j = page_hash(page, mask); pt->slots[j].page; j = (j + 1) & mask)
		if (pt->slots[j].page == page)
			return &pt->slots[j];
	return NULL;
}

/* Inserts a page known to be absent. */
static int pages_insert(struct growth_pages *pt, const struct growth_page *p)
{
	size_t j, mask;

	if ((pt->used + 1) * 4 > pt->nslots * 3 && pages_grow(pt) < 0)
		return -1;
	mask = pt->nslots - 1;
	for (j = page_hash(p->page, mask); pt->slots[j].page; j = (j + 1) & mask)
		;
	pt->slots[j] = *p;
	pt->used++;
	return 0;
}

/* Removes slot i, shifting back later members of its probe run (no tombstones). */
static void pages_delete_at(struct growth_pages *pt, size_t i)
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

/* Calls fn on every sample in [start, end) and removes it; returns the
 * weight removed. Walks the range page by page when it is small next to the
 * table, else the table. */
static uint64_t pages_take(struct growth_pages *pt, uint64_t start, uint64_t end,
			   void (*fn)(void *ctx, const struct growth_page *p), void *ctx)
{
	uint64_t weight = 0;

	if (!pt->used || end <= start)
		return 0;
	start = page_down(start);
	if ((end - start) / PAGE <= pt->used * 4) {
		for (uint64_t a = start; a < end && pt->used; a += PAGE) {
			struct growth_page *s = pages_find(pt, a);

			if (s) {
				weight += s->weight;
				if (fn)
					fn(ctx, s);
				pages_delete_at(pt, (size_t)(s - pt->slots));
			}
		}
		return weight;
	}
	for (size_t i = 0; i < pt->nslots;) {
		struct growth_page *s = &pt->slots[i];

		if (s->page && s->page >= start && s->page < end) {
			weight += s->weight;
			if (fn)
				fn(ctx, s);
			pages_delete_at(pt, i);
			continue;               /* slot i now holds a shifted entry */
		}
		i++;
	}
	return weight;
}

static void release(struct growth_state *gs, uint64_t start, uint64_t end)
{
	uint64_t w = pages_take(&gs->pages, start, end, NULL, NULL);

	gs->pages_released += w;
	gs->pages_held -= w;
}

int growth_state_fault(struct growth_state *gs, uint64_t addr, uint64_t stack_id, uint32_t weight)
{
	struct growth_page *s, p = { page_down(addr), stack_id, weight ? weight : 1 };

	if (!p.page)
		return 0;
	gs->pages_received += p.weight;
	s = pages_find(&gs->pages, p.page);
	if (s) {
		/* the page itself is counted once; the faults of the new gap are
		 * other pages, so they stay. The newer traceback wins: it is what
		 * brought the page back. With weight 1 (every fault sampled) the
		 * page simply keeps weight 1. */
		uint64_t w = (uint64_t)s->weight + p.weight - 1;

		s->weight = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
		s->stack_id = stack_id;
		gs->pages_refaulted++;
		gs->pages_held += p.weight - 1;
	} else {
		if (pages_insert(&gs->pages, &p) < 0) {
			gs->oom++;
			gs->pages_received -= p.weight;
			return -1;
		}
		gs->pages_held += p.weight;
	}
	if (gs->pages_held > gs->pages_peak)
		gs->pages_peak = gs->pages_held;
	return 0;
}

/* Pages the kernel made resident without a fault we could see (MAP_POPULATE,
 * MADV_POPULATE_WRITE): every page of the range not already held, weight 1. */
static int populate(struct growth_state *gs, uint64_t start, uint64_t end, uint64_t stack_id)
{
	for (uint64_t a = page_down(start); a < end; a += PAGE) {
		struct growth_page p = { a, stack_id, 1 };

		if (pages_find(&gs->pages, a))
			continue;
		if (pages_insert(&gs->pages, &p) < 0) {
			gs->oom++;
			return -1;
		}
		gs->pages_populated++;
		gs->pages_held++;
	}
	if (gs->pages_held > gs->pages_peak)
		gs->pages_peak = gs->pages_held;
	return 0;
}

const struct growth_page *growth_state_page(const struct growth_state *gs, uint64_t addr)
{
	return pages_find(&gs->pages, page_down(addr));
}

/* ---------------------------------------------------------------- mappings */

static int maps_reserve(struct growth_state *gs, size_t more)
{
	size_t c = gs->maps_cap ? gs->maps_cap : 64;
	struct growth_mapping *n;

	if (gs->nmaps + more <= gs->maps_cap)
		return 0;
	while (c < gs->nmaps + more)
		c *= 2;
	n = realloc(gs->maps, c * sizeof(*n));
	if (!n)
		return -1;
	gs->maps = n;
	gs->maps_cap = c;
	return 0;
}

/* Removes [start, end) from the mappings, splitting one as munmap does.
 * Returns the bytes removed. */
static uint64_t maps_remove(struct growth_state *gs, uint64_t start, uint64_t end)
{
	uint64_t removed = 0;
	size_t i = 0;

	while (i < gs->nmaps && start < end) {
		struct growth_mapping *m = &gs->maps[i];

		if (m->end <= start) {
			i++;
			continue;
		}
		if (m->start >= end)
			break;                  /* sorted: nothing further overlaps */
		if (m->start < start && m->end > end) {
			/* a hole in the middle: one mapping becomes two */
			struct growth_mapping tail = { end, m->end, m->stack_id };

			if (maps_reserve(gs, 1) < 0) {
				/* keep the address space consistent: drop the whole
				 * mapping rather than pretend the hole is mapped */
				gs->oom++;
				removed += gs->maps[i].end - gs->maps[i].start;
				memmove(&gs->maps[i], &gs->maps[i + 1], (gs->nmaps - i - 1) * sizeof(*m));
				gs->nmaps--;
				return removed;
			}
			m = &gs->maps[i];
			removed += end - start;
			m->end = start;
			memmove(&gs->maps[i + 2], &gs->maps[i + 1], (gs->nmaps - i - 1) * sizeof(*m));
			gs->maps[i + 1] = tail;
			gs->nmaps++;
			return removed;
		}
		if (m->start < start) {
			removed += m->end - start;
			m->end = start;
			i++;
		} else if (m->end > end) {
			removed += end - m->start;
			m->start = end;
			i++;
		} else {
			removed += m->end - m->start;
			memmove(m, m + 1, (gs->nmaps - i - 1) * sizeof(*m));
			gs->nmaps--;
		}
	}
	return removed;
}

/* Inserts [start, end), which no mapping overlaps. */
static int maps_insert(struct growth_state *gs, uint64_t start, uint64_t end, uint64_t stack_id)
{
	size_t lo = 0, hi = gs->nmaps;

	if (end <= start)
		return 0;
	if (maps_reserve(gs, 1) < 0) {
		gs->oom++;
		return -1;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (gs->maps[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&gs->maps[lo + 1], &gs->maps[lo], (gs->nmaps - lo) * sizeof(gs->maps[0]));
	gs->maps[lo] = (struct growth_mapping){ start, end, stack_id };
	gs->nmaps++;
	return 0;
}

/* A new mapping [start, end) replaces whatever was there (MAP_FIXED). */
static int map_new(struct growth_state *gs, uint64_t start, uint64_t end, uint64_t stack_id)
{
	if (end <= start)
		return 0;
	release(gs, start, end);
	gs->bytes_unmapped += maps_remove(gs, start, end);
	gs->bytes_mapped += end - start;
	return maps_insert(gs, start, end, stack_id);
}

static void unmap(struct growth_state *gs, uint64_t start, uint64_t end)
{
	if (end <= start)
		return;
	release(gs, start, end);
	gs->bytes_unmapped += maps_remove(gs, start, end);
}

/* ---------------------------------------------------------------- mremap */

struct moved_pages {
	struct growth_page *v;
	size_t n, cap;
	int64_t delta;
	bool oom;
};

static void collect_page(void *ctx, const struct growth_page *p)
{
	struct moved_pages *m = ctx;

	if (m->n == m->cap) {
		size_t c = m->cap ? m->cap * 2 : 64;
		struct growth_page *v = realloc(m->v, c * sizeof(*v));

		if (!v) {
			m->oom = true;
			return;
		}
		m->v = v;
		m->cap = c;
	}
	m->v[m->n] = *p;
	m->v[m->n++].page = p->page + (uint64_t)m->delta;
}

/* mremap(old, old_len, new_len, flags, new) returned `to`. */
static int apply_mremap(struct growth_state *gs, const struct growth_event *ev)
{
	uint64_t old = page_down(ev->old_addr), to = ev->addr;
	uint64_t old_len = page_up(ev->old_len), new_len = page_up(ev->len);
	uint64_t keep = old_len < new_len ? old_len : new_len;
	struct moved_pages mp = { .delta = (int64_t)(to - old) };
	struct growth_mapping *pieces = NULL;
	size_t npieces = 0;
	int ret = 0;

	if (to == old) {
		/* in place: the tail is cut off, or the mapping extended */
		if (new_len < old_len)
			unmap(gs, old + new_len, old + old_len);
		else if (new_len > old_len)
			map_new(gs, old + old_len, old + new_len, ev->stack_id);
		return 0;
	}
	if (old_len == 0) {
		/* a second mapping of the same shared pages; the old one stays */
		return map_new(gs, to, to + new_len, ev->stack_id);
	}
	/* the target range is replaced (MREMAP_FIXED) or was free */
	unmap(gs, to, to + new_len);
	/* the pages and the mappings of [old, old + keep) move, tracebacks kept */
	gs->pages_held -= pages_take(&gs->pages, old, old + keep, collect_page, &mp);
	for (size_t i = 0; i < gs->nmaps; i++) {
		const struct growth_mapping *m = &gs->maps[i];

		if (m->end > old && m->start < old + keep)
			npieces++;
	}
	if (npieces) {
		size_t k = 0;

		pieces = malloc(npieces * sizeof(*pieces));
		if (!pieces) {
			gs->oom++;
			ret = -1;
			npieces = 0;
		}
		for (size_t i = 0; i < gs->nmaps && pieces; i++) {
			struct growth_mapping m = gs->maps[i];

			if (m.end <= old || m.start >= old + keep)
				continue;
			m.start = (m.start > old ? m.start : old) + (uint64_t)mp.delta;
			m.end = (m.end < old + keep ? m.end : old + keep) + (uint64_t)mp.delta;
			pieces[k++] = m;
		}
	}
	if (ev->flags & MREMAP_DONTUNMAP_) {
		/* the old range stays mapped, empty; the new one is a new mapping */
		gs->bytes_mapped += new_len;
		if (maps_insert(gs, to, to + new_len, ev->stack_id) < 0)
			ret = -1;
		npieces = 0;
	} else {
		/* what was in [old, old + keep) is still mapped, elsewhere */
		maps_remove(gs, old, old + keep);
		unmap(gs, old + keep, old + old_len);
		for (size_t i = 0; i < npieces; i++)
			if (maps_insert(gs, pieces[i].start, pieces[i].end, pieces[i].stack_id) < 0)
				ret = -1;
		if (new_len > old_len) {
			gs->bytes_mapped += new_len - old_len;
			if (maps_insert(gs, to + old_len, to + new_len, ev->stack_id) < 0)
				ret = -1;
		}
	}
	for (size_t i = 0; i < mp.n; i++) {
		if (pages_insert(&gs->pages, &mp.v[i]) < 0) {
			gs->oom++;
			gs->pages_released += mp.v[i].weight;   /* lost track: no longer held */
			ret = -1;
			continue;
		}
		gs->pages_held += mp.v[i].weight;
	}
	if (mp.oom) {
		gs->oom++;
		ret = -1;
	}
	free(mp.v);
	free(pieces);
	return ret;
}

/* ---------------------------------------------------------------- events */

void growth_state_init(struct growth_state *gs)
{
	memset(gs, 0, sizeof(*gs));
}

void growth_state_free(struct growth_state *gs)
{
	free(gs->pages.slots);
	free(gs->maps);
	memset(gs, 0, sizeof(*gs));
}

int growth_state_apply(struct growth_state *gs, const struct growth_event *ev)
{
	uint64_t end;

	switch (ev->type) {
	case GROWTH_EV_FAULT:
		return growth_state_fault(gs, ev->addr, ev->stack_id, ev->weight);
	case GROWTH_EV_MMAP:
		end = ev->addr + page_up(ev->len);
		if (map_new(gs, ev->addr, end, ev->stack_id) < 0)
			return -1;
		/* a populated private mapping is resident at once, with no fault;
		 * a shared one holds page-cache pages that we count the same way */
		if ((ev->flags & MAP_POPULATE_) && !(ev->flags & MAP_NONBLOCK_) && ev->arg)
			return populate(gs, ev->addr, end, ev->stack_id);
		return 0;
	case GROWTH_EV_MUNMAP:
		unmap(gs, ev->addr, ev->addr + page_up(ev->len));
		return 0;
	case GROWTH_EV_MADVISE:
		end = ev->addr + page_up(ev->len);
		if (ev->arg == MADV_POPULATE_WRITE_)
			return populate(gs, ev->addr, end, ev->stack_id);
		release(gs, ev->addr, end);
		return 0;
	case GROWTH_EV_MREMAP:
		return apply_mremap(gs, ev);
	case GROWTH_EV_BRK:
		/* brk(addr) returns the new break (the old one when it fails);
		 * brk(0) asks where it is */
		if (!gs->brk || !ev->len) {
			gs->brk = ev->addr;     /* first sight, or a query: in sync */
			return 0;
		}
		if (ev->addr > gs->brk) {
			if (map_new(gs, page_up(gs->brk), page_up(ev->addr), ev->stack_id) < 0) {
				gs->brk = ev->addr;
				return -1;
			}
		} else if (ev->addr < gs->brk) {
			unmap(gs, page_up(ev->addr), page_up(gs->brk));
		}
		gs->brk = ev->addr;
		return 0;
	}
	return 0;
}

/* ---------------------------------------------------------------- runs */

static int cmp_page(const void *a, const void *b)
{
	const struct growth_page *x = a, *y = b;

	return x->page < y->page ? -1 : x->page > y->page;
}

int growth_state_page_runs(const struct growth_state *gs, growth_run_fn fn, void *ctx)
{
	struct growth_page *sorted = malloc((gs->pages.used ? gs->pages.used : 1) * sizeof(*sorted));
	size_t n = 0;
	int ret = 0;

	if (!sorted)
		return -1;
	for (size_t i = 0; i < gs->pages.nslots; i++)
		if (gs->pages.slots[i].page)
			sorted[n++] = gs->pages.slots[i];
	qsort(sorted, n, sizeof(*sorted), cmp_page);
	for (size_t i = 0; i < n && !ret;) {
		size_t j = i + 1;
		uint64_t weight = sorted[i].weight;

		while (j < n && sorted[j].page == sorted[j - 1].page + PAGE &&
		       sorted[j].stack_id == sorted[i].stack_id)
			weight += sorted[j++].weight;
		ret = fn(ctx, sorted[i].page, weight * PAGE, sorted[i].stack_id);
		i = j;
	}
	free(sorted);
	return ret;
}
