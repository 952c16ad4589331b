// SPDX-License-Identifier: MIT
/*
 * The JSON writer, checked by CPython's json module (tests/py/cli_json_check.py):
 * every document must be exactly what json.dumps() writes for the same value
 * and parse back with json.loads().
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "cli_util.h"
#include "output/json_writer.h"

#define CHECK_SCRIPT "tests/py/cli_json_check.py"

static char *dir;

static void setup(void)
{
	dir = cli_mkdtemp("json");
}

static void teardown(void)
{
	cli_rmtree(dir);
	dir = NULL;
}

TestSuite(json, .init = setup, .fini = teardown);

/* ---- strings ------------------------------------------------------------- */

struct strings_file {
	FILE *f;
	unsigned n;
};

/* Appends one record "HEX<TAB>document" for the raw bytes s[0..len). */
static void add_string(struct strings_file *sf, const char *s, size_t len)
{
	char *doc = NULL;
	size_t doclen = 0;
	FILE *mem = open_memstream(&doc, &doclen);
	json_writer_t *w;

	cr_assert(mem);
	w = jsonw_new(mem);
	cr_assert(w);
	jsonw_string_len(w, s, len);
	jsonw_destroy(&w);
	cr_assert_null(w);
	fclose(mem);

	/* the document is one line: the string, then exactly one newline */
	cr_assert(doclen >= 3 && doc[doclen - 1] == '\n', "bad document for record %u", sf->n);
	cr_assert_null(memchr(doc, '\n', doclen - 1), "raw newline inside record %u", sf->n);
	for (size_t i = 0; i < len; i++)
		fprintf(sf->f, "%02x", (unsigned char)s[i]);
	fputc('\t', sf->f);
	fwrite(doc, 1, doclen, sf->f);
	free(doc);
	sf->n++;
}

#define ADD_LIT(sf, lit) add_string(sf, lit, sizeof(lit) - 1)

static void check_strings_file(const char *path, unsigned expected)
{
	struct cli_run r;
	char want[64];

	cli_run(dir, &r, CLI_PYTHON, "-E", "-s", CHECK_SCRIPT, "strings", path, NULL);
	snprintf(want, sizeof(want), "OK %u strings\n", expected);
	cr_assert_eq(r.status, 0, "python says: %s%s", r.out, r.err);
	cr_assert_str_eq(r.out, want);
	cli_run_free(&r);
}

Test(json, escapes_match_python)
{
	const char *path = cli_path(dir, "strings.txt");
	struct strings_file sf = { fopen(path, "wb"), 0 };
	char all_ctrl[34];

	cr_assert(sf.f);
	ADD_LIT(&sf, "");
	ADD_LIT(&sf, "/usr/lib/python3.11/json/__init__.py");
	ADD_LIT(&sf, "quote \" backslash \\ slash / end");
	ADD_LIT(&sf, "\b\f\n\r\t");
	for (int c = 0; c < 0x20; c++)
		all_ctrl[c] = (char)c;
	all_ctrl[0x20] = 0x7f;                          /* DEL: \u007f, as json.dumps */
	all_ctrl[0x21] = ' ';
	add_string(&sf, all_ctrl, sizeof(all_ctrl));
	ADD_LIT(&sf, "NUL\0inside\0");                  /* strings carry their length */
	ADD_LIT(&sf, "\0");
	ADD_LIT(&sf, "caf\xc3\xa9 \xc3\xbc\xc3\x9f");    /* 2-byte sequences */
	ADD_LIT(&sf, "\xe4\xb8\xad\xe6\x96\x87/\xe2\x82\xac"); /* 3-byte */
	ADD_LIT(&sf, "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");     /* 4-byte: pairs */
	ADD_LIT(&sf, "\xef\xbf\xbf\xc2\x80\xdf\xbf");   /* U+FFFF, U+0080, U+07FF */
	/* lone surrogates, as Python's 'surrogatepass' encodes them */
	ADD_LIT(&sf, "file\xed\xb3\xbf.py");            /* U+DCFF (an fsdecoded 0xff) */
	ADD_LIT(&sf, "\xed\xb2\x80");                    /* U+DC80 */
	ADD_LIT(&sf, "\xed\xa0\x80x");                   /* U+D800 */
	ADD_LIT(&sf, "\xed\xaf\xbf\xed\xbf\xbf");        /* U+DBFF U+DFFF */
	/* bytes that are no valid UTF-8 come out as \udcXX */
	ADD_LIT(&sf, "\xff\xfe");
	ADD_LIT(&sf, "trunc\xc3");
	ADD_LIT(&sf, "trunc\xe4\xb8");
	ADD_LIT(&sf, "\xc0\xaf\xc1\xbf");                /* overlong 2-byte */
	ADD_LIT(&sf, "\xe0\x80\xaf");                    /* overlong 3-byte */
	ADD_LIT(&sf, "\xf0\x80\x80\xaf");                /* overlong 4-byte */
	ADD_LIT(&sf, "\xf4\x90\x80\x80");                /* above U+10FFFF */
	ADD_LIT(&sf, "\xf8\x88\x80\x80\x80");            /* 5-byte form */
	ADD_LIT(&sf, "\x80\xbf cont");                   /* stray continuation bytes */
	ADD_LIT(&sf, "\xed\xa0");                        /* truncated surrogate */
	ADD_LIT(&sf, "\xe4\x41\x42");                    /* lead then ASCII */
	cr_assert_eq(fclose(sf.f), 0);
	check_strings_file(path, sf.n);
}

