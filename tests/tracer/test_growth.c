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
	cr_assert_eq(gs->pages_held, gs->pages_received - gs->pages_released - gs->pages_refaulted);
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
