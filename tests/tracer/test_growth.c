// SPDX-License-Identifier: MIT
/*
 * The growth tier (tmbpf attach/run --growth): tracepoints only.
 *
 * state_*   what one process holds (user/tracer/growth_state.c), against a
 *           per-page reference model and against the kernel itself: random
 *           mmap/munmap/mremap/madvise/touches in a region of this process,
 *           compared after every step with /proc/self/maps and mincore().
 * live_*    the tracer on a live workload (tests/py/growth_workload.py) on
 *           every interpreter, every fault sampled: the pages it says grew
 *           and are held are checked page by page against /proc/PID/pagemap,
 *           the share of the RSS growth they explain, the counters' sums.
 * diff_*    the CLI: attach --growth --interval, then tmbpf diff of two
 *           snapshots names the growing lines first (default sampling).
 * steady_*  a workload that allocates and frees shows no growth.
 * all_*, exec_*, fork_*, lost_*: host-wide mode with short-lived processes,
 *           a traced process that execs, forked workers, ring-buffer losses.
 *
 * Figures (share of RSS growth explained, time to see the growing lines) are
 * printed on stderr as "GROWTH ..." lines.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_python.h"
#include "snapshot/filter.h"
#include "snapshot/snapfile.h"
#include "snapshot/stats.h"
#include "tracer/bpf_util.h"
#include "tracer/growth_state.h"
#include "tracer/growth_tracer.h"
#include "tracer/pyinterp.h"
#include "tracer/symbolizer.h"

#define PAGE 4096ull

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: the same sequence on every run and compiler */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static struct growth_event ev_fault(uint64_t addr, uint64_t stack, uint32_t weight)
{
	return (struct growth_event){ .type = GROWTH_EV_FAULT, .addr = addr, .stack_id = stack,
				      .weight = weight };
}

static struct growth_event ev_range(uint32_t type, uint64_t addr, uint64_t len, uint64_t stack)
{
	return (struct growth_event){ .type = type, .addr = addr, .len = len, .stack_id = stack,
				      .arg = type == GROWTH_EV_MMAP ? PROT_READ | PROT_WRITE :
					     type == GROWTH_EV_MADVISE ? MADV_DONTNEED : 0 };
}

static void apply_ok(struct growth_state *gs, struct growth_event ev)
{
	cr_assert_eq(growth_state_apply(gs, &ev), 0);
}

/* The counters' own sums, which every state must satisfy. */
static void check_sums(const struct growth_state *gs)
{
	uint64_t held = 0, mapped = 0;

	for (size_t i = 0; i < gs->pages.nslots; i++)
		if (gs->pages.slots[i].page)
			held += gs->pages.slots[i].weight;
	for (size_t i = 0; i < gs->nmaps; i++) {
		cr_assert_lt(gs->maps[i].start, gs->maps[i].end);
		if (i)
			cr_assert_leq(gs->maps[i - 1].end, gs->maps[i].start, "mappings overlap or are unsorted");
		mapped += gs->maps[i].end - gs->maps[i].start;
	}
	cr_assert_eq(held, gs->pages_held);
	cr_assert_eq(gs->pages_held, gs->pages_received + gs->pages_populated - gs->pages_released -
		     gs->pages_refaulted);
	cr_assert_eq(mapped, gs->bytes_mapped - gs->bytes_unmapped);
	cr_assert_geq(gs->pages_peak, gs->pages_held);
	cr_assert_eq(gs->oom, 0);
}

/* ---------------------------------------------------------------- state: pages */

#define NPAGES 2048
#define BASE 0x10000000ull

struct ref_page {
	bool held;
	uint64_t stack;
	uint64_t weight;
};

static void check_pages(const struct growth_state *gs, const struct ref_page *ref, size_t n)
{
	size_t held = 0;

	for (size_t i = 0; i < n; i++) {
		const struct growth_page *p = growth_state_page(gs, BASE + i * PAGE);

		if (!ref[i].held) {
			cr_assert_null(p, "page %zu should not be held", i);
			continue;
		}
		held++;
		cr_assert_not_null(p, "page %zu should be held", i);
		cr_assert_eq(p->stack_id, ref[i].stack, "page %zu", i);
		cr_assert_eq(p->weight, ref[i].weight, "page %zu", i);
	}
	cr_assert_eq(gs->pages.used, held);
	check_sums(gs);
}

/* Samples in, releases of every size out, with page re-faults: the table
 * against an array, both of its release paths (page by page, whole table)
 * and the backward-shift deletion under heavy probing. */
Test(growth, state_pages_against_model)
{
	static struct ref_page ref[NPAGES];
	struct growth_state gs;
	uint64_t received = 0, released = 0, refaulted = 0;

	growth_state_init(&gs);
	memset(ref, 0, sizeof(ref));
	for (int step = 0; step < 20000; step++) {
		uint64_t r = rnd_below(100);

		if (r < 70) {
			size_t i = rnd_below(NPAGES);
			uint32_t w = (uint32_t)(1 + rnd_below(31));
			uint64_t stack = 1 + rnd_below(50);

			apply_ok(&gs, ev_fault(BASE + i * PAGE + rnd_below(PAGE), stack, w));
			received += w;
			if (ref[i].held) {
				/* the page once, both gaps' other faults kept */
				ref[i].weight += w - 1;
				refaulted++;
			} else {
				ref[i].held = true;
				ref[i].weight = w;
			}
			ref[i].stack = stack;
		} else {
			/* small ranges mostly; some cover the whole region */
			size_t a = rnd_below(NPAGES);
			size_t n = r < 97 ? 1 + rnd_below(40) : NPAGES;
			size_t b = a + n > NPAGES ? NPAGES : a + n;
			uint32_t type = r < 85 ? GROWTH_EV_MADVISE : GROWTH_EV_MUNMAP;

			if (n == NPAGES)
				a = 0, b = NPAGES;
			/* an unaligned start and length cover the pages they touch */
			apply_ok(&gs, ev_range(type, BASE + a * PAGE, (b - a) * PAGE - 100, 0));
			for (size_t i = a; i < b; i++) {
				if (ref[i].held)
					released += ref[i].weight;
				ref[i].held = false;
			}
		}
		if (step % 97 == 0 || step > 19900)
			check_pages(&gs, ref, NPAGES);
	}
	check_pages(&gs, ref, NPAGES);
	cr_assert_eq(gs.pages_received, received);
	cr_assert_eq(gs.pages_released, released);
	cr_assert_eq(gs.pages_refaulted, refaulted);
	growth_state_free(&gs);
}

/* A large table (rehashes) emptied in random order. */
Test(growth, state_pages_large_table)
{
	enum { N = 200000 };
	struct growth_state gs;
	uint32_t *order = malloc(N * sizeof(*order));

	cr_assert_not_null(order);
	growth_state_init(&gs);
	for (uint32_t i = 0; i < N; i++) {
		order[i] = i;
		apply_ok(&gs, ev_fault(BASE + (uint64_t)i * PAGE, i + 1, 1));
	}
	cr_assert_eq(gs.pages.used, N);
	cr_assert_eq(gs.pages_held, N);
	for (uint32_t i = N - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rnd_below(i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = order[k];

		apply_ok(&gs, ev_range(GROWTH_EV_MUNMAP, BASE + (uint64_t)i * PAGE, PAGE, 0));
		if (k % 20011 == 0 || k > N - 5) {
			/* everything not yet released is still found */
			for (uint32_t m = k + 1; m < N; m += 997) {
				const struct growth_page *p = growth_state_page(&gs, BASE + (uint64_t)order[m] * PAGE);

				cr_assert_not_null(p);
				cr_assert_eq(p->stack_id, order[m] + 1);
			}
		}
	}
	cr_assert_eq(gs.pages.used, 0);
	cr_assert_eq(gs.pages_held, 0);
	cr_assert_eq(gs.pages_peak, N);
	check_sums(&gs);
	free(order);
	growth_state_free(&gs);
}

/* ---------------------------------------------------------------- state: runs */

struct run {
	uint64_t addr, size, stack;
};

struct runs {
	struct run v[16];
	size_t n;
};

static int collect_run(void *ctx, uint64_t addr, uint64_t size, uint64_t stack_id)
{
	struct runs *r = ctx;

	cr_assert_lt(r->n, 16);
	r->v[r->n++] = (struct run){ addr, size, stack_id };
	return 0;
}

/* Adjacent pages with the same traceback are one trace whose size is their
 * weights; a gap or another traceback starts a new one. */
Test(growth, state_page_runs)
{
	struct growth_state gs;
	struct runs r = { .n = 0 };
	static const struct run want[] = {
		{ BASE, 6 * PAGE, 7 },                  /* pages 0-2, weights 1+2+3 */
		{ BASE + 3 * PAGE, 4 * PAGE, 8 },       /* page 3, other stack */
		{ BASE + 5 * PAGE, 2 * PAGE, 8 },       /* page 5-6 after a gap */
		{ BASE + 7 * PAGE, 1 * PAGE, 7 },
	};

	growth_state_init(&gs);
	/* out of order, as a hash table returns them */
	apply_ok(&gs, ev_fault(BASE + 6 * PAGE, 8, 1));
	apply_ok(&gs, ev_fault(BASE + 2 * PAGE, 7, 3));
	apply_ok(&gs, ev_fault(BASE + 0 * PAGE, 7, 1));
	apply_ok(&gs, ev_fault(BASE + 7 * PAGE, 7, 1));
	apply_ok(&gs, ev_fault(BASE + 3 * PAGE, 8, 4));
	apply_ok(&gs, ev_fault(BASE + 1 * PAGE + 5, 7, 2));
	apply_ok(&gs, ev_fault(BASE + 5 * PAGE, 8, 1));
	cr_assert_eq(growth_state_page_runs(&gs, collect_run, &r), 0);
	cr_assert_eq(r.n, 4);
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(r.v[i].addr, want[i].addr, "run %zu", i);
		cr_expect_eq(r.v[i].size, want[i].size, "run %zu", i);
		cr_expect_eq(r.v[i].stack, want[i].stack, "run %zu", i);
	}
	growth_state_free(&gs);
}

