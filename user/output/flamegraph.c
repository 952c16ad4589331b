// SPDX-License-Identifier: MIT
/*
 * Folded stacks and SVG flame graphs of a snapshot (see flamegraph.h).
 *
 * Both start from the same grouping: the traceback ids that traces use,
 * sorted by their frames (oldest first, each frame by file name then line
 * number), so that tracebacks with the same frames but different
 * total_nframe end up next to each other and merge. That order is also the
 * left-to-right order of the SVG, where it is built the way flamegraph.pl's
 * flow() builds it: walking the sorted stacks, a frame that the previous
 * stack shares (same depth, same prefix) widens, and one that differs closes
 * and a new one opens -- no tree is stored.
 */
#include "output/flamegraph.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/format.h"

/* ---- grouping -------------------------------------------------------------- */

/* Python's order of Frame objects: (filename, lineno); strings are UTF-8 with
 * surrogatepass, whose byte order is code point order. */
static int frame_cmp(const struct tm_snapshot *s, tm_id a, tm_id b)
{
	const struct tm_frame *fa = &s->frames[a], *fb = &s->frames[b];

	if (a == b)
		return 0;
	if (fa->filename != fb->filename) {
		int c = tm_str_cmp(tm_string(s, fa->filename), tm_string(s, fb->filename));

		if (c)
			return c;
	}
	return (fa->lineno > fb->lineno) - (fa->lineno < fb->lineno);
}

/* Tracebacks compared as Python compares Traceback._frames: oldest first. */
static int traceback_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct tm_snapshot *s = ctx;
	const struct fg_stack *a = pa, *b = pb;
	const struct tm_traceback *ta = &s->tracebacks[a->traceback];
	const struct tm_traceback *tb = &s->tracebacks[b->traceback];
	const tm_id *fa = tm_traceback_frames(s, a->traceback);
	const tm_id *fb = tm_traceback_frames(s, b->traceback);
	uint32_t n = ta->nframe < tb->nframe ? ta->nframe : tb->nframe;

	for (uint32_t i = 1; i <= n; i++) {
		int c = frame_cmp(s, fa[ta->nframe - i], fb[tb->nframe - i]);

		if (c)
			return c;
	}
	return (ta->nframe > tb->nframe) - (ta->nframe < tb->nframe);
}

int fg_profile_build(struct fg_profile *p, const struct tm_snapshot *s, struct tm_error *err)
{
	uint64_t *size = NULL, *count = NULL;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->s = s;
	if (!s->ntracebacks || !s->ntraces)
		return 0;
	size = calloc(s->ntracebacks, sizeof(*size));
	count = calloc(s->ntracebacks, sizeof(*count));
	if (!size || !count)
		goto oom;
	for (uint64_t i = 0; i < s->ntraces; i++) {
		size[s->traces[i].traceback] += s->traces[i].size;
		count[s->traces[i].traceback] += tm_trace_count(s, i);
		p->total_size += s->traces[i].size;
		p->total_count += tm_trace_count(s, i);
	}
	for (uint32_t tb = 0; tb < s->ntracebacks; tb++)
		n += count[tb] != 0;
	p->stacks = malloc(n * sizeof(*p->stacks));
	if (!p->stacks)
		goto oom;
	for (uint32_t tb = 0; tb < s->ntracebacks; tb++)
		if (count[tb])
			p->stacks[p->nstacks++] = (struct fg_stack){ tb, size[tb], count[tb] };
	qsort_r(p->stacks, p->nstacks, sizeof(*p->stacks), traceback_cmp, (void *)s);
	/* same frames, different total_nframe: one group */
	n = 0;
	for (size_t i = 0; i < p->nstacks; i++) {
		if (n && !traceback_cmp(&p->stacks[n - 1], &p->stacks[i], (void *)s)) {
			p->stacks[n - 1].size += p->stacks[i].size;
			p->stacks[n - 1].count += p->stacks[i].count;
		} else {
			p->stacks[n++] = p->stacks[i];
		}
	}
	p->nstacks = n;
	free(size);
	free(count);
	return 0;
oom:
	free(size);
	free(count);
	fg_profile_destroy(p);
	tm_error_set(err, "out of memory");
	return -1;
}

