/* SPDX-License-Identifier: MIT */
/*
 * The one JSON writer of tmbpf, in the spirit of bpftool's json_writer: a small
 * streaming API that places the commas itself, so display code only says what
 * comes next (start_object, name, value, end_object...).
 *
 * The bytes are those of Python's json.dumps(obj) with its defaults
 * (ensure_ascii=True, separators ", " and ": "), or of json.dumps(obj, indent=4)
 * in pretty mode, so a test can compare our output with CPython's text:
 *   - strings are UTF-8 as tmbpf stores them (Python's 'surrogatepass'
 *     encoding); every non-ASCII code point is written as \uXXXX (lower-case
 *     hex, a surrogate pair above U+FFFF), lone surrogates included (\udcXX);
 *   - a byte that is not part of valid UTF-8 is written as \udcXX, the code
 *     point Python's 'surrogateescape' gives it, so the output is always valid
 *     JSON whatever the input holds;
 *   - '"', '\\', the control characters and DEL are escaped (\n, \t... or
 *     \u00XX), NUL included: strings are passed with their length;
 *   - floats are the exception: the shortest text that reads back as the same
 *     double, not always Python's repr() (1e+15 for 1000000000000000.0).
 * jsonw_destroy() ends the document with one newline.
 */
#ifndef TMBPF_JSON_WRITER_H
#define TMBPF_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct json_writer json_writer_t;

/* NULL on allocation failure. The writer does not own `out`. */
json_writer_t *jsonw_new(FILE *out);
/* Writes the final newline, frees the writer and sets *self_p to NULL. */
void jsonw_destroy(json_writer_t **self_p);
/* Pretty mode: one member per line, indented by 4 (json.dumps(indent=4)). */
void jsonw_pretty(json_writer_t *self, bool on);

void jsonw_start_object(json_writer_t *self);
void jsonw_end_object(json_writer_t *self);
void jsonw_start_array(json_writer_t *self);
void jsonw_end_array(json_writer_t *self);

/* An object member's name; its value is the next thing written. */
void jsonw_name(json_writer_t *self, const char *name);

void jsonw_string(json_writer_t *self, const char *value);
void jsonw_string_len(json_writer_t *self, const char *value, size_t len);
void jsonw_uint(json_writer_t *self, uint64_t value);
void jsonw_int(json_writer_t *self, int64_t value);
/* The shortest form that reads back as the same double; JSON has no NaN or
 * infinity, so those are written as null. */
void jsonw_float(json_writer_t *self, double value);
void jsonw_bool(json_writer_t *self, bool value);
void jsonw_null(json_writer_t *self);

/* name + value in one call */
void jsonw_string_field(json_writer_t *self, const char *name, const char *value);
void jsonw_string_len_field(json_writer_t *self, const char *name, const char *value,
			    size_t len);
void jsonw_uint_field(json_writer_t *self, const char *name, uint64_t value);
void jsonw_int_field(json_writer_t *self, const char *name, int64_t value);
void jsonw_float_field(json_writer_t *self, const char *name, double value);
void jsonw_bool_field(json_writer_t *self, const char *name, bool value);
void jsonw_null_field(json_writer_t *self, const char *name);

#endif /* TMBPF_JSON_WRITER_H */