/* ---------------------------------------------------------------- state: brk */

static void expect_maps(const struct growth_state *gs, const struct growth_mapping *want, size_t n)
{
	cr_assert_eq(gs->nmaps, n, "%zu mappings, expected %zu", gs->nmaps, n);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(gs->maps[i].start, want[i].start, "mapping %zu start %#" PRIx64, i, gs->maps[i].start);
		cr_expect_eq(gs->maps[i].end, want[i].end, "mapping %zu end %#" PRIx64, i, gs->maps[i].end);
		cr_expect_eq(gs->maps[i].stack_id, want[i].stack_id, "mapping %zu", i);
	}
	check_sums(gs);
}

/* The heap grows and shrinks at page granularity of an unaligned break, as
 * the kernel does (brk maps [PAGE_ALIGN(old), PAGE_ALIGN(new))); a query,
 * brk(0), only tells where the break is. */
Test(growth, state_brk)
{
	struct growth_state gs;
	struct growth_event ev = { .type = GROWTH_EV_BRK };

	growth_state_init(&gs);
	gs.brk = BASE + 0x1800;                 /* read from /proc when tracing started */
	ev.addr = ev.len = BASE + 0x5100;       /* grows: pages 2..5 are new */
	ev.stack_id = 1;
	apply_ok(&gs, ev);
	expect_maps(&gs, (const struct growth_mapping[]){ { BASE + 0x2000, BASE + 0x6000, 1 } }, 1);
	apply_ok(&gs, ev_fault(BASE + 0x2000, 1, 1));
	apply_ok(&gs, ev_fault(BASE + 0x5000, 1, 1));
	apply_ok(&gs, ev_fault(BASE + 0x1000, 1, 1));  /* before tracing's break, kept */
	ev.addr = ev.len = BASE + 0x8000;
	ev.stack_id = 2;
	apply_ok(&gs, ev);
	expect_maps(&gs, (const struct growth_mapping[]){ { BASE + 0x2000, BASE + 0x6000, 1 },
							  { BASE + 0x6000, BASE + 0x8000, 2 } }, 2);
	/* a failed brk returns the old break: nothing changes */
	ev.len = BASE + 0x100000000ull;
	apply_ok(&gs, ev);
	expect_maps(&gs, (const struct growth_mapping[]){ { BASE + 0x2000, BASE + 0x6000, 1 },
							  { BASE + 0x6000, BASE + 0x8000, 2 } }, 2);
	/* shrinks to 0x4010: pages from 0x5000 go, with page 0x5000's sample */
	ev.addr = ev.len = BASE + 0x4010;
	apply_ok(&gs, ev);
	expect_maps(&gs, (const struct growth_mapping[]){ { BASE + 0x2000, BASE + 0x5000, 1 } }, 1);
	cr_expect_null(growth_state_page(&gs, BASE + 0x5000));
	cr_expect_not_null(growth_state_page(&gs, BASE + 0x2000));
	cr_expect_eq(gs.pages_released, 1);
	/* a query after a break we missed: in sync again, nothing invented */
	ev.addr = BASE + 0x3000;
	ev.len = 0;
	apply_ok(&gs, ev);
	cr_expect_eq(gs.brk, BASE + 0x3000);
	expect_maps(&gs, (const struct growth_mapping[]){ { BASE + 0x2000, BASE + 0x5000, 1 } }, 1);
	/* shrinking below where tracing started removes what was traced only */
	ev.addr = ev.len = BASE;
	gs.brk = BASE + 0x5000;
	apply_ok(&gs, ev);
	expect_maps(&gs, NULL, 0);
	cr_expect_null(growth_state_page(&gs, BASE + 0x1000));
	cr_expect_eq(gs.bytes_mapped, 0x6000);
	cr_expect_eq(gs.bytes_unmapped, 0x6000);
	check_sums(&gs);
	growth_state_free(&gs);
}

/* ---------------------------------------------------------------- state vs the kernel */

#define ARENA_PAGES 96

struct kpage {
	bool mapped;
	uint64_t map_stack;
	bool resident;
	uint64_t page_stack;
};

struct oracle {
	uint8_t *arena;
	struct kpage ref[ARENA_PAGES];
	struct growth_state gs;
	uint64_t next_stack;
	unsigned ops[16];
};

static uint64_t arena_addr(const struct oracle *o, size_t i)
{
	return (uint64_t)(uintptr_t)o->arena + i * PAGE;
}

/* RW pages of the arena per /proc/self/maps. */
static void kernel_mapped(const struct oracle *o, bool *mapped)
{
	char line[512];
	uint64_t lo = arena_addr(o, 0), hi = arena_addr(o, ARENA_PAGES);
	FILE *f = fopen("/proc/self/maps", "re");

	cr_assert_not_null(f);
	memset(mapped, 0, ARENA_PAGES);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) != 3 || perms[0] != 'r' || perms[1] != 'w')
			continue;
		for (uint64_t p = a < lo ? lo : a; p < b && p < hi; p += PAGE)
			mapped[(p - lo) / PAGE] = true;
	}
	fclose(f);
}

static bool kernel_resident(const struct oracle *o, size_t i)
{
	unsigned char v = 0;

	cr_assert_eq(mincore((void *)(uintptr_t)arena_addr(o, i), PAGE, &v), 0, "mincore: %s", strerror(errno));
	return v & 1;
}

static void oracle_check(struct oracle *o, const char *op)
{
	bool mapped[ARENA_PAGES];

	kernel_mapped(o, mapped);
	for (size_t i = 0; i < ARENA_PAGES; i++) {
		uint64_t a = arena_addr(o, i);
		const struct growth_page *p = growth_state_page(&o->gs, a);
		const struct growth_mapping *m = NULL;

		for (size_t k = 0; k < o->gs.nmaps; k++)
			if (o->gs.maps[k].start <= a && a < o->gs.maps[k].end)
				m = &o->gs.maps[k];
		cr_assert_eq(mapped[i], o->ref[i].mapped, "after %s: page %zu mapped: kernel %d, reference %d",
			     op, i, mapped[i], o->ref[i].mapped);
		cr_assert_eq(m != NULL, mapped[i], "after %s: page %zu mapped: kernel %d, state %d", op, i,
			     mapped[i], m != NULL);
		if (m)
			cr_assert_eq(m->stack_id, o->ref[i].map_stack, "after %s: page %zu mapping traceback", op, i);
		if (!mapped[i]) {
			cr_assert_null(p, "after %s: page %zu not mapped but held", op, i);
			continue;
		}
		cr_assert_eq(kernel_resident(o, i), o->ref[i].resident, "after %s: page %zu resident: kernel %d, reference %d",
			     op, i, kernel_resident(o, i), o->ref[i].resident);
		cr_assert_eq(p != NULL, o->ref[i].resident, "after %s: page %zu resident: kernel %d, state %d", op, i,
			     o->ref[i].resident, p != NULL);
		if (p) {
			cr_assert_eq(p->stack_id, o->ref[i].page_stack, "after %s: page %zu traceback", op, i);
			cr_assert_eq(p->weight, 1);
		}
	}
	check_sums(&o->gs);
}

static void feed(struct oracle *o, struct growth_event ev)
{
	cr_assert_eq(growth_state_apply(&o->gs, &ev), 0);
}

/* One random operation, done by the kernel, fed to the state as BPF would
 * (successful calls only; madvise over a gap fails but applies), and
 * mirrored in the reference. */