/* Random byte strings (seeded) biased towards the interesting bytes. */
Test(json, random_strings_match_python)
{
	static const unsigned char pool[] = {
		0x00, 0x01, 0x09, 0x0a, 0x1f, 0x20, '"', '\\', '/', 'a', 0x7f, 0x80, 0xbf,
		0xc0, 0xc2, 0xc3, 0xdf, 0xe0, 0xe4, 0xed, 0xa0, 0xb3, 0xef, 0xf0, 0xf4,
		0x90, 0x8f, 0xf5, 0xff,
	};
	const char *path = cli_path(dir, "random.txt");
	struct strings_file sf = { fopen(path, "wb"), 0 };
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char buf[40];

	cr_assert(sf.f);
	for (int i = 0; i < 3000; i++) {
		size_t len;

		x ^= x << 13; x ^= x >> 7; x ^= x << 17;       /* xorshift64 */
		len = x % sizeof(buf);
		for (size_t k = 0; k < len; k++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			buf[k] = (x & 1) ? (char)pool[(x >> 8) % sizeof(pool)] : (char)(x >> 16);
		}
		add_string(&sf, buf, len);
	}
	cr_assert_eq(fclose(sf.f), 0);
	check_strings_file(path, sf.n);
}

/* ---- documents ----------------------------------------------------------- */

typedef void (*doc_fn)(json_writer_t *w);

static void check_doc(doc_fn build, bool pretty, const char *py_expr)
{
	const char *json_path = cli_path(dir, "doc.json");
	const char *expr_path = cli_path(dir, "doc.py");
	FILE *f = fopen(json_path, "wb");
	json_writer_t *w;
	struct cli_run r;

	cr_assert(f);
	w = jsonw_new(f);
	cr_assert(w);
	jsonw_pretty(w, pretty);
	build(w);
	jsonw_destroy(&w);
	cr_assert_eq(fclose(f), 0);
	cli_write_file(expr_path, py_expr, strlen(py_expr));
	if (pretty)
		cli_run(dir, &r, CLI_PYTHON, "-E", "-s", CHECK_SCRIPT, "doc", json_path, expr_path,
			"--indent", "4", NULL);
	else
		cli_run(dir, &r, CLI_PYTHON, "-E", "-s", CHECK_SCRIPT, "doc", json_path, expr_path,
			NULL);
	cr_assert_eq(r.status, 0, "python says: %s%s", r.out, r.err);
	cr_assert_str_eq(r.out, "OK\n");
	cli_run_free(&r);
}

