// SPDX-License-Identifier: MIT
/*
 * Exactness of the exact tier against in-process tracemalloc, on every
 * interpreter of the machine.
 *
 * tests/py/tracer_exact_workload.py starts tracemalloc(8), imports the
 * phase-2 module and waits; we attach (real BPF, uprobes on its live
 * allocator tables); it runs phase 2 (pymalloc and raw blocks, realloc,
 * free-list reuse, instances, generators, recursion, raw calls without the
 * GIL, PyTraceMalloc_Track/Untrack, 8 threads) and stops at a marker while
 * both sides snapshot. The workload then compares, for the blocks phase 2
 * allocated, our (domain, size, traceback) multiset with tracemalloc's, and
 * checks that tracemalloc traces each of our blocks at the same address with
 * the same traceback. At least 99.9% of blocks and of bytes must agree.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "live_python.h"
#include "tracer/capture_plan.h"
#include "tracer/exact_tracer.h"
#include "tracer/pyinterp.h"
#include "tracer/symbolizer.h"

#define NFRAME 8

struct exactness {
	unsigned long long blocks_common, blocks_ours, blocks_tm;
	unsigned long long bytes_common, bytes_ours, bytes_tm, address_match;
};

/* Polls the tracer until the workload prints a line starting with `want`. */
static void pump_until(struct exact_tracer *t, struct disc_proc *p, const char *want,
		       char *line, size_t linesz)
{
	for (int i = 0; i < 6000; i++) {        /* 60 s */
		struct pollfd pfd = { .fd = fileno(p->out), .events = POLLIN };

		exact_tracer_poll(t, 0);
		if (poll(&pfd, 1, 10) > 0) {
			cr_assert_not_null(fgets(line, (int)linesz, p->out),
					   "the workload ended before printing %s", want);
			if (!strncmp(line, want, strlen(want)))
				return;
			fprintf(stderr, "workload: %s", line);
		}
	}
	cr_assert_fail("timed out waiting for %s", want);
}

static void write_blocks(const struct tm_snapshot *s, const char *path)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *tr = &s->traces[i];
		const struct tm_traceback *tb = &s->tracebacks[tr->traceback];
		const tm_id *frames = tm_traceback_frames(s, tr->traceback);

		fprintf(f, "%u %llu %llu %u %u\n", tr->domain, (unsigned long long)tr->address,
			(unsigned long long)tr->size, tb->nframe, tb->total_nframe);
		for (uint32_t j = 0; j < tb->nframe; j++) {
			const struct tm_frame *fr = &s->frames[frames[j]];
			struct tm_str name = tm_string(s, fr->filename);

			fprintf(f, "%u %.*s\n", fr->lineno, (int)name.len, name.data);
		}
	}
	cr_assert_eq(fclose(f), 0);
}