static const char *oracle_step(struct oracle *o)
{
	size_t a = rnd_below(ARENA_PAGES), n = 1 + rnd_below(12);
	uint64_t stack = ++o->next_stack;
	unsigned op = (unsigned)rnd_below(11);

	if (a + n > ARENA_PAGES)
		n = ARENA_PAGES - a;
	o->ops[op]++;
	switch (op) {
	case 0: case 1: case 2: {               /* touch (write) a mapped page */
		if (!o->ref[a].mapped)
			return "touch (skipped)";
		if (!kernel_resident(o, a)) {
			feed(o, ev_fault(arena_addr(o, a), stack, 1));
			o->ref[a].resident = true;
			o->ref[a].page_stack = stack;
		}
		o->arena[a * PAGE + rnd_below(PAGE)] = 1;
		return "touch";
	}
	case 3: {                               /* mmap MAP_FIXED, maybe populated */
		bool populate = rnd_below(4) == 0;
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (populate ? MAP_POPULATE : 0);
		void *r = mmap((void *)(uintptr_t)arena_addr(o, a), n * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);
		struct growth_event ev = ev_range(GROWTH_EV_MMAP, arena_addr(o, a), n * PAGE, stack);

		cr_assert_neq(r, MAP_FAILED, "mmap: %s", strerror(errno));
		ev.flags = (uint32_t)flags;
		feed(o, ev);
		for (size_t i = a; i < a + n; i++)
			o->ref[i] = (struct kpage){ true, stack, populate, stack };
		return populate ? "mmap populate" : "mmap";
	}
	case 4:                                 /* munmap, gaps and all */
		cr_assert_eq(munmap((void *)(uintptr_t)arena_addr(o, a), n * PAGE), 0);
		feed(o, ev_range(GROWTH_EV_MUNMAP, arena_addr(o, a), n * PAGE, 0));
		for (size_t i = a; i < a + n; i++)
			o->ref[i] = (struct kpage){ 0 };
		return "munmap";
	case 5: {                               /* MADV_DONTNEED, gaps and all */
		int r = madvise((void *)(uintptr_t)arena_addr(o, a), n * PAGE, MADV_DONTNEED);

		cr_assert(r == 0 || errno == ENOMEM, "madvise: %s", strerror(errno));
		feed(o, ev_range(GROWTH_EV_MADVISE, arena_addr(o, a), n * PAGE, 0));
		for (size_t i = a; i < a + n; i++)
			o->ref[i].resident = false;
		return r ? "madvise DONTNEED over a gap" : "madvise DONTNEED";
	}
	case 6: {                               /* MADV_FREE: not reported, still resident */
		(void)!madvise((void *)(uintptr_t)arena_addr(o, a), n * PAGE, MADV_FREE);
		return "madvise FREE";
	}
	case 7: {                               /* MADV_POPULATE_WRITE on a mapped range */
		struct growth_event ev = ev_range(GROWTH_EV_MADVISE, arena_addr(o, a), n * PAGE, stack);

		for (size_t i = a; i < a + n; i++)
			if (!o->ref[i].mapped)
				return "populate (skipped)";
		cr_assert_eq(madvise((void *)(uintptr_t)arena_addr(o, a), n * PAGE, 23 /* MADV_POPULATE_WRITE */), 0,
			     "madvise(MADV_POPULATE_WRITE): %s", strerror(errno));
		ev.arg = 23;
		feed(o, ev);
		for (size_t i = a; i < a + n; i++)
			if (!o->ref[i].resident)
				o->ref[i].resident = true, o->ref[i].page_stack = stack;
		return "madvise POPULATE_WRITE";
	}
	default: {                              /* mremap: moved, resized, in place, DONTUNMAP */
		size_t n2 = 1 + rnd_below(12), to = rnd_below(ARENA_PAGES);
		unsigned kind = (unsigned)rnd_below(3);
		int flags = 0;
		struct growth_event ev = { .type = GROWTH_EV_MREMAP, .old_addr = arena_addr(o, a),
					   .old_len = n * PAGE, .stack_id = stack };
		struct kpage old[ARENA_PAGES];
		void *r;

		if (kind == 0) {                /* in place */
			to = a;
		} else if (kind == 1) {         /* moved to a fixed place, maybe resized */
			flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		} else {                        /* moved, the old range left mapped and empty */
			flags = MREMAP_MAYMOVE | MREMAP_FIXED | 4 /* MREMAP_DONTUNMAP */;
			n2 = n;
		}
		if (to + n2 > ARENA_PAGES || (kind && to < a + n && a < to + n2))
			return "mremap (skipped)";
		for (size_t i = a; i < a + n; i++)
			if (!o->ref[i].mapped)
				return "mremap (skipped)";      /* the reserve moves PROT_NONE */
		r = mremap((void *)(uintptr_t)arena_addr(o, a), n * PAGE, n2 * PAGE, flags,
			   (void *)(uintptr_t)arena_addr(o, to));
		if (r == MAP_FAILED)
			return "mremap (failed, as BPF ignores)";
		cr_assert_eq((uint64_t)(uintptr_t)r, arena_addr(o, to));
		ev.addr = arena_addr(o, to);
		ev.len = n2 * PAGE;
		ev.flags = (uint32_t)flags;
		feed(o, ev);
		memcpy(old, o->ref, sizeof(old));
		if (kind == 0) {
			for (size_t i = a + n2; i < a + n; i++)
				o->ref[i] = (struct kpage){ 0 };
			for (size_t i = a + n; i < a + n2; i++)
				o->ref[i] = (struct kpage){ true, stack, false, 0 };
			return n2 < n ? "mremap shrink in place" : "mremap grow in place";
		}
		for (size_t i = 0; i < n2; i++)
			o->ref[to + i] = i < n ? old[a + i] : (struct kpage){ true, stack, false, 0 };
		if (kind == 2) {
			for (size_t i = 0; i < n2; i++)
				o->ref[to + i].map_stack = stack;
			for (size_t i = a; i < a + n; i++)
				o->ref[i].resident = false;
			return "mremap DONTUNMAP";
		}
		for (size_t i = a; i < a + n; i++)
			o->ref[i] = (struct kpage){ 0 };
		return "mremap move";
	}
	}
}

Test(growth, state_against_the_kernel)
{
	struct oracle o;

	memset(&o, 0, sizeof(o));
	growth_state_init(&o.gs);
	/* a region of our own, reserved PROT_NONE: what tracing did not see */
	o.arena = mmap(NULL, ARENA_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(o.arena, MAP_FAILED);
	for (int step = 0; step < 3000; step++) {
		const char *what = oracle_step(&o);

		oracle_check(&o, what);
	}
	for (unsigned i = 0; i < 11; i++)
		cr_expect_gt(o.ops[i], 100, "operation %u ran %u times", i, o.ops[i]);
	fprintf(stderr, "GROWTH state vs kernel: 3000 random operations, held pages %" PRIu64
		", mapped bytes %" PRIu64 ", released %" PRIu64 ", mremaps %u\n",
		o.gs.pages_held, o.gs.bytes_mapped - o.gs.bytes_unmapped, o.gs.pages_released,
		o.ops[8] + o.ops[9] + o.ops[10]);
	munmap(o.arena, ARENA_PAGES * PAGE);
	growth_state_free(&o.gs);
}

/* ---------------------------------------------------------------- live workloads */

#define WORKLOAD "tests/py/growth_workload.py"
#define SHORT "tests/py/growth_short.py"
#define TMBPF "build/san/tmbpf"

struct site {
	char name[24];
	unsigned lineno;
};

struct workload {
	struct disc_proc p;
	char file[1024];                /* co_filename of the workload's code */
	struct site sites[16];
	size_t nsites;
	char mark[1024];
};

/* Starts growth_workload.py MODE ARG and reads its FILE/SITE lines. */
static void workload_start(struct workload *w, const char *python, const char *mode, const char *arg)
{
	char *argv[] = { (char *)python, WORKLOAD, (char *)mode, (char *)arg, NULL };

	memset(w, 0, sizeof(*w));
	disc_spawn(&w->p, argv, NULL);
	disc_read_ready(&w->p);
	for (size_t i = 0; i < w->p.nlines; i++) {
		const char *l = w->p.lines[i];
		struct site *s = &w->sites[w->nsites];

		if (!strncmp(l, "FILE ", 5))
			snprintf(w->file, sizeof(w->file), "%s", l + 5);
		else if (w->nsites < 16 && sscanf(l, "SITE %23s %u", s->name, &s->lineno) == 2)
			w->nsites++;
	}
	cr_assert(w->file[0] && w->nsites >= 6, "the workload did not say where its sites are");
}

static unsigned site_line(const struct workload *w, const char *name)
{
	for (size_t i = 0; i < w->nsites; i++)
		if (!strcmp(w->sites[i].name, name))
			return w->sites[i].lineno;
	cr_assert_fail("no site %s", name);
	return 0;
}

static void workload_go(struct workload *w)
{
	cr_assert_eq(write(w->p.in_fd, "go\n", 3), 3);
}

/* Waits for the MARK line (polling the tracer meanwhile, when given). */
static void workload_mark(struct workload *w, struct growth_tracer *t)
{
	for (int i = 0; i < 3000; i++) {        /* 30 s */
		struct pollfd pfd = { .fd = fileno(w->p.out), .events = POLLIN };

		if (t)
			cr_assert_geq(growth_tracer_poll(t, 0), 0);
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		cr_assert_not_null(fgets(w->mark, sizeof(w->mark), w->p.out), "the workload ended before MARK");
		if (!strncmp(w->mark, "MARK", 4))
			return;
	}
	cr_assert_fail("timed out waiting for the workload's MARK");
}

static uint64_t mark_value(const struct workload *w, const char *key)
{
	char pat[40];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(w->mark, pat);
	cr_assert_not_null(p, "MARK has no %s: %s", key, w->mark);
	return strtoull(p + strlen(pat), NULL, 10);
}

static uint64_t counter_of(const struct tm_snapshot *s, const char *name)
{
	for (uint32_t i = 0; i < s->capture.ncounters; i++) {
		struct tm_str n = tm_string(s, s->capture.counters[i].name);

		if (n.len == strlen(name) && !memcmp(n.data, name, n.len))
			return s->capture.counters[i].value;
	}
	cr_assert_fail("snapshot has no counter %s", name);
	return 0;
}

static void print_counters(const char *who, const struct tm_snapshot *s)
{
	fprintf(stderr, "%s counters:", who);
	for (uint32_t i = 0; i < s->capture.ncounters; i++) {
		struct tm_str n = tm_string(s, s->capture.counters[i].name);

		if (s->capture.counters[i].value)
			fprintf(stderr, " %.*s=%" PRIu64, (int)n.len, n.data, s->capture.counters[i].value);
	}
	fputc('\n', stderr);
}

/* Domain-1 bytes per line of the workload's file. */
static uint64_t line_bytes(const struct tm_snapshot *s, const char *file, unsigned lineno)
{
	uint64_t total = 0;

	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *tr = &s->traces[i];
		const struct tm_frame *f = &s->frames[tm_traceback_frames(s, tr->traceback)[0]];
		struct tm_str name = tm_string(s, f->filename);

		if (tr->domain == TM_GROWTH_DOMAIN_PAGES && f->lineno == lineno &&
		    name.len == strlen(file) && !memcmp(name.data, file, name.len))
			total += tr->size;
	}
	return total;
}

