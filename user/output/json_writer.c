// SPDX-License-Identifier: MIT
/*
 * The JSON writer (see json_writer.h for the exact output rules).
 *
 * State is one flag per writer rather than a stack: whether the container being
 * written already holds an element (so the next one needs a separator), and
 * whether a member name was just written (so its value needs none). Opening a
 * container resets the flag; closing one sets it again for the parent, which by
 * then necessarily holds that container as an element.
 */
#include "output/json_writer.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct json_writer {
	FILE *out;
	unsigned depth;
	bool pretty;
	bool has_elem;          /* the open container already holds an element */
	bool after_name;        /* a member name was written; its value is next */
};

json_writer_t *jsonw_new(FILE *out)
{
	json_writer_t *self = calloc(1, sizeof(*self));

	if (self)
		self->out = out;
	return self;
}

void jsonw_destroy(json_writer_t **self_p)
{
	json_writer_t *self = *self_p;

	if (!self)
		return;
	fputc('\n', self->out);
	free(self);
	*self_p = NULL;
}

void jsonw_pretty(json_writer_t *self, bool on)
{
	self->pretty = on;
}

static void newline_indent(json_writer_t *self)
{
	fputc('\n', self->out);
	for (unsigned i = 0; i < self->depth; i++)
		fputs("    ", self->out);
}

/* Whatever must precede a new element of the open container. */
static void begin_elem(json_writer_t *self)
{
	if (self->after_name) {
		self->after_name = false;
		return;
	}
	if (self->has_elem)
		fputs(self->pretty ? "," : ", ", self->out);
	if (self->pretty && self->depth > 0)
		newline_indent(self);
}

static void end_elem(json_writer_t *self)
{
	self->has_elem = true;
}

static void open_container(json_writer_t *self, char c)
{
	begin_elem(self);
	fputc(c, self->out);
	self->depth++;
	self->has_elem = false;
}

static void close_container(json_writer_t *self, char c)
{
	bool empty = !self->has_elem;

	if (self->depth > 0)
		self->depth--;
	/* json.dumps(indent=4) writes an empty container as [] / {} */
	if (self->pretty && !empty)
		newline_indent(self);
	fputc(c, self->out);
	end_elem(self);
}

void jsonw_start_object(json_writer_t *self)
{
	open_container(self, '{');
}

void jsonw_end_object(json_writer_t *self)
{
	close_container(self, '}');
}

void jsonw_start_array(json_writer_t *self)
{
	open_container(self, '[');
}

void jsonw_end_array(json_writer_t *self)
{
	close_container(self, ']');
}

static void put_u_escape(FILE *out, uint32_t unit)
{
	fprintf(out, "\\u%04x", unit);
}

static void put_code_point(FILE *out, uint32_t cp)
{
	if (cp < 0x10000) {
		put_u_escape(out, cp);
	} else {
		cp -= 0x10000;
		put_u_escape(out, 0xd800 + (cp >> 10));
		put_u_escape(out, 0xdc00 + (cp & 0x3ff));
	}
}

static bool is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/*
 * Decodes one multi-byte UTF-8 sequence at p (p[0] >= 0x80) as Python's
 * 'surrogatepass' decoder does: overlong forms and code points above U+10FFFF
 * are invalid, UTF-16 surrogates (ED A0..BF xx) are accepted. Returns the
 * sequence length and sets *cp, or 0 when p[0] does not start a valid one.
 */
static size_t decode_utf8(const unsigned char *p, size_t avail, uint32_t *cp)
{
	unsigned char c = p[0];

	if (c >= 0xc2 && c <= 0xdf) {
		if (avail < 2 || !is_cont(p[1]))
			return 0;
		*cp = ((uint32_t)(c & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (avail < 3 || !is_cont(p[1]) || !is_cont(p[2]))
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)         /* overlong */
			return 0;
		*cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
		      (p[2] & 0x3f);
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (avail < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3]))
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;                      /* overlong, or above U+10FFFF */
		*cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
		      ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		return 4;
	}
	return 0;
}

