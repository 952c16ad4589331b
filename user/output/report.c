// SPDX-License-Identifier: MIT
/*
 * Renderings of statistics, diffs and snapshots (see report.h). The exact
 * strings of tracemalloc objects come from snapshot/format.c; this file
 * decides what is printed, in which order, and the JSON layout.
 */
#include "output/report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output/json_writer.h"
#include "snapshot/format.h"

static size_t shown(const struct tm_stats *st, uint64_t limit)
{
	return (limit == 0 || limit > st->n) ? st->n : (size_t)limit;
}

void report_stats_text(FILE *out, const struct tm_stats *st, uint64_t limit)
{
	size_t n = shown(st, limit);

	for (size_t i = 0; i < n; i++) {
		if (st->is_diff)
			tm_print_statistic_diff(out, &st->diffs[i]);
		else
			tm_print_statistic(out, &st->stats[i]);
	}
}

/* frames are stored most recent first; Python iterates a Traceback oldest first */
static void json_traceback(json_writer_t *w, const struct tm_stat_frame *frames, uint32_t n)
{
	jsonw_start_array(w);
	for (uint32_t i = n; i-- > 0;) {
		jsonw_start_object(w);
		jsonw_string_len_field(w, "filename", frames[i].filename.data,
				       frames[i].filename.len);
		jsonw_uint_field(w, "lineno", frames[i].lineno);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
}

int report_stats_json(FILE *out, const struct tm_stats *st, uint64_t limit)
{
	json_writer_t *w = jsonw_new(out);
	size_t n = shown(st, limit);

	if (!w)
		return -1;
	jsonw_start_object(w);
	jsonw_string_field(w, "key_type", tm_key_type_name(st->key_type));
	jsonw_bool_field(w, "cumulative", st->cumulative);
	jsonw_name(w, "statistics");
	jsonw_start_array(w);
	for (size_t i = 0; i < n; i++) {
		jsonw_start_object(w);
		jsonw_name(w, "traceback");
		if (st->is_diff) {
			const struct tm_statistic_diff *d = &st->diffs[i];

			json_traceback(w, d->frames, d->nframe);
			jsonw_uint_field(w, "size", d->size);
			jsonw_int_field(w, "size_diff", d->size_diff);
			jsonw_uint_field(w, "count", d->count);
			jsonw_int_field(w, "count_diff", d->count_diff);
		} else {
			const struct tm_statistic *t = &st->stats[i];

			json_traceback(w, t->frames, t->nframe);
			jsonw_uint_field(w, "size", t->size);
			jsonw_uint_field(w, "count", t->count);
		}
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_end_object(w);
	jsonw_destroy(&w);
	return 0;
}

/* ---- display top ---------------------------------------------------------- */

static bool str_is(struct tm_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.data, lit, n) == 0;
}

/*
 * The recipe filters traces with Filter(False, "<frozen importlib._bootstrap>")
 * and Filter(False, "<unknown>") before computing statistics. Both test only
 * the most recent frame, with patterns that have no wildcard and no ".pyc"
 * (so they match one filename exactly), and every trace of a non-cumulative
 * group shares that frame's filename (it is part of the key for 'filename'
 * and 'lineno', and frames[0] of the key for 'traceback'). Dropping the groups
 * whose most recent frame has one of these names is therefore the same as
 * filtering the traces, without copying or changing the caller's snapshot.
 */
static bool display_top_excluded(const struct tm_statistic *st)
{
	struct tm_str f = st->frames[0].filename;

	return str_is(f, "<frozen importlib._bootstrap>") || str_is(f, "<unknown>");
}

int report_display_top(FILE *out, const struct tm_snapshot *s, enum tm_key_type key_type,
		       uint64_t limit, const char *root_dir, struct tm_error *err)
{
	struct tm_stats st;
	uint64_t index = 0, nother = 0, other_size = 0, total = 0;
	size_t linesz = 1 << 16;
	char *line = malloc(linesz);

	if (!line) {
		tm_error_set(err, "out of memory");
		return -1;
	}
	if (tm_statistics(s, key_type, false, &st, err)) {
		free(line);
		return -1;
	}
	if (limit == 0) {
		for (size_t i = 0; i < st.n; i++)
			limit += !display_top_excluded(&st.stats[i]);
	}
	fprintf(out, "Top %" PRIu64 " lines\n", limit);
	for (size_t i = 0; i < st.n; i++) {
		const struct tm_statistic *stat = &st.stats[i];

		if (display_top_excluded(stat))
			continue;
		total += stat->size;
		if (index >= limit) {
			nother++;
			other_size += stat->size;
			continue;
		}
		/* stat.traceback[0]: the oldest frame (the only one unless 'traceback') */
		const struct tm_stat_frame *frame = &stat->frames[stat->nframe - 1];

		fprintf(out, "#%" PRIu64 ": ", ++index);
		tm_fputs_pystr(out, frame->filename);
		fprintf(out, ":%" PRIu32 ": %.1f KiB\n", frame->lineno, (double)stat->size / 1024);
		if (!memchr(frame->filename.data, '\0', frame->filename.len) &&
		    tm_linecache_getline(root_dir, frame->filename.data, frame->lineno, line,
					 linesz) == 0 && line[0])
			fprintf(out, "    %s\n", line);
	}
	if (nother)
		fprintf(out, "%" PRIu64 " other: %.1f KiB\n", nother, (double)other_size / 1024);
	fprintf(out, "Total allocated size: %.1f KiB\n", (double)total / 1024);
	tm_stats_free(&st);
	free(line);
	return 0;
}

/* ---- show ---------------------------------------------------------------- */

struct domain_total {
	uint32_t domain;
	bool used;
	uint64_t ntraces;
	uint64_t size;
};

static int cmp_domain(const void *a, const void *b)
{
	const struct domain_total *x = a, *y = b;

	return (x->domain > y->domain) - (x->domain < y->domain);
}

/* Per-domain totals, sorted by domain: a table keyed by the domain value
 * (a snapshot has a handful of domains, a hostile one up to one per trace). */
static struct domain_total *domain_totals(const struct tm_snapshot *s, size_t *count)
{
	size_t cap = 16, n = 0;
	struct domain_total *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return NULL;
	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];
		size_t h;

		if (2 * (n + 1) > cap) {
			struct domain_total *big = calloc(2 * cap, sizeof(*big));

			if (!big) {
				free(tab);
				return NULL;
			}
			for (size_t k = 0; k < cap; k++) {
				if (!tab[k].used)
					continue;
				h = (tab[k].domain * 0x9e3779b1u) & (2 * cap - 1);
				while (big[h].used)
					h = (h + 1) & (2 * cap - 1);
				big[h] = tab[k];
			}
			free(tab);
			tab = big;
			cap *= 2;
		}
		h = (t->domain * 0x9e3779b1u) & (cap - 1);
		while (tab[h].used && tab[h].domain != t->domain)
			h = (h + 1) & (cap - 1);
		if (!tab[h].used) {
			tab[h].used = true;
			tab[h].domain = t->domain;
			n++;
		}
		tab[h].ntraces += tm_trace_count(s, i);       /* blocks */
		tab[h].size += t->size;
	}
	/* compact the used slots to the front, then sort them */
	size_t k = 0;

	for (size_t i = 0; i < cap; i++)
		if (tab[i].used)
			tab[k++] = tab[i];
	qsort(tab, k, sizeof(*tab), cmp_domain);
	*count = k;
	return tab;
}