/* The top lines by size of domain 1 (statistics('lineno') order). */
static void expect_top_sites(struct tm_snapshot *s, const struct workload *w, const char *const *names,
			     size_t n, const char *who)
{
	struct tm_error err = { "" };
	struct tm_stats st;

	cr_assert_eq(tm_statistics(s, TM_KEY_LINENO, false, &st, &err), 0, "%s", err.msg);
	cr_assert_geq(st.n, n);
	for (size_t i = 0; i < n; i++) {
		const struct tm_statistic *x = &st.stats[i];
		bool found = false;

		for (size_t k = 0; k < n; k++)
			found |= x->frames[0].lineno == site_line(w, names[k]) &&
				 x->frames[0].filename.len == strlen(w->file) &&
				 !memcmp(x->frames[0].filename.data, w->file, strlen(w->file));
		cr_expect(found, "%s: line #%zu by size is %.*s:%u (%" PRIu64 " B), not a growing site", who,
			  i + 1, (int)x->frames[0].filename.len, x->frames[0].filename.data,
			  x->frames[0].lineno, x->size);
	}
	tm_stats_free(&st);
}

/* ---------------------------------------------------------------- pagemap */

struct page_set {
	uint64_t *v;
	size_t n, cap;
};

static void page_set_add(struct page_set *ps, uint64_t page)
{
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 4096;
		ps->v = realloc(ps->v, ps->cap * sizeof(*ps->v));
		cr_assert_not_null(ps->v);
	}
	ps->v[ps->n++] = page;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool page_set_has(const struct page_set *ps, uint64_t page)
{
	return ps->n && bsearch(&page, ps->v, ps->n, sizeof(*ps->v), cmp_u64);
}

#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61)                    /* file page or shared anonymous */
#define PM_PFN(e) ((e) & ((1ull << 55) - 1))

/* The page frame of the shared zero page: an anonymous page only read maps
 * it, which counts in no RSS. */
static uint64_t zero_page_pfn(void)
{
	volatile uint8_t *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	cr_assert_neq((void *)p, MAP_FAILED);
	cr_assert_geq(fd, 0);
	(void)p[0];
	cr_assert_eq(pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PAGE * 8)), 8);
	close(fd);
	munmap((void *)p, PAGE);
	cr_assert(e & PM_PRESENT);
	return PM_PFN(e);
}

/* Every page of pid that is resident and counts in its RSS (present, not
 * the zero page): private anonymous ones in anon, the others in file. Sorted. */
static void resident_pages(pid_t pid, uint64_t zero_pfn, struct page_set *anon, struct page_set *file)
{
	char path[64], line[512];
	uint64_t *buf = malloc(4096 * sizeof(*buf));
	FILE *maps;
	int fd;

	cr_assert_not_null(buf);
	anon->n = file->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY);
	cr_assert(maps && fd >= 0);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long long lo, hi;

		if (sscanf(line, "%llx-%llx", &lo, &hi) != 2 || strstr(line, "[vsyscall]"))
			continue;
		for (uint64_t a = lo; a < hi;) {
			size_t n = (hi - a) / PAGE < 4096 ? (hi - a) / PAGE : 4096;
			ssize_t got = pread(fd, buf, n * 8, (off_t)(a / PAGE * 8));

			if (got <= 0)
				break;
			for (size_t i = 0; i < (size_t)got / 8; i++)
				if ((buf[i] & PM_PRESENT) && PM_PFN(buf[i]) != zero_pfn)
					page_set_add(buf[i] & PM_FILE ? file : anon, a + i * PAGE);
			a += (uint64_t)got / 8 * PAGE;
		}
	}
	fclose(maps);
	close(fd);
	free(buf);
	qsort(anon->v, anon->n, sizeof(*anon->v), cmp_u64);
	qsort(file->v, file->n, sizeof(*file->v), cmp_u64);
}

/* Where the pages that became resident but are not held lie: per mapping of
 * pid (its /proc/PID/maps line), how many. */
static void explain_missing(pid_t pid, const struct page_set *missing, const char *who)
{
	char path[64], line[512];
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	if (!maps)
		return;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long long lo, hi;
		size_t n = 0;

		if (sscanf(line, "%llx-%llx", &lo, &hi) != 2)
			continue;
		for (size_t i = 0; i < missing->n; i++)
			n += missing->v[i] >= lo && missing->v[i] < hi;
		if (n)
			fprintf(stderr, "GROWTH live %-11s   %zu pages resident, not held, in %s", who, n, line);
	}
	fclose(maps);
}

/* ---------------------------------------------------------------- live: every fault sampled */

struct live {
	struct symbolizer *sy;
	struct growth_tracer *t;
	struct py_interp pi;
};

static void live_open(struct live *l, pid_t pid, const struct growth_opts *go)
{
	struct tm_error err = { "" };
	struct frame_resolver res;

	cr_assert_eq(py_interp_open_pid_walker(pid, &l->pi, &err), 0, "%s", err.msg);
	l->sy = symbolizer_new();
	cr_assert_not_null(l->sy);
	cr_assert_eq(symbolizer_add(l->sy, pid, &l->pi), 0);
	res = symbolizer_resolver(l->sy);
	l->t = growth_tracer_open(go, &res, NULL, &err);
	cr_assert_not_null(l->t, "%s", err.msg);
}

static void live_add(struct live *l, pid_t pid)
{
	struct tm_error err = { "" };
	struct py_proc cfg;

	symbolizer_proc_config(&l->pi, &cfg);
	cr_assert_eq(growth_tracer_add_process(l->t, pid, &cfg, &err), 0, "%s", err.msg);
}

static void live_close(struct live *l)
{
	growth_tracer_close(l->t);
	symbolizer_free(l->sy);
}

static const char *const grow_sites[] = { "objects", "bytes", "cache", "cbuf", "kernel", "thread" };

/* Pages the tracer says grew and are held, against the kernel's own list of
 * resident pages before and after; their share of the RSS growth; where
 * they are attributed. Every fault sampled (--sample-pages 1). */
static void live_exact(const struct disc_python *py)
{
	struct growth_opts go = { .nframe = 1, .max_walk = 1024, .sample_pages = 1 };
	struct page_set before = { 0 }, after = { 0 }, before_file = { 0 }, after_file = { 0 };
	uint64_t zero_pfn = zero_page_pfn(), ours = 0, ours_resident = 0, grown = 0, grown_ours = 0;
	struct tm_error err = { "" };
	struct workload w;
	struct tm_snapshot *s;
	struct live l;
	char python[512];
	pid_t pid;

	disc_require(py, python, sizeof(python));
	workload_start(&w, python, "grow", "2");
	pid = w.p.pid;
	live_open(&l, pid, &go);
	resident_pages(pid, zero_pfn, &before, &before_file);
	live_add(&l, pid);
	workload_go(&w);
	workload_mark(&w, l.t);
	usleep(100000);                         /* blocked in its read of stdin by now */
	s = growth_tracer_snapshot(l.t, pid, &err);
	cr_assert_not_null(s, "%s", err.msg);
	resident_pages(pid, zero_pfn, &after, &after_file);
	print_counters(py->name, s);

	/* page by page */
	{
		struct page_set held = { 0 }, missing = { 0 };
		uint64_t grown_file = 0, missing_file = 0;

		for (uint64_t i = 0; i < s->ntraces; i++)
			for (uint64_t a = s->traces[i].address; s->traces[i].domain == TM_GROWTH_DOMAIN_PAGES &&
			     a < s->traces[i].address + s->traces[i].size; a += PAGE) {
				page_set_add(&held, a);
				ours++;
				ours_resident += page_set_has(&after, a) || page_set_has(&after_file, a);
			}
		qsort(held.v, held.n, sizeof(*held.v), cmp_u64);
		for (size_t i = 0; i < after.n; i++) {
			if (page_set_has(&before, after.v[i]))
				continue;
			grown++;
			if (page_set_has(&held, after.v[i]))
				grown_ours++;
			else
				page_set_add(&missing, after.v[i]);
		}
		for (size_t i = 0; i < after_file.n; i++) {
			if (page_set_has(&before_file, after_file.v[i]))
				continue;
			grown_file++;
			if (!page_set_has(&held, after_file.v[i])) {
				missing_file++;
				page_set_add(&missing, after_file.v[i]);
			}
		}
		qsort(missing.v, missing.n, sizeof(*missing.v), cmp_u64);
		explain_missing(pid, &missing, py->name);
		fprintf(stderr, "GROWTH live %-11s file-backed: %" PRIu64 " pages became resident, %" PRIu64
			" not held (a fault maps up to 16 around it, and counts one)\n", py->name, grown_file,
			missing_file);
		free(held.v);
		free(missing.v);
	}
	{
		double precision = 100.0 * (double)ours_resident / (double)ours;
		double recall = 100.0 * (double)grown_ours / (double)grown;
		uint64_t rss0 = counter_of(s, "rss.start"), rss1 = counter_of(s, "rss.now");
		double share = 100.0 * (double)s->capture.traced_current / (double)(rss1 - rss0);

		fprintf(stderr, "GROWTH live %-11s every fault: %" PRIu64 " pages held, %.2f%% of them resident "
			"(pagemap); %.2f%% of the %" PRIu64 " anonymous pages that became resident are held; "
			"RSS +%.1f MiB, attributed %.1f MiB = %.1f%% of the RSS growth\n",
			py->name, ours, precision, recall, grown, (double)(rss1 - rss0) / 1048576.0,
			(double)s->capture.traced_current / 1048576.0, share);
		cr_expect_geq(precision, 99.9, "%s: pages held but not resident: %.2f%% resident", py->name, precision);
		cr_expect_geq(recall, 99.8, "%s: anonymous pages that became resident but are not held: %.2f%% held",
			      py->name, recall);
		cr_expect(share >= 95.0 && share <= 105.0, "%s: %.1f%% of the RSS growth attributed", py->name, share);
		cr_expect_gt(rss1 - rss0, 25ull << 20, "%s: the workload grew too little to measure", py->name);
	}
	/* the counters add up: every fault is a sample of weight 1, nothing lost */
	cr_expect_eq(counter_of(s, "pages.faulted"), counter_of(s, "pages.received"));
	cr_expect_eq(counter_of(s, "pages.faulted"), counter_of(s, "pages.sampled"));
	cr_expect_eq(s->capture.traced_current / PAGE, counter_of(s, "pages.received") +
		     counter_of(s, "pages.populated") - counter_of(s, "pages.released") -
		     counter_of(s, "pages.refaulted"));
	cr_expect_eq(counter_of(s, "lost.events") + counter_of(s, "lost.pages") +
		     counter_of(s, "lost.stack_events") + counter_of(s, "lost.stack_unknown") +
		     counter_of(s, "lost.bad_events") + counter_of(s, "lost.out_of_memory"), 0);
	/* the kernel's own faults (a read() into a new buffer) are there */
	cr_expect_geq(counter_of(s, "pages.kernel_faulted"), mark_value(&w, "kernel") / PAGE / 2);
	/* each site's pages: one page per buffer of slack (its malloc header) */
	{
		static const char *const buffers[] = { "bytes", "cbuf", "kernel", "thread" };
		uint64_t ticks = mark_value(&w, "ticks");

		for (size_t i = 0; i < 4; i++) {
			uint64_t want = mark_value(&w, buffers[i]) / PAGE;
			uint64_t got = line_bytes(s, w.file, site_line(&w, buffers[i])) / PAGE;
			uint64_t slack = (buffers[i][0] == 't' ? want / 24 : ticks) + 2;

			fprintf(stderr, "GROWTH live %-11s site %-7s %" PRIu64 " pages held, %" PRIu64 " filled\n",
				py->name, buffers[i], got, want);
			cr_expect(got + slack >= want && got <= want + slack,
				  "%s: site %s holds %" PRIu64 " pages, its buffers fill %" PRIu64, py->name,
				  buffers[i], got, want);
		}
	}
	{
		struct tm_filter f;

		tm_domain_filter_init(&f, true, TM_GROWTH_DOMAIN_PAGES);
		cr_assert_eq(tm_snapshot_filter_traces(s, &f, 1, &err), 0, "%s", err.msg);
		expect_top_sites(s, &w, grow_sites, 6, py->name);
	}
	tm_snapshot_free(s);
	free(before.v);
	free(after.v);
	free(before_file.v);
	free(after_file.v);
	live_close(&l);
	disc_stop(&w.p);
}