static void build_nested(json_writer_t *w)
{
	jsonw_start_object(w);
	jsonw_string_field(w, "key_type", "lineno");
	jsonw_bool_field(w, "cumulative", false);
	jsonw_bool_field(w, "t", true);
	jsonw_null_field(w, "none");
	jsonw_name(w, "empty_list");
	jsonw_start_array(w);
	jsonw_end_array(w);
	jsonw_name(w, "empty_obj");
	jsonw_start_object(w);
	jsonw_end_object(w);
	jsonw_name(w, "statistics");
	jsonw_start_array(w);
	for (int i = 0; i < 3; i++) {
		jsonw_start_object(w);
		jsonw_name(w, "traceback");
		jsonw_start_array(w);
		for (int k = 0; k <= i; k++) {
			jsonw_start_object(w);
			jsonw_string_field(w, "filename", k ? "b\"\\.py" : "a.py");
			jsonw_uint_field(w, "lineno", (uint64_t)(k + 1) * 10);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		jsonw_uint_field(w, "size", UINT64_MAX - (uint64_t)i);
		jsonw_int_field(w, "size_diff", i == 0 ? INT64_MIN : -(int64_t)i);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_name(w, "nested");
	jsonw_start_array(w);
	jsonw_start_array(w);
	jsonw_uint(w, 0);
	jsonw_start_array(w);
	jsonw_end_array(w);
	jsonw_end_array(w);
	jsonw_string(w, "");
	jsonw_int(w, INT64_MAX);
	jsonw_end_array(w);
	jsonw_end_object(w);
}

static const char nested_expr[] =
	"{'key_type': 'lineno', 'cumulative': False, 't': True, 'none': None, "
	"'empty_list': [], 'empty_obj': {}, 'statistics': ["
	"{'traceback': [{'filename': 'a.py', 'lineno': 10}], "
	" 'size': 18446744073709551615, 'size_diff': -9223372036854775808}, "
	"{'traceback': [{'filename': 'a.py', 'lineno': 10}, {'filename': 'b\"\\\\.py', 'lineno': 20}], "
	" 'size': 18446744073709551614, 'size_diff': -1}, "
	"{'traceback': [{'filename': 'a.py', 'lineno': 10}, {'filename': 'b\"\\\\.py', 'lineno': 20}, "
	"  {'filename': 'b\"\\\\.py', 'lineno': 30}], "
	" 'size': 18446744073709551613, 'size_diff': -2}], "
	"'nested': [[0, []], '', 9223372036854775807]}";

Test(json, nested_document_is_json_dumps)
{
	check_doc(build_nested, false, nested_expr);
}

Test(json, pretty_document_is_json_dumps_indent_4)
{
	check_doc(build_nested, true, nested_expr);
}

static void build_scalars(json_writer_t *w)
{
	jsonw_start_array(w);
	jsonw_uint(w, 0);
	jsonw_int(w, -1);
	jsonw_string(w, "x");
	jsonw_end_array(w);
}

Test(json, top_level_array)
{
	check_doc(build_scalars, false, "[0, -1, 'x']");
	check_doc(build_scalars, true, "[0, -1, 'x']");
}

static void build_empty_object(json_writer_t *w)
{
	jsonw_start_object(w);
	jsonw_end_object(w);
}

Test(json, empty_top_level_object)
{
	check_doc(build_empty_object, false, "{}");
	check_doc(build_empty_object, true, "{}");
}

static const double float_values[] = { 0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 1e300, 5e-324, 100.0,
				       123456789.125, DBL_MAX };

static void build_floats(json_writer_t *w)
{
	jsonw_start_array(w);
	for (size_t i = 0; i < sizeof(float_values) / sizeof(float_values[0]); i++)
		jsonw_float(w, float_values[i]);
	jsonw_end_array(w);
}

/* Floats keep their exact value; the text need not be Python's repr. */
Test(json, floats_read_back_exactly)
{
	const char *json_path = cli_path(dir, "floats.json");
	const char *py = "import json,sys; v = json.load(open(sys.argv[1])); "
			 "w = [0.0, 1.0, -2.5, 0.1, 1.0/3.0, 1e300, 5e-324, 100.0, "
			 "123456789.125, 1.7976931348623157e308]; "
			 "assert v == w and all(type(x) is float for x in v), v; print('OK')";
	FILE *f = fopen(json_path, "wb");
	json_writer_t *w;
	struct cli_run r;

	cr_assert(f);
	w = jsonw_new(f);
	build_floats(w);
	jsonw_destroy(&w);
	cr_assert_eq(fclose(f), 0);
	cli_run(dir, &r, CLI_PYTHON, "-E", "-s", "-c", py, json_path, NULL);
	cr_assert_eq(r.status, 0, "python says: %s%s", r.out, r.err);
	cr_assert_str_eq(r.out, "OK\n");
	cli_run_free(&r);
}

static void build_nonfinite(json_writer_t *w)
{
	jsonw_start_array(w);
	jsonw_float(w, INFINITY);
	jsonw_float(w, -INFINITY);
	jsonw_float(w, NAN);
	jsonw_end_array(w);
}

/* JSON has no infinity or NaN (Python would write Infinity/NaN, which strict
 * parsers refuse): the writer writes null. */
Test(json, nonfinite_floats_are_null)
{
	check_doc(build_nonfinite, false, "[None, None, None]");
}
