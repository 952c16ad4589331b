// SPDX-License-Identifier: MIT
/*
 * The screen of `tmbpf top` (see top.h).
 *
 * Each refresh computes statistics() once, of the new snapshot; the previous
 * refresh's and the start's statistics are kept with an index by key, so a
 * row's changes are two look-ups: the size_diff compare_to() would give,
 * without computing two comparisons per refresh.
 */
#include "output/counters.h"
#include "output/top.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output/flamegraph.h"
#include "snapshot/format.h"

/* ---- snapshots and their statistics, indexed by key ------------------------- */

struct top_view {
	struct tm_snapshot *s;
	struct tm_stats st;
	uint32_t *slots;                /* statistic index + 1; 0 = empty */
	size_t mask;
	uint64_t total_size;
};

static uint64_t key_hash(const struct tm_stat_frame *f, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t k = 0; k < f[i].filename.len; k++)
			h = (h ^ (unsigned char)f[i].filename.data[k]) * 0x100000001b3ULL;
		h = (h ^ f[i].lineno) * 0x100000001b3ULL;
		h = (h ^ 0xff) * 0x100000001b3ULL;      /* frame boundary */
	}
	return h ^ (h >> 29);
}

static bool key_eq(const struct tm_stat_frame *a, uint32_t an, const struct tm_stat_frame *b,
		   uint32_t bn)
{
	if (an != bn)
		return false;
	for (uint32_t i = 0; i < an; i++)
		if (a[i].lineno != b[i].lineno || a[i].filename.len != b[i].filename.len ||
		    memcmp(a[i].filename.data, b[i].filename.data, a[i].filename.len))
			return false;
	return true;
}

static void view_free(struct top_view *v)
{
	if (!v)
		return;
	tm_stats_free(&v->st);
	tm_snapshot_free(v->s);
	free(v->slots);
	free(v);
}

/* Takes s (freed on failure too). */
static struct top_view *view_new(struct tm_snapshot *s, const struct top_opts *o,
				 struct tm_error *err)
{
	struct top_view *v = calloc(1, sizeof(*v));
	size_t cap = 16;

	if (!v) {
		tm_snapshot_free(s);
		goto oom;
	}
	v->s = s;
	if (tm_statistics(s, o->key_type, o->cumulative, &v->st, err)) {
		tm_snapshot_free(s);
		free(v);
		return NULL;
	}
	v->total_size = tm_snapshot_total_size(s);
	while (cap < 2 * v->st.n + 2)
		cap *= 2;
	v->slots = calloc(cap, sizeof(*v->slots));
	if (!v->slots) {
		view_free(v);
		goto oom;
	}
	v->mask = cap - 1;
	/* statistics() keys are distinct: insert without looking for equals */
	for (size_t i = 0; i < v->st.n; i++) {
		const struct tm_statistic *st = &v->st.stats[i];
		size_t k = key_hash(st->frames, st->nframe) & v->mask;

		while (v->slots[k])
			k = (k + 1) & v->mask;
		v->slots[k] = (uint32_t)i + 1;
	}
	return v;
oom:
	tm_error_set(err, "out of memory");
	return NULL;
}

/* The statistic of v with this key, or NULL. */
static const struct tm_statistic *view_find(const struct top_view *v,
					    const struct tm_statistic *key)
{
	size_t k = key_hash(key->frames, key->nframe) & v->mask;

	for (; v->slots[k]; k = (k + 1) & v->mask) {
		const struct tm_statistic *st = &v->st.stats[v->slots[k] - 1];

		if (key_eq(st->frames, st->nframe, key->frames, key->nframe))
			return st;
	}
	return NULL;
}

/* compare_to()'s size_diff for a key of the new snapshot */
static int64_t size_diff(const struct top_view *old, const struct tm_statistic *st)
{
	const struct tm_statistic *o = view_find(old, st);

	return (int64_t)st->size - (int64_t)(o ? o->size : 0);
}

int top_state_init(struct top_state *t, const struct top_opts *o, struct tm_snapshot *start,
		   struct tm_error *err)
{
	memset(t, 0, sizeof(*t));
	t->opts = *o;
	t->start = view_new(start, o, err);
	if (!t->start)
		return -1;
	t->prev = t->now = t->start;
	return 0;
}