#define PER_PYTHON(prefix, fn, timeout_s)                                                               \
	Test(growth, prefix##_py38, .timeout = timeout_s) { fn(&disc_pythons[0]); }                    \
	Test(growth, prefix##_py39, .timeout = timeout_s) { fn(&disc_pythons[1]); }                    \
	Test(growth, prefix##_py310, .timeout = timeout_s) { fn(&disc_pythons[2]); }                   \
	Test(growth, prefix##_py311, .timeout = timeout_s) { fn(&disc_pythons[3]); }                   \
	Test(growth, prefix##_py312, .timeout = timeout_s) { fn(&disc_pythons[4]); }                   \
	Test(growth, prefix##_py313, .timeout = timeout_s) { fn(&disc_pythons[5]); }                   \
	Test(growth, prefix##_debian311, .timeout = timeout_s) { fn(&disc_pythons[6]); }

PER_PYTHON(live, live_exact, 60)

/* ---------------------------------------------------------------- the CLI */

struct tmpdir {
	char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/tmbpf-growth-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path));
}

static void tmpdir_remove(struct tmpdir *d)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	(void)!system(cmd);
}

/* Starts argv with stdout and stderr to files (NULL: /dev/null). */
static pid_t start_cmd(char *const argv[], const char *out_path, const char *err_path)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (out < 0 || err < 0)
			_exit(126);
		dup2(out, 1);
		dup2(err, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_cmd(pid_t pid, int timeout_s)
{
	int status;

	for (int i = 0; i < timeout_s * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_fail("%s: timed out", "command");
	return -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

/* Waits until the file holds text (tmbpf's "tracing ..." line). */
static void wait_for_text(const char *path, const char *text, int timeout_s)
{
	for (int i = 0; i < timeout_s * 100; i++) {
		char *s = slurp(path);
		bool found = strstr(s, text) != NULL;

		free(s);
		if (found)
			return;
		usleep(10000);
	}
	cr_assert_fail("%s never said '%s'", path, text);
}

/* Runs `tmbpf attach` (argv) on the waiting workload w: once tmbpf says it
 * traces, w goes; tmbpf must then end by itself (--duration, or the
 * target's exit) within timeout_s with status 0. */
static void attach_while_it_runs(struct workload *w, char *const argv[], const char *out_path,
				 const char *err_path, int timeout_s)
{
	pid_t tm = start_cmd(argv, out_path, err_path);

	wait_for_text(err_path, "tmbpf: tracing PID", 30);
	workload_go(w);
	cr_assert_eq(wait_cmd(tm, timeout_s), 0, "tmbpf attach failed:\n%s", slurp(err_path));
}

struct diff_line {
	char filename[1024];
	unsigned lineno;
	int64_t size_diff;
};

/* `tmbpf diff OLD NEW --include-domain 1 --json`, its statistics in order. */
static size_t tmbpf_diff(const char *dir, const char *old, const char *new, struct diff_line *out,
			 size_t max)
{
	char out_path[128], limit[16];
	char *argv[] = { TMBPF, "diff", (char *)old, (char *)new, "--include-domain", "1",
			 "--limit", limit, "--json", NULL };
	char *json, *p;
	size_t n = 0;

	snprintf(out_path, sizeof(out_path), "%s/diff.json", dir);
	snprintf(limit, sizeof(limit), "%zu", max);
	cr_assert_eq(wait_cmd(start_cmd(argv, out_path, NULL), 30), 0, "tmbpf diff %s %s failed", old, new);
	json = slurp(out_path);
	for (p = json; n < max && (p = strstr(p, "\"filename\": \"")); n++) {
		char *q;
		long long d;

		p += 13;
		q = strchr(p, '"');
		cr_assert_not_null(q);
		snprintf(out[n].filename, sizeof(out[n].filename), "%.*s", (int)(q - p), p);
		cr_assert_eq(sscanf(q, "\", \"lineno\": %u}]", &out[n].lineno), 1, "%s", q);
		q = strstr(q, "\"size_diff\": ");
		cr_assert_not_null(q);
		cr_assert_eq(sscanf(q, "\"size_diff\": %lld", &d), 1);
		out[n].size_diff = d;
		p = q;
	}
	free(json);
	return n;
}

static bool is_site(const struct workload *w, const struct diff_line *d, const char *const *names, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (d->lineno == site_line(w, names[k]) && !strcmp(d->filename, w->file))
			return true;
	return false;
}

static struct tm_snapshot *load_snapshot(const char *path)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load(path, &err);

	cr_assert_not_null(s, "%s", err.msg);
	return s;
}

/* The percentage the report prints: "... = X% of the RSS growth". */
static double report_share(const char *report)
{
	const char *p = strstr(report, "% of the RSS growth");
	double v = -1;

	cr_assert_not_null(p, "the report gives no share of the RSS growth:\n%s", report);
	while (p > report && p[-1] != ' ')
		p--;
	cr_assert_eq(sscanf(p, "%lf", &v), 1);
	return v;
}

/* attach --growth --interval 0.5 (default sampling) on a growing workload:
 * `tmbpf diff` of the first snapshot and a later one lists the growing lines
 * first; how soon; what share of the RSS growth the final report explains. */
static void diff_growth(const struct disc_python *py)
{
	char python[512], pid_s[16], base[128], out[128], err_path[128], old[160], new[160];
	char *argv[] = { TMBPF, "attach", "-p", pid_s, "--growth", "--interval", "0.5", "--duration", "2.7",
			 "-o", base, NULL };
	struct diff_line d[8];
	struct tmpdir dir;
	struct workload w;
	double detect_s = -1;
	unsigned last = 0;
	char *report;

	disc_require(py, python, sizeof(python));
	tmpdir_make(&dir);
	workload_start(&w, python, "grow", "2.2");
	snprintf(pid_s, sizeof(pid_s), "%d", (int)w.p.pid);
	snprintf(base, sizeof(base), "%s/s.tmbpf", dir.path);
	snprintf(out, sizeof(out), "%s/report.txt", dir.path);
	snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir.path);
	attach_while_it_runs(&w, argv, out, err_path, 60);
	workload_mark(&w, NULL);
	snprintf(old, sizeof(old), "%s/s.1.tmbpf", dir.path);
	for (unsigned k = 2; k < 20; k++) {
		struct stat st;

		snprintf(new, sizeof(new), "%s/s.%u.tmbpf", dir.path, k);
		if (stat(new, &st))
			break;
		last = k;
		if (detect_s < 0) {
			size_t n = tmbpf_diff(dir.path, old, new, d, 6);
			bool all = n == 6;

			for (size_t i = 0; i < n; i++)
				all &= is_site(&w, &d[i], grow_sites, 6) && d[i].size_diff > 0;
			if (all) {
				struct tm_snapshot *s = load_snapshot(new);

				detect_s = (double)(s->capture.taken_ns - s->capture.start_ns) / 1e9;
				tm_snapshot_free(s);
			}
		}
	}
	cr_assert_geq(last, 4, "too few interval snapshots (%u)", last);
	/* first against last: the six growing lines, in front */
	snprintf(new, sizeof(new), "%s/s.%u.tmbpf", dir.path, last);
	{
		size_t n = tmbpf_diff(dir.path, old, new, d, 8);

		cr_assert_geq(n, 6);
		for (size_t i = 0; i < 6; i++)
			cr_expect(is_site(&w, &d[i], grow_sites, 6) && d[i].size_diff > 256 * 1024,
				  "%s: diff line #%zu is %s:%u (%+" PRId64 " B), not a growing site", py->name, i + 1,
				  d[i].filename, d[i].lineno, d[i].size_diff);
		for (size_t i = 6; i < n; i++)
			cr_expect_lt(d[i].size_diff, d[5].size_diff / 4, "%s: %s:%u grows as much as a site",
				     py->name, d[i].filename, d[i].lineno);
	}
	report = slurp(out);
	cr_expect(strstr(report, "Resident memory that grew while tracing"), "%s", report);
	{
		double share = report_share(report);
		struct tm_snapshot *s = load_snapshot(new);

		fprintf(stderr, "GROWTH diff %-11s sampled (16): growing lines first in the diff of snapshot 1 "
			"and the one taken %.1f s after attaching; final report: %.1f%% of the RSS growth "
			"attributed (%" PRIu64 " faults, %" PRIu64 " samples)\n", py->name, detect_s, share,
			counter_of(s, "pages.faulted"), counter_of(s, "pages.sampled"));
		cr_expect(detect_s > 0 && detect_s <= 30, "%s: the growing lines were not first in any diff",
			  py->name);
		cr_expect(share >= 95.0 && share <= 105.0, "%s: %.1f%% of the RSS growth attributed", py->name, share);
		/* two threads fault at once: the samples' weights still add up to
		 * the faults, but for those after the last sample (< 2 x 16) */
		cr_expect_eq(counter_of(s, "lost.pages"), 0);
		cr_expect(counter_of(s, "pages.received") <= counter_of(s, "pages.faulted") &&
			  counter_of(s, "pages.faulted") - counter_of(s, "pages.received") < 31,
			  "%s: weights add up to %" PRIu64 " of %" PRIu64 " faults", py->name,
			  counter_of(s, "pages.received"), counter_of(s, "pages.faulted"));
		/* gaps average 16 faults */
		cr_expect_gt(counter_of(s, "pages.sampled") * 20, counter_of(s, "pages.faulted"),
			     "%s: fewer samples than one per 20 faults", py->name);
		cr_expect_lt(counter_of(s, "pages.sampled") * 12, counter_of(s, "pages.faulted"),
			     "%s: more samples than one per 12 faults", py->name);
		tm_snapshot_free(s);
	}
	free(report);
	disc_stop(&w.p);
	tmpdir_remove(&dir);
}

PER_PYTHON(diff, diff_growth, 90)

/* A workload that allocates and frees as much as the growing one (~2 MiB a
 * tick, 40 ticks a second), but holds at most one tick's allocations at a
 * time: between the first interval snapshot (0.5 s, after its warm-up) and
 * the last one taken while it runs (2 s), no line of it grows by more than
 * 1 MiB (about two ticks' worth of its largest site: which tick a snapshot
 * catches, and the sampling, make it vary), and neither all of them together
 * nor RSS by as much as two ticks' allocations (4 MiB): a snapshot may land
 * just before or just after a tick's ~2 MiB are allocated, and glibc hands
 * the 384 KiB buffers out by mmap or from the heap as its threshold moves,
 * so a difference of one tick is not a trend (1.1 MiB of RSS was seen).
 * Leaking 3% of what it allocates would exceed that; the growing workload's
 * lines grow by 1.5 to 20 MiB each in the same time. */
#define STEADY_TWO_TICKS (4 << 20)

static void steady(const struct disc_python *py)
{
	static const char *const steady_sites[] = { "s_objects", "s_bytes", "s_cache", "s_cbuf", "s_kernel" };
	char python[512], pid_s[16], base[128], err_path[128], old[160], new[160];
	char *argv[] = { TMBPF, "attach", "-p", pid_s, "--growth", "--interval", "0.5", "--duration", "2.7",
			 "-q", "-o", base, NULL };
	struct diff_line d[64];
	struct tmpdir dir;
	struct workload w;
	struct tm_snapshot *s1, *sn;
	int64_t total = 0, worst = 0;
	unsigned last = 0;
	size_t n;

	disc_require(py, python, sizeof(python));
	tmpdir_make(&dir);
	workload_start(&w, python, "steady", "2.4");
	snprintf(pid_s, sizeof(pid_s), "%d", (int)w.p.pid);
	snprintf(base, sizeof(base), "%s/s.tmbpf", dir.path);
	snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir.path);
	attach_while_it_runs(&w, argv, NULL, err_path, 60);
	workload_mark(&w, NULL);
	for (unsigned k = 1; k < 20; k++) {
		struct stat st;

		snprintf(new, sizeof(new), "%s/s.%u.tmbpf", dir.path, k);
		if (stat(new, &st))
			break;
		last = k;
	}
	cr_assert_geq(last, 5, "too few interval snapshots (%u)", last);
	/* snapshot 4 (2 s) is taken while the workload still runs */
	last = 5;
	snprintf(old, sizeof(old), "%s/s.1.tmbpf", dir.path);
	snprintf(new, sizeof(new), "%s/s.%u.tmbpf", dir.path, last - 1);
	n = tmbpf_diff(dir.path, old, new, d, 64);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(d[i].filename, w.file))
			continue;
		if (d[i].size_diff > 0)
			total += d[i].size_diff;
		if (d[i].size_diff > worst)
			worst = d[i].size_diff;
		cr_expect_leq(d[i].size_diff, 1 << 20, "%s: %s:%u grew by %" PRId64 " B in a steady state",
			      py->name, d[i].filename, d[i].lineno, d[i].size_diff);
	}
	s1 = load_snapshot(old);
	sn = load_snapshot(new);
	{
		int64_t rss = (int64_t)counter_of(sn, "rss.now") - (int64_t)counter_of(s1, "rss.now");
		uint64_t faulted = counter_of(sn, "pages.faulted") - counter_of(s1, "pages.faulted");
		uint64_t ticks = mark_value(&w, "ticks");

		fprintf(stderr, "GROWTH steady %-11s %" PRIu64 " ticks (~2 MiB allocated and freed each), "
			"%" PRIu64 " pages faulted between snapshots 1 and %u: workload lines grew by %+.1f KiB "
			"in all (largest %+.1f KiB), RSS %+.1f KiB\n", py->name, ticks, faulted, last - 1,
			(double)total / 1024, (double)worst / 1024, (double)rss / 1024);
		cr_expect_lt(total, STEADY_TWO_TICKS, "%s: the workload's lines grew by %" PRId64 " B",
			     py->name, total);
		cr_expect_lt(rss, STEADY_TWO_TICKS, "%s: RSS grew by %" PRId64 " B: not a steady state",
			     py->name, rss);
		cr_expect_gt(ticks, 40, "%s: the workload did too little", py->name);
	}
	/* what it holds is what one tick holds: its sites are all there */
	{
		struct tm_filter f;
		struct tm_error err = { "" };

		tm_domain_filter_init(&f, true, TM_GROWTH_DOMAIN_PAGES);
		cr_assert_eq(tm_snapshot_filter_traces(sn, &f, 1, &err), 0);
		for (size_t i = 0; i < 5; i++)
			cr_expect_lt(line_bytes(sn, w.file, site_line(&w, steady_sites[i])), 4u << 20,
				     "%s: site %s holds more than a tick's worth", py->name, steady_sites[i]);
	}
	tm_snapshot_free(s1);
	tm_snapshot_free(sn);
	disc_stop(&w.p);
	tmpdir_remove(&dir);
}

PER_PYTHON(steady, steady, 90)

/* ---------------------------------------------------------------- host-wide, exec, losses */

struct short_proc {
	const struct disc_python *py;
	const char *how;                /* growth_short.py's HOW */
	bool late;                      /* its libpython is mapped 300 ms after exec */
	bool brief;                     /* 0.2 s instead of 0.4 s */
	char tag[16];
	pid_t pid;
	uint64_t started_ns;
};

/* An LD_AUDIT library that holds ld.so back 300 ms before it maps
 * libpython: the exec is seen long before the interpreter is there. */
static bool build_late_loader(const char *dir, char *so, size_t size)
{
	char c[160], cmd[512];
	FILE *f;

	snprintf(c, sizeof(c), "%s/late.c", dir);
	snprintf(so, size, "%s/late.so", dir);
	f = fopen(c, "w");
	cr_assert_not_null(f);
	fputs("#define _GNU_SOURCE\n#include <link.h>\n#include <string.h>\n#include <unistd.h>\n"
	      "unsigned int la_version(unsigned int v) { return v; }\n"
	      "char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)\n"
	      "{ (void)cookie; if (flag == LA_SER_ORIG && strstr(name, \"libpython\")) usleep(300000);\n"
	      "  return (char *)name; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -o '%s' '%s' 2>/dev/null", so, c);
	return system(cmd) == 0;
}

static pid_t find_pid_line(const char *text, const char *fmt_prefix, const char *must_have, pid_t skip,
			   const char **from)
{
	const char *p = *from;

	while ((p = strstr(p, fmt_prefix))) {
		const char *eol = strchr(p, '\n');
		int pid = atoi(p + strlen(fmt_prefix));
		char line[2048];

		snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
		p += strlen(fmt_prefix);
		if (strstr(line, must_have) && pid != skip) {
			*from = p;
			return pid;
		}
	}
	(void)text;
	return 0;
}

static void expect_held_site(const char *path, const char *file_suffix, unsigned lineno, const char *who,
			     bool exec_end)
{
	struct tm_snapshot *s = load_snapshot(path);
	uint64_t best = 0, site = 0;
	struct tm_error err = { "" };
	struct tm_stats st;
	struct tm_filter f;

	cr_expect_eq(counter_of(s, exec_end ? "process.exec" : "process.exited"), 1, "%s: %s", who, path);
	tm_domain_filter_init(&f, true, TM_GROWTH_DOMAIN_PAGES);
	cr_assert_eq(tm_snapshot_filter_traces(s, &f, 1, &err), 0);
	cr_assert_eq(tm_statistics(s, TM_KEY_LINENO, false, &st, &err), 0, "%s", err.msg);
	cr_expect_gt(st.n, 0, "%s: nothing held in %s", who, path);
	if (st.n) {
		const struct tm_stat_frame *fr = &st.stats[0].frames[0];
		size_t sl = strlen(file_suffix);

		best = st.stats[0].size;
		if (fr->lineno == lineno && fr->filename.len >= sl &&
		    !memcmp(fr->filename.data + fr->filename.len - sl, file_suffix, sl))
			site = best;
		cr_expect_eq(site, best, "%s: the top line of %s is %.*s:%u, not %s:%u", who, path,
			     (int)fr->filename.len, fr->filename.data, fr->lineno, file_suffix, lineno);
	}
	/* two ticks: it may have been traced late on a busy machine */
	cr_expect_geq(site, 256 * 1024, "%s: %s holds %" PRIu64 " B at the growing line", who, path, site);
	tm_stats_free(&st);
	tm_snapshot_free(s);
}

static unsigned short_line(const char *name)
{
	char line[256], marker[32];
	unsigned n = 0, found = 0;
	FILE *f = fopen(SHORT, "re");

	cr_assert_not_null(f);
	snprintf(marker, sizeof(marker), "# SITE:%s", name);
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, marker))
			found = n;
	}
	fclose(f);
	cr_assert_gt(found, 0);
	return found;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* attach --all --growth while short processes (0.4 s) of every interpreter
 * start at once: each is traced and has its final snapshot, written when it
 * ended, holding what it held then; one execs itself (a second trace under
 * the same PID), one forks two workers (traced too), one execs a program
 * that is not Python, one finalises, and one has its libpython mapped
 * 300 ms after exec (the exec handling looks again until it is there). */