void fg_profile_destroy(struct fg_profile *p)
{
	free(p->stacks);
	p->stacks = NULL;
	p->nstacks = 0;
}

/* ---- names --------------------------------------------------------------- */

/* The code point at p (surrogates accepted, as surrogatepass writes them), its
 * length in *n; -1 and *n = 1 for a byte that does not start valid UTF-8. */
static int32_t utf8_next(const unsigned char *p, const unsigned char *end, size_t *n)
{
	unsigned char c = p[0];
	size_t len, avail = (size_t)(end - p);
	int32_t cp;
	unsigned char lo = 0x80, hi = 0xbf;

	*n = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return -1;
	}
	if (avail < len || p[1] < lo || p[1] > hi)
		return -1;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*n = len;
	return cp;
}

void fg_write_name(FILE *out, struct tm_str s, enum fg_name_mode mode)
{
	const unsigned char *p = (const unsigned char *)s.data, *end = p + s.len;

	while (p < end) {
		size_t n;
		int32_t cp = utf8_next(p, end, &n);

		if (cp < 0)
			fprintf(out, "\\udc%02x", p[0]);
		else if (mode == FG_NAME_FOLDED && cp == '\\')
			fputs("\\\\", out);
		else if (mode == FG_NAME_FOLDED && cp == ';')
			fputs("\\x3b", out);
		else if (cp == '\n')
			fputs("\\n", out);
		else if (cp == '\r')
			fputs("\\r", out);
		else if (cp == '\t')
			fputs("\\t", out);
		else if (cp < 0x20 || cp == 0x7f)
			fprintf(out, "\\x%02x", (unsigned)cp);
		else if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
			fprintf(out, "\\u%04x", (unsigned)cp);
		else
			fwrite(p, 1, n, out);
		p += n;
	}
}

/* ---- folded stacks --------------------------------------------------------- */

struct folded_line {
	char *text;                     /* the stack, without the weight */
	size_t len;
	uint64_t weight;
};

static int folded_cmp(const void *pa, const void *pb)
{
	const struct folded_line *a = pa, *b = pb;
	int c = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);

	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static void write_frame(FILE *out, const struct tm_snapshot *s, tm_id frame, enum fg_name_mode mode)
{
	const struct tm_frame *f = &s->frames[frame];

	fg_write_name(out, tm_string(s, f->filename), mode);
	fprintf(out, ":%" PRIu32, f->lineno);
}

int fg_write_folded(FILE *out, const struct fg_profile *p, bool counts, struct tm_error *err)
{
	const struct tm_snapshot *s = p->s;
	struct folded_line *lines = calloc(p->nstacks ? p->nstacks : 1, sizeof(*lines));
	size_t i;
	int ret = -1;

	if (!lines)
		goto oom;
	for (i = 0; i < p->nstacks; i++) {
		const struct fg_stack *st = &p->stacks[i];
		const struct tm_traceback *tb = &s->tracebacks[st->traceback];
		const tm_id *frames = tm_traceback_frames(s, st->traceback);
		FILE *m = open_memstream(&lines[i].text, &lines[i].len);

		if (!m)
			goto oom;
		for (uint32_t k = tb->nframe; k-- > 0;) {
			write_frame(m, s, frames[k], FG_NAME_FOLDED);
			if (k)
				fputc(';', m);
		}
		if (ferror(m) | fclose(m))
			goto oom;
		lines[i].weight = counts ? st->count : st->size;
	}
	/* the escapes keep names apart, so equal stacks were merged already */
	qsort(lines, p->nstacks, sizeof(*lines), folded_cmp);
	for (i = 0; i < p->nstacks; i++) {
		fwrite(lines[i].text, 1, lines[i].len, out);
		fprintf(out, " %" PRIu64 "\n", lines[i].weight);
	}
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory");
out:
	for (i = 0; lines && i < p->nstacks; i++)
		free(lines[i].text);
	free(lines);
	return ret;
}