int top_state_update(struct top_state *t, struct tm_snapshot *now, struct tm_error *err)
{
	struct top_view *v = view_new(now, &t->opts, err), *old_prev = t->prev;

	if (!v)
		return -1;
	t->prev = t->now;
	t->now = v;
	if (old_prev != t->start && old_prev != t->prev)
		view_free(old_prev);
	t->refresh++;
	return 0;
}

void top_state_destroy(struct top_state *t)
{
	if (t->prev != t->start && t->prev != t->now)
		view_free(t->prev);
	if (t->now != t->start)
		view_free(t->now);
	view_free(t->start);
	memset(t, 0, sizeof(*t));
}

/* ---- lines --------------------------------------------------------------- */

/* A screen being written: lines are built in `line`, then cut to the width. */
struct screen {
	FILE *out;
	unsigned width;
	char *line;
	size_t len;
	FILE *lf;                       /* memory stream writing `line` */
	bool failed;
	size_t nlines;                  /* lines written */
};

static FILE *line_begin(struct screen *sc)
{
	sc->lf = open_memstream(&sc->line, &sc->len);
	if (!sc->lf)
		sc->failed = true;
	return sc->lf;
}

static size_t utf8_count(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)p[i] & 0xc0) != 0x80;
	return n;
}

/* Byte length of the first `chars` code points of p. */
static size_t utf8_prefix(const char *p, size_t len, size_t chars)
{
	size_t i = 0;

	while (i < len && chars) {
		i++;
		while (i < len && ((unsigned char)p[i] & 0xc0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

static void line_end(struct screen *sc)
{
	size_t n;

	if (!sc->lf)
		return;
	if (ferror(sc->lf) | fclose(sc->lf))
		sc->failed = true;
	sc->lf = NULL;
	if (sc->failed) {
		free(sc->line);
		sc->line = NULL;
		return;
	}
	n = sc->len;
	if (sc->width && utf8_count(sc->line, n) > sc->width)
		n = utf8_prefix(sc->line, n, sc->width);
	fwrite(sc->line, 1, n, sc->out);
	fputc('\n', sc->out);
	sc->nlines++;
	free(sc->line);
	sc->line = NULL;
}

static char *display(struct tm_str s, size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);

	if (!m)
		return NULL;
	fg_write_name(m, s, FG_NAME_DISPLAY);
	if (ferror(m) | fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void put_string(FILE *f, const struct tm_snapshot *s, tm_id id, const char *none)
{
	if (id == TM_ID_NONE)
		fputs(none, f);
	else
		fg_write_name(f, tm_string(s, id), FG_NAME_DISPLAY);
}

static void put_seconds(FILE *f, double sec)
{
	if (sec == (double)(uint64_t)sec)
		fprintf(f, "%" PRIu64 " s", (uint64_t)sec);
	else
		fprintf(f, "%g s", sec);
}

static const char *key_noun(const struct top_opts *o)
{
	switch (o->key_type) {
	case TM_KEY_FILENAME: return "files";
	case TM_KEY_TRACEBACK: return "tracebacks";
	default: return "lines";
	}
}

/* Lines that header() writes. */
static size_t header_lines(const struct top_state *t)
{
	const struct tm_capture *c = &t->now->s->capture;
	size_t n = 3 + (t->opts.note != NULL);

	for (uint32_t i = 0; i < c->ncounters; i++) {
		if (c->counters[i].value &&
		    report_counter_is_loss(tm_string(t->now->s, c->counters[i].name))) {
			n++;
			break;
		}
	}
	return n;
}

static void header(struct screen *sc, const struct top_state *t)
{
	const struct tm_snapshot *s = t->now->s;
	const struct tm_capture *c = &s->capture;
	char a[TM_SIZE_BUF], b[TM_SIZE_BUF], d[TM_SIZE_BUF];
	FILE *f;
	bool losses = false;

	if ((f = line_begin(sc))) {
		fputs("tmbpf top - ", f);
		if (c->pid)
			fprintf(f, "PID %" PRId32, c->pid);
		else
			fputs("PID unknown", f);
		if (c->command != TM_ID_NONE) {
			fputs(": ", f);
			put_string(f, s, c->command, "");
		}
		if (c->start_ns && c->taken_ns >= c->start_ns) {
			uint64_t sec = (c->taken_ns - c->start_ns) / 1000000000u;

			fprintf(f, " - elapsed %" PRIu64 ":%02" PRIu64 ":%02" PRIu64, sec / 3600,
				sec / 60 % 60, sec % 60);
		}
		fprintf(f, ", refresh %u", t->refresh);
		if (t->opts.interval > 0) {
			fputs(" every ", f);
			put_seconds(f, t->opts.interval);
		}
		line_end(sc);
	}
	if ((f = line_begin(sc))) {
		fputs("CPython ", f);
		put_string(f, s, c->python, "version unknown");
		if (c->tier == TM_TIER_TRACEMALLOC)
			fprintf(f, ", tracemalloc snapshot, coverage %s", report_coverage_name(c->coverage));
		else
			fprintf(f, ", %s tier, coverage %s", report_tier_name(c->tier),
				report_coverage_name(c->coverage));
		if (c->coverage_note != TM_ID_NONE) {
			fputs(": ", f);
			put_string(f, s, c->coverage_note, "");
		}
		line_end(sc);
	}
	if ((f = line_begin(sc))) {
		if (c->tier == TM_TIER_GROWTH) {
			uint64_t start = report_counter(s, "rss.start"), now = report_counter(s, "rss.now");
			uint64_t pages = 0;

			for (uint64_t i = 0; i < s->ntraces; i++)
				if (s->traces[i].domain == 1)
					pages += s->traces[i].size;
			if (start && now)
				fprintf(f, "RSS: %s at start, %s now (%s); ",
					tm_format_size_u(a, start, false), tm_format_size_u(b, now, false),
					tm_format_size(d, (int64_t)now - (int64_t)start, true));
			else
				fputs("RSS: unknown; ", f);
			fprintf(f, "attributed resident growth %s", tm_format_size_u(a, pages, false));
		} else if (c->tier == TM_TIER_TRACEMALLOC && !c->traced_current && !c->traced_peak) {
			fputs("Traced memory: unknown", f);     /* CPython pickles carry none */
		} else {
			fprintf(f, "Traced memory: current %s, peak %s",
				tm_format_size_u(a, c->traced_current, false),
				tm_format_size_u(b, c->traced_peak, false));
		}
		if (c->tier == TM_TIER_TRACEMALLOC && !c->tracer_memory)
			fputs("; tmbpf memory: unknown", f);
		else
			fprintf(f, "; tmbpf memory: %s", tm_format_size_u(a, c->tracer_memory, false));
		line_end(sc);
	}
	for (uint32_t i = 0; i < c->ncounters; i++) {
		if (!c->counters[i].value || !report_counter_is_loss(tm_string(s, c->counters[i].name)))
			continue;
		if (!losses && !(f = line_begin(sc)))
			return;
		fputs(losses ? " " : "Not seen or not resolved (counted): ", f);
		fg_write_name(f, tm_string(s, c->counters[i].name), FG_NAME_DISPLAY);
		fprintf(f, "=%" PRIu64, c->counters[i].value);
		losses = true;
	}
	if (losses)
		line_end(sc);
	if (t->opts.note && (f = line_begin(sc))) {
		fputs(t->opts.note, f);
		line_end(sc);
	}
}

/* "FILE:LINENO" (or "FILE") as displayed */
static char *location(const struct tm_stat_frame *fr, bool with_line, size_t *len)
{
	char *name = display(fr->filename, len), *loc = NULL;

	if (!name)
		return NULL;
	if (!with_line)
		return name;
	if (asprintf(&loc, "%s:%" PRIu32, name, fr->lineno) < 0)
		loc = NULL;
	else
		*len = strlen(loc);
	free(name);
	return loc;
}

/* the source line (stripped), displayed; NULL when there is none */
static char *source(const struct top_opts *o, const struct tm_stat_frame *fr, char *buf,
		    size_t bufsz, size_t *len)
{
	if (memchr(fr->filename.data, '\0', fr->filename.len) ||
	    tm_linecache_getline(o->root_dir, fr->filename.data, fr->lineno, buf, bufsz) ||
	    !buf[0])
		return NULL;
	return display((struct tm_str){ buf, (uint32_t)strlen(buf) }, len);
}

/* The location column of a row: LOC[: SOURCE], fitted to `room` characters
 * when room > 0. */
static void put_location(FILE *f, const struct top_opts *o, const struct tm_stat_frame *fr,
			 bool with_line, const char *prefix, size_t room, char *buf, size_t bufsz,
			 bool *failed)
{
	size_t len = 0, slen = 0, chars;
	char *loc = location(fr, with_line, &len), *src = NULL;

	if (!loc) {
		*failed = true;
		return;
	}
	fputs(prefix, f);
	room = room > strlen(prefix) ? room - strlen(prefix) : (room ? 1 : 0);
	chars = utf8_count(loc, len);
	if (room && chars > room) {
		/* the end of a path says most: "..kg/mod.py:12" */
		size_t keep = room > 2 ? room - 2 : 0;

		fputs("..", f);
		fputs(loc + utf8_prefix(loc, len, chars - keep), f);
		free(loc);
		return;
	}
	fputs(loc, f);
	if (with_line && (src = source(o, fr, buf, bufsz, &slen))) {
		fputs(": ", f);
		fwrite(src, 1, slen, f);     /* cut with the line */
		free(src);
	}
	free(loc);
}

#define TOP_NUMBERS_WIDTH 47            /* "%10s %11s %12s %9s  " */

int top_render(FILE *out, const struct top_state *t, struct tm_error *err)
{
	const struct top_opts *o = &t->opts;
	const struct top_view *now = t->now;
	struct screen sc = { .out = out, .width = o->width };
	size_t n = now->st.n, shown, lines_left, bufsz = 1 << 16;
	size_t room = o->width > TOP_NUMBERS_WIDTH ? o->width - TOP_NUMBERS_WIDTH : 0;
	uint64_t other_size = 0, blocks = tm_snapshot_block_count(now->s);
	char a[TM_SIZE_BUF], b[TM_SIZE_BUF], c[TM_SIZE_BUF], *buf = malloc(bufsz);
	FILE *f;

	if (!buf)
		goto oom;
	if (o->width && !room)
		room = 1;
	shown = (o->limit && o->limit < n) ? (size_t)o->limit : n;
	if (o->height) {
		/* the header, "Top", an empty line and the column titles; then a
		 * line for "other" and the last one left free (a newline there
		 * would scroll the screen) */
		size_t used = header_lines(t) + 3 + 2, lines = 0;

		lines_left = o->height > used ? o->height - used : 0;
		for (size_t i = 0; i < shown; i++) {
			lines += o->key_type == TM_KEY_TRACEBACK ? now->st.stats[i].nframe : 1;
			if (lines > lines_left) {
				shown = i;
				break;
			}
		}
	}
	header(&sc, t);
	if ((f = line_begin(&sc))) {
		fprintf(f, "Top %zu of %zu %s%s; %s in %" PRIu64 " trace%s", shown, n, key_noun(o),
			o->cumulative ? " (cumulative)" : "",
			tm_format_size_u(a, now->total_size, false), blocks, blocks == 1 ? "" : "s");
		line_end(&sc);
	}
	if ((f = line_begin(&sc)))
		line_end(&sc);
	if ((f = line_begin(&sc))) {
		fprintf(f, "%10s %11s %12s %9s  %s", "SIZE", "CHANGE", "SINCE START", "COUNT",
			o->key_type == TM_KEY_FILENAME ? "FILE" : "LINE");
		line_end(&sc);
	}
	for (size_t i = 0; i < shown; i++) {
		const struct tm_statistic *st = &now->st.stats[i];
		uint32_t extra = o->key_type == TM_KEY_TRACEBACK ? st->nframe - 1 : 0;

		if (!(f = line_begin(&sc)))
			break;
		fprintf(f, "%10s %11s %12s %9" PRIu64 "  ", tm_format_size_u(a, st->size, false),
			tm_format_size(b, size_diff(t->prev, st), true),
			tm_format_size(c, size_diff(t->start, st), true), st->count);
		/* frames[0] is the most recent: the line that allocated */
		put_location(f, o, &st->frames[0], o->key_type != TM_KEY_FILENAME, "", room, buf,
			     bufsz, &sc.failed);
		line_end(&sc);
		for (uint32_t k = 1; k <= extra; k++) {
			if (!(f = line_begin(&sc)))
				break;
			fprintf(f, "%*s", TOP_NUMBERS_WIDTH, "");
			put_location(f, o, &st->frames[k], true, "from ", room, buf, bufsz,
				     &sc.failed);
			line_end(&sc);
		}
	}
	if (shown < n) {
		for (size_t i = shown; i < n; i++)
			other_size += now->st.stats[i].size;
		if ((f = line_begin(&sc))) {
			fprintf(f, "%zu other: %s", n - shown, tm_format_size_u(a, other_size, false));
			line_end(&sc);
		}
	}
	free(buf);
	if (sc.failed)
		goto oom;
	return 0;
oom:
	tm_error_set(err, "out of memory");
	return -1;
}