Test(growth, all_short_lived, .timeout = 120)
{
	struct short_proc procs[32];
	size_t n = 0;
	char out[128], err_path[128], base[128], late_so[160], env_late[200];
	char *argv[] = { TMBPF, "attach", "--all", "--growth", "-v", "--duration", "60", "-o", base, NULL };
	unsigned site = short_line("short"), child = short_line("child");
	struct tmpdir dir;
	char *errs, *report;
	bool have_late;
	pid_t tm;
	double worst_ms = 0;

	disc_require(NULL, NULL, 0);
	tmpdir_make(&dir);
	snprintf(out, sizeof(out), "%s/report.txt", dir.path);
	snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir.path);
	snprintf(base, sizeof(base), "%s/h.tmbpf", dir.path);
	have_late = build_late_loader(dir.path, late_so, sizeof(late_so));
	if (!have_late) {
		cr_log_info("SKIPPED the late-libpython case: no C compiler to build its LD_AUDIT library");
		fprintf(stderr, "SKIPPED the late-libpython case: no C compiler to build its LD_AUDIT library\n");
	}
	snprintf(env_late, sizeof(env_late), "LD_AUDIT=%s", late_so);
	for (size_t i = 0; i < disc_npythons; i++) {
		char path[512];

		disc_python_path(&disc_pythons[i], path, sizeof(path));
		if (access(path, X_OK)) {
			cr_log_info("SKIPPED CPython %s in --all: %s is not installed", disc_pythons[i].name, path);
			fprintf(stderr, "SKIPPED CPython %s in --all: %s is not installed\n", disc_pythons[i].name, path);
			continue;
		}
		procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "_exit" };
		if (!disc_pythons[i].version)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "exit" };
		if (disc_pythons[i].minor == 10 && disc_pythons[i].version)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "exec" };
		if (disc_pythons[i].minor == 12)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "fork" };
		if (disc_pythons[i].minor == 11 && disc_pythons[i].version)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "sleep" };
		if (disc_pythons[i].minor == 13 && have_late)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "_exit", .late = true };
		if (disc_pythons[i].minor == 9 || !disc_pythons[i].version)
			procs[n++] = (struct short_proc){ .py = &disc_pythons[i], .how = "_exit", .brief = true };
	}
	if (!n) {
		cr_log_info("SKIPPED: no interpreter installed");
		fprintf(stderr, "SKIPPED: no interpreter installed\n");
		cr_skip_test("no interpreter");
	}
	tm = start_cmd(argv, out, err_path);
	wait_for_text(err_path, "and every new one", 60);
	for (size_t i = 0; i < n; i++) {
		struct short_proc *sp = &procs[i];
		char python[512], serr[160];
		char *args[] = { python, SHORT, sp->brief ? "0.2" : "0.4", (char *)sp->how, sp->tag, NULL };

		disc_python_path(sp->py, python, sizeof(python));
		snprintf(sp->tag, sizeof(sp->tag), "T%u", (unsigned)i % 1000);
		snprintf(serr, sizeof(serr), "%s/short-%zu.txt", dir.path, i);
		sp->started_ns = now_ns();
		sp->pid = fork();
		cr_assert_geq(sp->pid, 0);
		if (sp->pid == 0) {
			int fd = open(serr, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			dup2(fd, 2);
			if (sp->late)
				putenv(env_late);
			execv(python, args);
			_exit(127);
		}
	}
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(wait_cmd(procs[i].pid, 30), 0, "short process %zu (%s) failed", i, procs[i].how);
	usleep(1500000);                        /* the last exits reach tmbpf */
	kill(tm, SIGINT);
	cr_assert_eq(wait_cmd(tm, 60), 0, "tmbpf attach --all failed");
	errs = slurp(err_path);
	report = slurp(out);
	for (size_t i = 0; i < n; i++) {
		struct short_proc *sp = &procs[i];
		char want[64], path[192], who[64];
		const char *not_traced = strstr(report, "Python processes not traced:");
		struct tm_snapshot *s;

		snprintf(who, sizeof(who), "CPython %s %s%s PID %d", sp->py->name, sp->how,
			 sp->brief ? " 0.2 s" : "", (int)sp->pid);
		snprintf(want, sizeof(want), "tmbpf: tracing PID %d (", (int)sp->pid);
		if (sp->brief && !strstr(errs, want)) {
			/* the fallback: not traced, but listed with the reason */
			snprintf(want, sizeof(want), "\n  %d (", (int)sp->pid);
			cr_expect(not_traced && strstr(not_traced, want), "%s was neither traced nor listed", who);
			cr_log_info("%s ended before it could be traced (listed with the reason)", who);
			fprintf(stderr, "GROWTH all %s ended before it could be traced (listed)\n", who);
			continue;
		}
		cr_expect(strstr(errs, want), "%s was not traced", who);
		snprintf(want, sizeof(want), "tmbpf: PID %d: ", (int)sp->pid);
		cr_expect(strstr(report, want), "%s has no report", who);
		snprintf(want, sizeof(want), "\n  %d (", (int)sp->pid);
		cr_expect(!not_traced || !strstr(not_traced, want), "%s is listed as not traced", who);
		snprintf(path, sizeof(path), "%s/h.%d.tmbpf", dir.path, (int)sp->pid);
		if (access(path, R_OK)) {
			cr_expect_fail("%s: no snapshot %s", who, path);
			continue;
		}
		s = load_snapshot(path);
		cr_expect_eq(s->capture.pid, sp->pid);
		{
			double ms = ((double)s->capture.start_ns - (double)sp->started_ns) / 1e6;
			double script_ms = 0;
			char serr[160], *txt, *st;

			/* its first line of Python ran at (START ... time.time()) */
			snprintf(serr, sizeof(serr), "%s/short-%zu.txt", dir.path, i);
			txt = slurp(serr);
			st = strstr(txt, "START ");
			if (st) {
				double t = 0;

				(void)!sscanf(st, "START %*d %*s %lf", &t);
				script_ms = ((double)s->capture.start_ns / 1e9 - t) * 1e3;
			}
			free(txt);
			if (ms > worst_ms)
				worst_ms = ms;
			fprintf(stderr, "GROWTH all %-11s %-5s%s traced %.0f ms after fork (%+.0f ms from its "
				"script's first line), %" PRIu64 " faults, %" PRIu64 " KiB held when it ended\n",
				sp->py->name, sp->how, sp->late ? " (libpython 300 ms late)" : sp->brief ? " (0.2 s)" : "",
				ms, script_ms,
				counter_of(s, "pages.faulted"), s->capture.traced_current / 1024);
		}
		tm_snapshot_free(s);
		if (!strcmp(sp->how, "_exit") && sp->brief) {
			s = load_snapshot(path);
			cr_expect_eq(counter_of(s, "process.exited"), 1, "%s", who);
			tm_snapshot_free(s);
		} else if (!strcmp(sp->how, "_exit")) {
			expect_held_site(path, SHORT, site, who, false);
		} else if (!strcmp(sp->how, "exit")) {
			s = load_snapshot(path);
			cr_expect_eq(counter_of(s, "process.exited"), 1);
			/* finalisation gave back what it held: the peak says it was there */
			cr_expect_geq(s->capture.traced_peak, 256 * 1024, "%s: peak %" PRIu64, who, s->capture.traced_peak);
			tm_snapshot_free(s);
		} else if (!strcmp(sp->how, "exec")) {
			expect_held_site(path, SHORT, site, who, true);
			snprintf(path, sizeof(path), "%s/h.%d-2.tmbpf", dir.path, (int)sp->pid);
			cr_expect_eq(access(path, R_OK), 0, "%s: the program it exec'd has no snapshot", who);
			if (!access(path, R_OK))
				expect_held_site(path, SHORT, site, who, false);
		} else if (!strcmp(sp->how, "sleep")) {
			expect_held_site(path, SHORT, site, who, true);
			snprintf(path, sizeof(path), "%s/h.%d-2.tmbpf", dir.path, (int)sp->pid);
			cr_expect_neq(access(path, R_OK), 0, "%s: /bin/sleep was traced", who);
		} else if (!strcmp(sp->how, "fork")) {
			const char *from = errs;

			for (int k = 0; k < 2; k++) {
				char tag[32];
				pid_t c;

				snprintf(tag, sizeof(tag), " fork %s)", sp->tag);
				c = find_pid_line(errs, "tmbpf: tracing PID ", tag, sp->pid, &from);
				cr_expect_gt(c, 0, "%s: forked worker %d was not traced", who, k + 1);
				if (c <= 0)
					break;
				snprintf(path, sizeof(path), "%s/h.%d.tmbpf", dir.path, (int)c);
				expect_held_site(path, SHORT, child, who, false);
			}
		}
		if (sp->late) {
			snprintf(want, sizeof(want), "tmbpf: PID %d: its interpreter was mapped at look", (int)sp->pid);
			cr_expect(strstr(errs, want), "%s: its late libpython was not waited for", who);
		}
	}
	fprintf(stderr, "GROWTH all: %zu short-lived processes, the slowest traced %.0f ms after its start\n",
		n, worst_ms);
	free(errs);
	free(report);
	tmpdir_remove(&dir);
}