static void check_exactness(const struct disc_python *py)
{
	char python[512], line[4096], blocks[] = "/tmp/tmbpf-exact-XXXXXX";
	char *argv[] = { python, "tests/py/tracer_exact_workload.py", "8", NULL };
	struct exact_opts opts = { .nframe = NFRAME, .max_walk = 1024, .max_traces = 1 << 20,
				   .reattribute = true };
	struct tm_error err = { "" };
	struct capture_plan plan;
	struct py_interp pi;
	struct py_proc cfg;
	struct disc_proc p;
	struct symbolizer *sy;
	struct frame_resolver res;
	struct exact_tracer *t;
	struct tm_snapshot *s;
	struct exactness x;
	int fd;

	disc_require(py, python, sizeof(python));
	disc_spawn(&p, argv, NULL);
	disc_read_ready(&p);

	cr_assert_eq(py_interp_open_pid(p.pid, &pi, &err), 0, "%s", err.msg);
	cr_assert_eq(capture_plan_for_pid(&pi, true, &plan, &err), 0, "%s", err.msg);
	/* tracemalloc runs in the target: the tables point at its hooks, which
	 * every call goes through, even on an LTO build */
	cr_expect_eq(plan.coverage, TM_COVERAGE_COMPLETE, "%s: coverage: %s", py->name,
		     plan.coverage_note);
	sy = symbolizer_new();
	cr_assert_not_null(sy);
	cr_assert_eq(symbolizer_add(sy, p.pid, &pi), 0);
	res = symbolizer_resolver(sy);
	t = exact_tracer_open(&opts, &res, &err);
	cr_assert_not_null(t, "%s", err.msg);
	symbolizer_proc_config(&pi, &cfg);
	cr_assert_eq(exact_tracer_add_process(t, p.pid, &cfg, plan.probes, plan.nprobes, &err), 0,
		     "%s", err.msg);

	cr_assert_eq(write(p.in_fd, "go\n", 3), 3);
	pump_until(t, &p, "MARK", line, sizeof(line));
	s = exact_tracer_snapshot(t, p.pid, &err);
	cr_assert_not_null(s, "%s", err.msg);
	for (uint32_t i = 0; i < s->capture.ncounters; i++) {
		struct tm_str n = tm_string(s, s->capture.counters[i].name);

		if (s->capture.counters[i].value)
			fprintf(stderr, "%s counter %.*s=%llu\n", py->name, (int)n.len, n.data,
				(unsigned long long)s->capture.counters[i].value);
	}
	fd = mkstemp(blocks);
	cr_assert_geq(fd, 0);
	close(fd);
	write_blocks(s, blocks);
	/* detach before the workload compares: it allocates a lot doing so */
	exact_tracer_close(t);
	t = NULL;
	dprintf(p.in_fd, "%s\n", blocks);
	for (;;) {
		cr_assert_not_null(fgets(line, sizeof(line), p.out), "the workload ended without a RESULT");
		if (!strncmp(line, "RESULT", 6))
			break;
		fprintf(stderr, "workload: %s", line);
	}
	cr_assert_eq(sscanf(line, "RESULT blocks_common=%llu blocks_ours=%llu blocks_tracemalloc=%llu "
				  "bytes_common=%llu bytes_ours=%llu bytes_tracemalloc=%llu address_match=%llu",
			    &x.blocks_common, &x.blocks_ours, &x.blocks_tm, &x.bytes_common,
			    &x.bytes_ours, &x.bytes_tm, &x.address_match), 7, "bad result line: %s", line);
	/* the workload's explanation of any difference */
	while (fgets(line, sizeof(line), p.out))
		fprintf(stderr, "%s %s", py->name, line);

	{
		double bmax = (double)(x.blocks_ours > x.blocks_tm ? x.blocks_ours : x.blocks_tm);
		double ymax = (double)(x.bytes_ours > x.bytes_tm ? x.bytes_ours : x.bytes_tm);
		double blocks_pct = 100.0 * (double)x.blocks_common / bmax;
		double bytes_pct = 100.0 * (double)x.bytes_common / ymax;
		double addr_pct = 100.0 * (double)x.address_match / (double)x.blocks_ours;

		fprintf(stderr, "EXACTNESS CPython %-11s blocks %.3f%% (%llu of %llu ours / %llu tracemalloc), "
			"bytes %.3f%% (%llu / %llu), same address and traceback %.3f%%\n",
			py->name, blocks_pct, x.blocks_common, x.blocks_ours, x.blocks_tm, bytes_pct,
			x.bytes_ours, x.bytes_tm, addr_pct);
		cr_log_info("CPython %s: blocks %.3f%%, bytes %.3f%%, addresses %.3f%%", py->name,
			    blocks_pct, bytes_pct, addr_pct);
		cr_expect_gt(x.blocks_tm, 20000, "phase 2 allocated too little to measure");
		cr_expect_geq(blocks_pct, 99.9, "%s: blocks agree %.3f%%", py->name, blocks_pct);
		cr_expect_geq(bytes_pct, 99.9, "%s: bytes agree %.3f%%", py->name, bytes_pct);
		cr_expect_geq(addr_pct, 99.9, "%s: address/traceback agree %.3f%%", py->name, addr_pct);
	}
	unlink(blocks);
	tm_snapshot_free(s);
	exact_tracer_close(t);
	symbolizer_free(sy);
	disc_stop(&p);
}

#define EXACTNESS_TEST(idx, label) \
	Test(exactness, label, .timeout = 120) { check_exactness(&disc_pythons[idx]); }

EXACTNESS_TEST(0, cpython_3_8)
EXACTNESS_TEST(1, cpython_3_9)
EXACTNESS_TEST(2, cpython_3_10)
EXACTNESS_TEST(3, cpython_3_11)
EXACTNESS_TEST(4, cpython_3_12)
EXACTNESS_TEST(5, cpython_3_13)
EXACTNESS_TEST(6, debian_3_11)