/* ---- SVG ------------------------------------------------------------------ */

/* flamegraph.pl's tunables */
#define FG_WIDTH 1200u
#define FG_FRAME_HEIGHT 16
#define FG_FRAME_PAD 1
#define FG_FONT_SIZE 12
#define FG_FONT_WIDTH 0.59              /* average character width / font size */
#define FG_MIN_WIDTH 0.1                /* pixels */
#define FG_XPAD 10
#define FG_YPAD_TOP (FG_FONT_SIZE * 5)  /* title and totals */
#define FG_YPAD_BOTTOM 10

/* Text of a valid display string (fg_write_name output), XML-escaped. */
static void xml_escaped(FILE *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (p[i]) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default: fputc(p[i], out);
		}
	}
}

/* Any string (title, file name) shown in the SVG: display escapes, then XML. */
static int xml_text(FILE *out, struct tm_str s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return -1;
	fg_write_name(m, s, FG_NAME_DISPLAY);
	if (ferror(m) | fclose(m)) {
		free(buf);
		return -1;
	}
	xml_escaped(out, buf, len);
	free(buf);
	return 0;
}

/* The file name hashed (FNV-1a) into two fractions for the palette. */
static void name_color(struct tm_str name, char buf[32])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	double v1, v2;

	for (uint32_t i = 0; i < name.len; i++)
		h = (h ^ (unsigned char)name.data[i]) * 0x100000001b3ULL;
	v1 = (double)(h & 0xffff) / 65535.0;
	v2 = (double)((h >> 16) & 0xffff) / 65535.0;
	/* flamegraph.pl --colors mem */
	snprintf(buf, 32, "rgb(0,%d,%d)", 190 + (int)(50 * v2), (int)(210 * v1));
}

struct svg_ctx {
	FILE *out;
	const struct fg_profile *p;
	const struct fg_svg_opts *o;
	unsigned width;
	double minwidth;
	double px_per_unit;
	uint64_t total;
	unsigned height;
	uint32_t max_depth;
	uint64_t omitted;
	bool measure;                   /* first pass: depth and omitted frames only */
};

/* Number of code points of a valid UTF-8 string. */
static size_t utf8_chars(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)p[i] & 0xc0) != 0x80;
	return n;
}

/* flamegraph.pl's label: the name when it fits, else ".." and as much of its
 * end as fits, nothing when fewer than 3 characters fit. */
static void write_label(FILE *out, const char *name, size_t len, double width_px)
{
	size_t fits = (size_t)(width_px / (FG_FONT_SIZE * FG_FONT_WIDTH));
	size_t chars = utf8_chars(name, len), skip;
	size_t i = 0;

	if (fits < 3)
		return;
	if (chars <= fits) {
		xml_escaped(out, name, len);
		return;
	}
	skip = chars - (fits - 2);
	while (skip) {
		i++;
		while (i < len && ((unsigned char)name[i] & 0xc0) == 0x80)
			i++;
		skip--;
	}
	fputs("..", out);
	xml_escaped(out, name + i, len - i);
}

static void write_weight(FILE *out, const struct svg_ctx *c, uint64_t weight)
{
	char b[TM_SIZE_BUF];

	if (c->o->counts)
		fprintf(out, "%" PRIu64 " trace%s", weight, weight == 1 ? "" : "s");
	else
		fputs(tm_format_size_u(b, weight, false), out);
	fprintf(out, ", %.2f%%", c->total ? 100.0 * (double)weight / (double)c->total : 0.0);
}