/* attach -p of a process that execs: the trace ends there, with what it
 * held; the new program is not traced (BPF dropped the PID at the exec). */
Test(growth, exec_ends_the_trace, .timeout = 60)
{
	const struct disc_python *py = &disc_pythons[4];
	char python[512], pid_s[16], out[128], err_path[128], base[128];
	char *argv[] = { TMBPF, "attach", "-p", pid_s, "--growth", "-o", base, NULL };
	struct tmpdir dir;
	struct workload w;
	char *errs, *report;

	disc_require(py, python, sizeof(python));
	tmpdir_make(&dir);
	snprintf(out, sizeof(out), "%s/report.txt", dir.path);
	snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir.path);
	snprintf(base, sizeof(base), "%s/e.tmbpf", dir.path);
	workload_start(&w, python, "exec", "1");
	snprintf(pid_s, sizeof(pid_s), "%d", (int)w.p.pid);
	attach_while_it_runs(&w, argv, out, err_path, 30);
	errs = slurp(err_path);
	report = slurp(out);
	cr_expect(strstr(errs, "exec'd another program: its trace ends"), "%s", errs);
	cr_expect(strstr(report, "It exec'd another program"), "%s", report);
	expect_held_site(base, w.file, site_line(&w, "bytes"), "exec", true);
	snprintf(base, sizeof(base), "%s/e-2.tmbpf", dir.path);
	cr_expect_neq(access(base, R_OK), 0, "the program exec'd under -p was traced too");
	free(errs);
	free(report);
	disc_stop(&w.p);
	tmpdir_remove(&dir);
}