static void put_string(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', out);
	while (i < len) {
		unsigned char c = p[i];
		size_t run = i;

		/* copy runs of printable ASCII (' ' to '~', as json.dumps) in one call */
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > i) {
			fwrite(p + i, 1, run - i, out);
			i = run;
			continue;
		}
		switch (c) {
		case '"':  fputs("\\\"", out); i++; continue;
		case '\\': fputs("\\\\", out); i++; continue;
		case '\b': fputs("\\b", out); i++; continue;
		case '\f': fputs("\\f", out); i++; continue;
		case '\n': fputs("\\n", out); i++; continue;
		case '\r': fputs("\\r", out); i++; continue;
		case '\t': fputs("\\t", out); i++; continue;
		}
		if (c < 0x20 || c == 0x7f) {
			put_u_escape(out, c);
			i++;
			continue;
		}
		uint32_t cp;
		size_t n = decode_utf8(p + i, len - i, &cp);

		if (n) {
			put_code_point(out, cp);
			i += n;
		} else {
			put_u_escape(out, 0xdc00 + c);        /* surrogateescape */
			i++;
		}
	}
	fputc('"', out);
}

void jsonw_name(json_writer_t *self, const char *name)
{
	begin_elem(self);
	put_string(self->out, name, strlen(name));
	fputs(": ", self->out);
	self->after_name = true;
}

void jsonw_string_len(json_writer_t *self, const char *value, size_t len)
{
	begin_elem(self);
	put_string(self->out, value, len);
	end_elem(self);
}

void jsonw_string(json_writer_t *self, const char *value)
{
	jsonw_string_len(self, value, strlen(value));
}

void jsonw_uint(json_writer_t *self, uint64_t value)
{
	begin_elem(self);
	fprintf(self->out, "%" PRIu64, value);
	end_elem(self);
}

void jsonw_int(json_writer_t *self, int64_t value)
{
	begin_elem(self);
	fprintf(self->out, "%" PRId64, value);
	end_elem(self);
}

void jsonw_float(json_writer_t *self, double value)
{
	char buf[40];

	begin_elem(self);
	if (!isfinite(value)) {
		fputs("null", self->out);
		end_elem(self);
		return;
	}
	/* shortest precision that reads back exactly, like Python's repr() */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, value);
		if (strtod(buf, NULL) == value)
			break;
	}
	fputs(buf, self->out);
	/* keep it a float for the reader: 2 -> 2.0 */
	if (!strpbrk(buf, ".e"))
		fputs(".0", self->out);
	end_elem(self);
}

void jsonw_bool(json_writer_t *self, bool value)
{
	begin_elem(self);
	fputs(value ? "true" : "false", self->out);
	end_elem(self);
}

void jsonw_null(json_writer_t *self)
{
	begin_elem(self);
	fputs("null", self->out);
	end_elem(self);
}

void jsonw_string_field(json_writer_t *self, const char *name, const char *value)
{
	jsonw_name(self, name);
	jsonw_string(self, value);
}

void jsonw_string_len_field(json_writer_t *self, const char *name, const char *value,
			    size_t len)
{
	jsonw_name(self, name);
	jsonw_string_len(self, value, len);
}

void jsonw_uint_field(json_writer_t *self, const char *name, uint64_t value)
{
	jsonw_name(self, name);
	jsonw_uint(self, value);
}

void jsonw_int_field(json_writer_t *self, const char *name, int64_t value)
{
	jsonw_name(self, name);
	jsonw_int(self, value);
}

void jsonw_float_field(json_writer_t *self, const char *name, double value)
{
	jsonw_name(self, name);
	jsonw_float(self, value);
}

void jsonw_bool_field(json_writer_t *self, const char *name, bool value)
{
	jsonw_name(self, name);
	jsonw_bool(self, value);
}

void jsonw_null_field(json_writer_t *self, const char *name)
{
	jsonw_name(self, name);
	jsonw_null(self);
}