/* One frame: depth 0 is the root "all"; frame = TM_ID_NONE for it. */
static int draw_frame(struct svg_ctx *c, tm_id frame, uint32_t depth, uint64_t start, uint64_t end)
{
	const struct tm_snapshot *s = c->p->s;
	double x1 = FG_XPAD + (double)start * c->px_per_unit;
	double w = (double)(end - start) * c->px_per_unit;
	double y1, y2;
	char color[32], *name = NULL;
	size_t len = 0;
	FILE *out = c->out;

	if (w < c->minwidth) {
		c->omitted += c->measure;
		return 0;
	}
	if (c->measure) {
		if (depth > c->max_depth)
			c->max_depth = depth;
		return 0;
	}
	if (c->o->inverted) {
		y1 = FG_YPAD_TOP + (double)depth * FG_FRAME_HEIGHT;
		y2 = y1 + FG_FRAME_HEIGHT - FG_FRAME_PAD;
	} else {
		y2 = (double)c->height - FG_YPAD_BOTTOM - (double)depth * FG_FRAME_HEIGHT;
		y1 = y2 - FG_FRAME_HEIGHT + FG_FRAME_PAD;
	}
	if (frame == TM_ID_NONE) {
		name = strdup("all");
		len = 3;
		snprintf(color, sizeof(color), "rgb(180,180,180)");
		if (!name)
			return -1;
	} else {
		FILE *m = open_memstream(&name, &len);

		if (!m)
			return -1;
		write_frame(m, s, frame, FG_NAME_DISPLAY);
		if (ferror(m) | fclose(m)) {
			free(name);
			return -1;
		}
		name_color(tm_string(s, s->frames[frame].filename), color);
	}
	fputs("<g class=\"f\"><title>", out);
	xml_escaped(out, name, len);
	fputs(" (", out);
	write_weight(out, c, end - start);
	fprintf(out, ")</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
		"fill=\"%s\" rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
		x1, y1, w, y2 - y1, color, x1 + 3, 3 + (y1 + y2) / 2);
	write_label(out, name, len, w);
	fputs("</text></g>\n", out);
	free(name);
	return 0;
}

/* flamegraph.pl's flow() over the sorted stacks: open[d] is the frame at
 * depth d + 1 of the previous stack, started at start[d]. */
static int walk(struct svg_ctx *c)
{
	const struct tm_snapshot *s = c->p->s;
	uint32_t depth = 0, cap = 0;
	tm_id *open = NULL;
	uint64_t *start = NULL, t = 0;
	int ret = -1;

	if (draw_frame(c, TM_ID_NONE, 0, 0, c->total))
		return -1;
	for (size_t i = 0; i <= c->p->nstacks; i++) {
		const struct fg_stack *st = i < c->p->nstacks ? &c->p->stacks[i] : NULL;
		uint32_t n = st ? s->tracebacks[st->traceback].nframe : 0, same = 0;
		const tm_id *frames = st ? tm_traceback_frames(s, st->traceback) : NULL;

		/* frames oldest first: frames[n - 1 - d] at depth d + 1 */
		while (same < depth && same < n && open[same] == frames[n - 1 - same])
			same++;
		while (depth > same) {
			depth--;
			if (draw_frame(c, open[depth], depth + 1, start[depth], t))
				goto out;
		}
		if (!st)
			break;
		if (n > cap) {
			tm_id *no = realloc(open, n * sizeof(*no));
			uint64_t *ns;

			if (no)
				open = no;
			ns = realloc(start, n * sizeof(*ns));
			if (ns)
				start = ns;
			if (!no || !ns)
				goto out;
			cap = n;
		}
		for (; depth < n; depth++) {
			open[depth] = frames[n - 1 - depth];
			start[depth] = t;
		}
		t += c->o->counts ? st->count : st->size;
	}
	ret = 0;
out:
	free(open);
	free(start);
	return ret;
}