/* A ring buffer too small for a burst of faults, read only afterwards:
 * what was dropped is counted, to the page. */
Test(growth, lost_events_are_counted, .timeout = 60)
{
	const struct disc_python *py = &disc_pythons[4];
	struct growth_opts go = { .nframe = 1, .max_walk = 1024, .sample_pages = 1,
				  .ringbuf_bytes = 16384 };
	struct tm_error err = { "" };
	struct workload w;
	struct tm_snapshot *s;
	struct live l;
	char python[512];
	uint64_t faulted, received, lost;

	disc_require(py, python, sizeof(python));
	workload_start(&w, python, "burst", "48");
	live_open(&l, w.p.pid, &go);
	live_add(&l, w.p.pid);
	workload_go(&w);
	workload_mark(&w, NULL);                /* not reading meanwhile */
	usleep(100000);
	s = growth_tracer_snapshot(l.t, w.p.pid, &err);
	cr_assert_not_null(s, "%s", err.msg);
	print_counters("lost", s);
	faulted = counter_of(s, "pages.faulted");
	received = counter_of(s, "pages.received");
	lost = counter_of(s, "lost.pages");
	fprintf(stderr, "GROWTH lost: 16 KiB ring buffer, %" PRIu64 " faults: %" PRIu64 " samples received, "
		"%" PRIu64 " events and %" PRIu64 " pages lost (counted), %" PRIu64 " stacks lost\n", faulted,
		received, counter_of(s, "lost.events"), lost, counter_of(s, "lost.stack_events"));
	cr_expect_gt(faulted, 48 * 256);
	cr_expect_gt(counter_of(s, "lost.events"), 0);
	cr_expect_gt(lost, 0);
	/* every fault is accounted for: received, or lost and counted */
	cr_expect_eq(faulted, received + lost);
	cr_expect_eq(counter_of(s, "lost.events"), lost, "with every fault a sample, one event per page");
	/* samples whose stack was lost have no traceback: counted too */
	if (counter_of(s, "lost.stack_events"))
		cr_expect_gt(counter_of(s, "lost.stack_unknown"), 0);
	tm_snapshot_free(s);
	live_close(&l);
	disc_stop(&w.p);
}

/* Starts python SHORT 0.3 _exit TAG as PID `want` when want > 0 (by setting
 * the kernel's last PID and forking: other processes may take it first, so
 * a few tries). Returns its PID, or 0 if want could not be had. */
static pid_t start_short_as(const char *python, const char *tag, pid_t want)
{
	char *args[] = { (char *)python, SHORT, "0.3", "_exit", (char *)tag, NULL };

	for (int i = 0; i < (want > 0 ? 50 : 1); i++) {
		pid_t pid;

		if (want > 0) {
			FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");

			if (!f)
				return 0;
			fprintf(f, "%d", (int)want - 1);
			if (fclose(f))
				return 0;
		}
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			if (want > 0 && getpid() != want)
				_exit(0);
			execv(python, args);
			_exit(127);
		}
		if (want <= 0 || pid == want)
			return pid;
		waitpid(pid, NULL, 0);
	}
	return 0;
}

static void expect_program(const char *path, const char *version, const char *tag)
{
	struct tm_snapshot *s = load_snapshot(path);
	struct tm_str py = tm_string(s, s->capture.python), cmd = tm_string(s, s->capture.command);

	cr_expect(py.len >= strlen(version) && !memcmp(py.data, version, strlen(version)),
		  "%s: traced as %.*s, expected CPython %s", path, (int)py.len, py.data, version);
	cr_expect(cmd.len > strlen(tag) && !memcmp(cmd.data + cmd.len - strlen(tag), tag, strlen(tag)),
		  "%s: command %.*s", path, (int)cmd.len, cmd.data);
	tm_snapshot_free(s);
}

/* A PID reused by another Python program while --all runs: two traces, two
 * files (BASE.PID.EXT and BASE.PID-2.EXT), each with its own program's
 * interpreter, command and growth. The second starts as soon as the first
 * is reaped: BPF must not count its first steps as the first one's. */
Test(growth, pid_reuse, .timeout = 60)
{
	const struct disc_python *a = &disc_pythons[4], *b = &disc_pythons[1];
	char pa[512], pb[512], out[128], err_path[128], base[128], path[192];
	char *argv[] = { TMBPF, "attach", "--all", "--growth", "--duration", "60", "-o", base, NULL };
	unsigned site = short_line("short");
	struct tmpdir dir;
	pid_t tm, first, second;

	disc_require(a, pa, sizeof(pa));
	disc_require(b, pb, sizeof(pb));
	tmpdir_make(&dir);
	snprintf(out, sizeof(out), "%s/report.txt", dir.path);
	snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir.path);
	snprintf(base, sizeof(base), "%s/h.tmbpf", dir.path);
	tm = start_cmd(argv, out, err_path);
	wait_for_text(err_path, "and every new one", 60);
	first = start_short_as(pa, "first", 0);
	cr_assert_eq(wait_cmd(first, 30), 0);
	second = start_short_as(pb, "second", first);
	if (!second) {
		kill(tm, SIGINT);
		wait_cmd(tm, 60);
		tmpdir_remove(&dir);
		cr_log_info("SKIPPED PID reuse: PID %d could not be had again", (int)first);
		fprintf(stderr, "SKIPPED PID reuse: PID %d could not be had again\n", (int)first);
		cr_skip_test("PID not reused");
	}
	cr_assert_eq(wait_cmd(second, 30), 0);
	usleep(1500000);
	kill(tm, SIGINT);
	cr_assert_eq(wait_cmd(tm, 60), 0, "tmbpf attach --all failed");
	snprintf(path, sizeof(path), "%s/h.%d.tmbpf", dir.path, (int)first);
	expect_program(path, a->version, "first");
	expect_held_site(path, SHORT, site, "first program", false);
	snprintf(path, sizeof(path), "%s/h.%d-2.tmbpf", dir.path, (int)first);
	cr_assert_eq(access(path, R_OK), 0, "no snapshot of the second program under PID %d", (int)first);
	expect_program(path, b->version, "second");
	expect_held_site(path, SHORT, site, "second program", false);
	fprintf(stderr, "GROWTH pid_reuse: PID %d traced twice (CPython %s, then %s), two snapshots\n",
		(int)first, a->name, b->name);
	tmpdir_remove(&dir);
}