static void put_size(FILE *out, uint64_t size)
{
	char buf[TM_SIZE_BUF];

	fprintf(out, "%s (%" PRIu64 " B)", tm_format_size_u(buf, size, false), size);
}

static void put_opt_string(FILE *out, const struct tm_snapshot *s, tm_id id)
{
	if (id == TM_ID_NONE)
		fputs("unknown", out);
	else
		tm_fputs_pystr(out, tm_string(s, id));
}

static void put_time(FILE *out, uint64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	char buf[64];

	if (!ns || !gmtime_r(&sec, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) {
		fputs("unknown", out);
		return;
	}
	fprintf(out, "%s.%09" PRIu64 "Z", buf, ns % 1000000000u);
}

static const char *tier_name(enum tm_tier t)
{
	switch (t) {
	case TM_TIER_TRACEMALLOC: return "tracemalloc (in-process tracemalloc, e.g. a CPython pickle)";
	case TM_TIER_EXACT:       return "exact (CPython allocator domains, every call)";
	case TM_TIER_NATIVE:      return "native (libc allocator, byte-sampled)";
	case TM_TIER_GROWTH:      return "growth (page faults, brk, mmap)";
	}
	return "unknown";
}

static const char *coverage_name(enum tm_coverage c)
{
	switch (c) {
	case TM_COVERAGE_UNKNOWN:  return "unknown";
	case TM_COVERAGE_COMPLETE: return "complete";
	case TM_COVERAGE_PARTIAL:  return "partial";
	case TM_COVERAGE_SAMPLED:  return "sampled (sizes are estimates)";
	}
	return "unknown";
}

int report_snapshot_summary(FILE *out, const struct tm_snapshot *s, struct tm_error *err)
{
	const struct tm_capture *c = &s->capture;
	size_t ndomains = 0;
	struct domain_total *dom = domain_totals(s, &ndomains);
	uint32_t nonzero = 0;

	if (!dom) {
		tm_error_set(err, "out of memory");
		return -1;
	}
	fprintf(out, "traces: %" PRIu64 "\n", tm_snapshot_block_count(s));
	fputs("total size: ", out);
	put_size(out, tm_snapshot_total_size(s));
	fprintf(out, "\ntraceback_limit: %" PRIu32 "\n", s->traceback_limit);
	fprintf(out, "domains: %zu\n", ndomains);
	for (size_t i = 0; i < ndomains; i++) {
		fprintf(out, "  domain %" PRIu32 ": %" PRIu64 " traces, ", dom[i].domain,
			dom[i].ntraces);
		put_size(out, dom[i].size);
		fputc('\n', out);
	}
	free(dom);

	fputs("capture:\n", out);
	fprintf(out, "  tier: %s\n", tier_name(c->tier));
	fprintf(out, "  coverage: %s", coverage_name(c->coverage));
	if (c->coverage_note != TM_ID_NONE) {
		fputs(" (", out);
		tm_fputs_pystr(out, tm_string(s, c->coverage_note));
		fputc(')', out);
	}
	fputc('\n', out);
	if (c->sample_period)
		fprintf(out, "  sampling period: %" PRIu64 " B\n", c->sample_period);
	else
		fputs("  sampling period: none (every event)\n", out);
	if (c->pid)
		fprintf(out, "  pid: %" PRId32 "\n", c->pid);
	else
		fputs("  pid: unknown\n", out);
	fputs("  command: ", out);
	put_opt_string(out, s, c->command);
	fputs("\n  python: ", out);
	put_opt_string(out, s, c->python);
	fputs("\n  started: ", out);
	put_time(out, c->start_ns);
	fputs("\n  taken: ", out);
	put_time(out, c->taken_ns);
	if (c->start_ns && c->taken_ns >= c->start_ns)
		fprintf(out, " (%.3f s after the start)",
			(double)(c->taken_ns - c->start_ns) / 1e9);
	/* CPython's pickles carry no memory figures: zeros there mean unknown */
	if (c->tier == TM_TIER_TRACEMALLOC && !c->traced_current && !c->traced_peak) {
		fputs("\n  traced memory: unknown", out);
	} else {
		fputs("\n  traced memory: current ", out);
		put_size(out, c->traced_current);
		fputs(", peak ", out);
		put_size(out, c->traced_peak);
	}
	fputs("\n  tracer memory: ", out);
	if (c->tier == TM_TIER_TRACEMALLOC && !c->tracer_memory)
		fputs("unknown", out);
	else
		put_size(out, c->tracer_memory);
	fputc('\n', out);
	for (uint32_t i = 0; i < c->ncounters; i++)
		nonzero += c->counters[i].value != 0;
	fputs(nonzero ? "  counters:\n" : "  counters: none non-zero\n", out);
	for (uint32_t i = 0; i < c->ncounters; i++) {
		if (!c->counters[i].value)
			continue;
		fputs("    ", out);
		tm_fputs_pystr(out, tm_string(s, c->counters[i].name));
		fprintf(out, ": %" PRIu64 "\n", c->counters[i].value);
	}
	return 0;
}

uint64_t report_traces_at(FILE *out, const struct tm_snapshot *s, uint64_t address)
{
	uint64_t found = 0;

	for (uint64_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];

		if (t->address != address)
			continue;
		tm_print_trace(out, s, t);
		tm_print_traceback_format(out, s, t->traceback, false, 0, false, NULL);
		found++;
	}
	return found;
}