int fg_write_svg(FILE *out, const struct fg_profile *p, const struct fg_svg_opts *o,
		 struct tm_error *err)
{
	struct svg_ctx c = {
		.out = out,
		.p = p,
		.o = o,
		.width = o->width ? o->width : FG_WIDTH,
		.minwidth = o->minwidth > 0 ? o->minwidth : FG_MIN_WIDTH,
		.total = o->counts ? p->total_count : p->total_size,
	};
	const char *title = o->title ? o->title :
			    o->inverted ? "Memory Icicle Graph" : "Memory Flame Graph";
	char b[TM_SIZE_BUF];

	c.px_per_unit = c.total ? (double)(c.width - 2 * FG_XPAD) / (double)c.total : 0;
	c.measure = true;
	if (c.total && walk(&c))
		goto oom;
	c.measure = false;
	c.height = (c.total ? (c.max_depth + 1) * FG_FRAME_HEIGHT : 2 * FG_FONT_SIZE) +
		   FG_YPAD_TOP + FG_YPAD_BOTTOM;

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n", out);
	fprintf(out, "<svg version=\"1.1\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n", c.width, c.height, c.width, c.height);
	fputs("<!-- tmbpf flamegraph: widths proportional to ", out);
	fputs(o->counts ? "the number of traces" : "bytes", out);
	fprintf(out, "; frames narrower than %g px are not drawn (%" PRIu64 " here) -->\n",
		c.minwidth, c.omitted);
	fputs("<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
	      "<stop stop-color=\"#eeeeee\" offset=\"5%\"/>"
	      "<stop stop-color=\"#e0e0ff\" offset=\"95%\"/></linearGradient></defs>\n", out);
	fprintf(out, "<style type=\"text/css\">text { font-family: Verdana, sans-serif; "
		"font-size: %dpx; fill: rgb(0,0,0); } "
		".f:hover { stroke: black; stroke-width: 0.5; cursor: pointer; }</style>\n",
		FG_FONT_SIZE);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"url(#background)\"/>\n",
		c.width, c.height);
	fprintf(out, "<text id=\"title\" x=\"%u\" y=\"%d\" text-anchor=\"middle\" "
		"style=\"font-size: %dpx\">", c.width / 2, FG_FONT_SIZE * 2, FG_FONT_SIZE + 5);
	if (xml_text(out, (struct tm_str){ title, (uint32_t)strlen(title) }))
		goto oom;
	fputs("</text>\n", out);
	fprintf(out, "<text id=\"total\" x=\"%u\" y=\"%d\" text-anchor=\"middle\">Total: %s in %"
		PRIu64 " trace%s", c.width / 2, FG_FONT_SIZE * 3 + 4,
		tm_format_size_u(b, p->total_size, false), p->total_count,
		p->total_count == 1 ? "" : "s");
	if (o->counts)
		fputs("; widths are numbers of traces", out);
	fputs("</text>\n", out);
	if (o->subtitle) {
		fprintf(out, "<text id=\"subtitle\" x=\"%u\" y=\"%d\" text-anchor=\"middle\" "
			"style=\"fill: rgb(100,100,100)\">", c.width / 2, FG_FONT_SIZE * 4 + 6);
		if (xml_text(out, (struct tm_str){ o->subtitle, (uint32_t)strlen(o->subtitle) }))
			goto oom;
		fputs("</text>\n", out);
	}
	fputs("<g id=\"frames\">\n", out);
	if (c.total) {
		if (walk(&c))
			goto oom;
	} else {
		fprintf(out, "<text id=\"empty\" x=\"%u\" y=\"%d\" text-anchor=\"middle\">"
			"Nothing to draw: no %s</text>\n", c.width / 2, FG_YPAD_TOP + FG_FONT_SIZE,
			p->total_count ? "bytes" : "traces");
	}
	fputs("</g>\n</svg>\n", out);
	return 0;
oom:
	tm_error_set(err, "out of memory");
	return -1;
}
