// SPDX-License-Identifier: MIT
/*
 * Text forms of tracemalloc objects, byte for byte as Lib/tracemalloc.py
 * prints them (3.8 to 3.13 print the same), and the part of linecache that
 * Traceback.format() uses.
 */
#include "snapshot/format.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- sizes -------------------------------------------------------------- */

/*
 * tracemalloc._format_size(). Python's "%.1f"/"%.0f" are correctly rounded
 * (ties of exact binary halves to even), and so is glibc's printf: the bytes
 * match (checked on 48,613 values, reference C.8).
 *
 * An integer size goes through the same loop as a float: below 10 KiB "%.0f"
 * prints the integer exactly, and from there on Python divides with true
 * division, int / 1024, which is the correctly rounded quotient -- the same
 * double as (double)size / 1024, because dividing by a power of two commutes
 * with rounding to 53 bits. So one double code path is exact for both.
 */
const char *tm_format_size_f(char buf[TM_SIZE_BUF], double size, bool sign)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u;

	for (u = 0;; u++) {
		if (fabs(size) < 100 && u != 0) {
			snprintf(buf, TM_SIZE_BUF, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
			return buf;
		}
		if (fabs(size) < 10 * 1024 || u == 4) {
			snprintf(buf, TM_SIZE_BUF, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
			return buf;
		}
		size /= 1024;
	}
}

const char *tm_format_size(char buf[TM_SIZE_BUF], int64_t size, bool sign)
{
	return tm_format_size_f(buf, (double)size, sign);
}

const char *tm_format_size_u(char buf[TM_SIZE_BUF], uint64_t size, bool sign)
{
	return tm_format_size_f(buf, (double)size, sign);
}

/*
 * Python's int / int: the exact quotient rounded once to a double. When both
 * operands have at most 53 bits, IEEE division of their exact doubles is that.
 * Otherwise divide a 128-bit scaled numerator and let the conversion round,
 * with the remainder folded into a sticky bit so ties break correctly.
 */
static double py_true_divide(uint64_t a, uint64_t b)
{
	unsigned __int128 num, q;
	int shift;

	if (a < (1ULL << 53) && b < (1ULL << 53))
		return (double)a / (double)b;
	if (a == 0)
		return 0.0;
	shift = 64 + __builtin_clzll(a);        /* msb of a << shift is bit 127 */
	num = (unsigned __int128)a << shift;
	q = num / b;                            /* >= 2^63: 64+ significant bits */
	if (num % b)
		q |= 1;
	return ldexp((double)q, -shift);
}

/* ---- printing Python strings ------------------------------------------- */

/*
 * Our strings are UTF-8 with 'surrogatepass'. Python writes str to a UTF-8
 * stdout with 'surrogateescape', which turns U+DC80..U+DCFF back into the
 * bytes 0x80..0xFF they came from (undecodable bytes of a file name). Other
 * lone surrogates make Python raise UnicodeEncodeError; we print them as
 * Python's backslashreplace would ("\udXXX") rather than fail.
 */
void tm_fputs_pystr(FILE *out, struct tm_str s)
{
	const unsigned char *p = (const unsigned char *)s.data, *end = p + s.len;
	const unsigned char *run = p;

	while (p < end) {
		unsigned cp;

		/* surrogates are ED A0..BF 80..BF */
		if (p[0] != 0xed || end - p < 3 || p[1] < 0xa0 || p[1] > 0xbf ||
		    (p[2] & 0xc0) != 0x80) {
			p++;
			continue;
		}
		fwrite(run, 1, (size_t)(p - run), out);
		cp = 0xd000u | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
		if (cp >= 0xdc80 && cp <= 0xdcff)
			fputc((int)(cp - 0xdc00), out);
		else
			fprintf(out, "\\u%04x", cp);
		p += 3;
		run = p;
	}
	fwrite(run, 1, (size_t)(p - run), out);
}

/* ---- str() of Statistic, StatisticDiff, Trace --------------------------- */

/* str(Traceback) is str of its OLDEST frame, the last one we store. */
static void print_traceback_str(FILE *out, const struct tm_stat_frame *frames, uint32_t nframe)
{
	const struct tm_stat_frame *f = &frames[nframe - 1];

	tm_fputs_pystr(out, f->filename);
	fprintf(out, ":%" PRIu32, f->lineno);
}

static void print_average(FILE *out, uint64_t size, uint64_t count)
{
	char b[TM_SIZE_BUF];

	/* "if self.count:" -- and average = size / count is a float */
	if (count)
		fprintf(out, ", average=%s", tm_format_size_f(b, py_true_divide(size, count), false));
}

void tm_print_statistic(FILE *out, const struct tm_statistic *st)
{
	char b[TM_SIZE_BUF];

	print_traceback_str(out, st->frames, st->nframe);
	fprintf(out, ": size=%s, count=%" PRIu64, tm_format_size_u(b, st->size, false), st->count);
	print_average(out, st->size, st->count);
	fputc('\n', out);
}

void tm_print_statistic_diff(FILE *out, const struct tm_statistic_diff *d)
{
	char b1[TM_SIZE_BUF], b2[TM_SIZE_BUF];

	print_traceback_str(out, d->frames, d->nframe);
	fprintf(out, ": size=%s (%s), count=%" PRIu64 " (%+" PRId64 ")",
		tm_format_size_u(b1, d->size, false), tm_format_size(b2, d->size_diff, true),
		d->count, d->count_diff);
	print_average(out, d->size, d->count);
	fputc('\n', out);
}

static struct tm_stat_frame stat_frame_of(const struct tm_snapshot *s, tm_id frame)
{
	const struct tm_frame *f = &s->frames[frame];
	struct tm_stat_frame r = { tm_string(s, f->filename), f->lineno };

	return r;
}

void tm_print_trace(FILE *out, const struct tm_snapshot *s, const struct tm_trace *t)
{
	const struct tm_traceback *tb = &s->tracebacks[t->traceback];
	struct tm_stat_frame oldest = stat_frame_of(s, tm_traceback_frames(s, t->traceback)[tb->nframe - 1]);
	char b[TM_SIZE_BUF];

	print_traceback_str(out, &oldest, 1);
	fprintf(out, ": %s\n", tm_format_size_u(b, t->size, false));
}

/* ---- linecache ---------------------------------------------------------- */

/*
 * linecache.getline(filename, lineno) as Python runs it on a file: updatecache()
 * stats the file, tokenize.open() picks the encoding (UTF-8 BOM, or a PEP 263
 * coding cookie in the first two lines, else UTF-8), decodes the WHOLE file
 * strictly (any error: no lines at all) and splits it with universal newlines
 * (\r\n, \r and \n). Traceback.format() then strips the line with str.strip().
 *
 * Supported encodings: UTF-8 (with or without BOM), ISO-8859-1/latin-1 and ASCII
 * under every name Python's codec registry gives them. Other cookies that
 * Python's codecs know (cp1252, euc-jp, utf-16, ...) give no line here where
 * Python would show one. Not reproduced either: the search
 * of sys.path for relative names and PEP 302 loaders (module_globals); files
 * over TM_LINECACHE_MAX_FILE bytes are not read.
 *
 * Like linecache, decoded files are cached for the life of the process (a
 * small round-robin cache of TM_LINECACHE_FILES files; not thread-safe);
 * missing files are looked up again each time, as Python does.
 */
#define TM_LINECACHE_FILES 32
#define TM_LINECACHE_MAX_FILE (64u << 20)

struct lc_file {
	char *path;                     /* key: the path we opened */
	char *text;                     /* decoded, UTF-8 */
	size_t *line_start;             /* nlines + 1 entries: start of line k (0-based) */
	size_t nlines;
};

static struct lc_file lc_files[TM_LINECACHE_FILES];
static unsigned lc_next;

static void lc_file_clear(struct lc_file *f)
{
	free(f->path);
	free(f->text);
	free(f->line_start);
	memset(f, 0, sizeof(*f));
}

void tm_linecache_clear(void)
{
	unsigned i;

	for (i = 0; i < TM_LINECACHE_FILES; i++)
		lc_file_clear(&lc_files[i]);
	lc_next = 0;
}

/* Length of the strictly valid UTF-8 sequence at p (Python's decoder: no
 * surrogates, no overlongs, nothing above U+10FFFF), or 0. */
static size_t utf8_valid_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_valid_len(p + i, n - i);

		if (!l)
			return false;
		i += l;
	}
	return true;
}

static bool is_name_char(unsigned char c)
{
	/* [-\w.] with re.ASCII */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

enum lc_encoding { LC_NONE, LC_UTF8, LC_LATIN1, LC_ASCII, LC_UNSUPPORTED };

/*
 * cookie_re = r'^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)' (re.ASCII) on one line
 * (bytes up to and including its '\n'); '.' does not match '\n'. Writes the
 * name into name[] (at most name_size chars: no codec we decode has a longer
 * name, and a cut name stays unknown to codec_lookup()).
 */
static bool find_cookie_name(const unsigned char *line, size_t n, char *name, size_t name_size,
			     size_t *name_len)
{
	size_t i = 0, k;

	while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f'))
		i++;
	if (i >= n || line[i] != '#')
		return false;
	/* lazy .*?: the first "coding" that the rest of the pattern accepts */
	for (k = i + 1; k + 7 <= n; k++) {
		size_t j, start;

		if (memcmp(line + k, "coding", 6) != 0 || (line[k + 6] != ':' && line[k + 6] != '='))
			continue;
		j = k + 7;
		while (j < n && (line[j] == ' ' || line[j] == '\t'))
			j++;
		start = j;
		while (j < n && is_name_char(line[j]))
			j++;
		if (j == start)
			continue;
		/* longer names than any codec we decode: keep the length only */
		*name_len = j - start;
		memcpy(name, line + start, *name_len < name_size ? *name_len : name_size);
		if (*name_len > name_size)
			*name_len = name_size;
		return true;
	}
	return false;
}

/*
 * codecs.lookup(name) for the three codecs we decode: the registry lower-cases
 * the name, encodings.normalize_encoding() turns runs of other characters than
 * letters, digits and '.' into one '_', then the module name or an alias of
 * encodings.aliases must match (as is, or with '.' as '_').
 */
static enum lc_encoding codec_lookup(const char *name, size_t len)
{
	static const struct { const char *name; enum lc_encoding e; } codecs[] = {
		{ "utf_8", LC_UTF8 }, { "utf8", LC_UTF8 }, { "u8", LC_UTF8 }, { "utf", LC_UTF8 },
		{ "utf8_ucs2", LC_UTF8 }, { "utf8_ucs4", LC_UTF8 }, { "cp65001", LC_UTF8 },
		{ "latin_1", LC_LATIN1 }, { "latin1", LC_LATIN1 }, { "latin", LC_LATIN1 },
		{ "l1", LC_LATIN1 }, { "8859", LC_LATIN1 }, { "cp819", LC_LATIN1 },
		{ "csisolatin1", LC_LATIN1 }, { "ibm819", LC_LATIN1 }, { "iso8859", LC_LATIN1 },
		{ "iso8859_1", LC_LATIN1 }, { "iso_8859_1", LC_LATIN1 },
		{ "iso_8859_1_1987", LC_LATIN1 }, { "iso_ir_100", LC_LATIN1 },
		{ "ascii", LC_ASCII }, { "646", LC_ASCII }, { "ansi_x3.4_1968", LC_ASCII },
		{ "ansi_x3.4_1986", LC_ASCII }, { "ansi_x3_4_1968", LC_ASCII }, { "cp367", LC_ASCII },
		{ "csascii", LC_ASCII }, { "ibm367", LC_ASCII }, { "iso646_us", LC_ASCII },
		{ "iso_646.irv_1991", LC_ASCII }, { "iso_ir_6", LC_ASCII }, { "us", LC_ASCII },
		{ "us_ascii", LC_ASCII },
	};
	char norm[64], dots[64];
	bool punct = false;
	size_t i, o = 0;

	if (len >= sizeof(norm))
		return LC_UNSUPPORTED;
	for (i = 0; i < len; i++) {
		char c = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] - 'A' + 'a') : name[i];
		bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';

		if (!keep) {
			punct = true;
			continue;
		}
		if (punct && o)
			norm[o++] = '_';
		norm[o++] = c;
		punct = false;
	}
	norm[o] = '\0';
	for (i = 0; i <= o; i++)
		dots[i] = norm[i] == '.' ? '_' : norm[i];
	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (!strcmp(norm, codecs[i].name) || !strcmp(dots, codecs[i].name))
			return codecs[i].e;
	return LC_UNSUPPORTED;  /* another codec, or none: no lines either way here */
}

/* tokenize._get_normal_name() (it looks at 12 characters), then the codec
 * lookup of the name it returns. *utf8_name: the normal name is "utf-8", the
 * only one that a BOM tolerates. */
static enum lc_encoding normal_encoding(const char *orig, size_t orig_len, bool *utf8_name)
{
	char enc[13];
	size_t i, n = orig_len < 12 ? orig_len : 12;

	for (i = 0; i < n; i++) {
		char c = orig[i];

		enc[i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
	}
	enc[n] = '\0';
	*utf8_name = !strcmp(enc, "utf-8") || !strncmp(enc, "utf-8-", 6);
	if (*utf8_name)
		return LC_UTF8;
	if (!strcmp(enc, "latin-1") || !strcmp(enc, "iso-8859-1") || !strcmp(enc, "iso-latin-1") ||
	    !strncmp(enc, "latin-1-", 8) || !strncmp(enc, "iso-8859-1-", 11) ||
	    !strncmp(enc, "iso-latin-1-", 12))
		return LC_LATIN1;
	return codec_lookup(orig, orig_len);
}

/* One line of tokenize's readline() (split on b'\n' only). */
static size_t bytes_line_len(const unsigned char *p, size_t n)
{
	const unsigned char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) + 1 : n;
}

/* tokenize.detect_encoding(). *skip = bytes of BOM to drop. LC_NONE = Python
 * raises SyntaxError (no lines). */
static enum lc_encoding detect_encoding(const unsigned char *data, size_t n, size_t *skip)
{
	bool bom = n >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf;
	const unsigned char *line = data + (bom ? 3 : 0);
	size_t rest = n - (bom ? 3 : 0), len, name_len;
	char name[64];
	int pass;

	*skip = bom ? 3 : 0;
	for (pass = 0; pass < 2 && rest; pass++) {
		enum lc_encoding e;

		len = bytes_line_len(line, rest);
		if (!utf8_valid(line, len))
			return LC_NONE;         /* "invalid or missing encoding declaration" */
		if (find_cookie_name(line, len, name, sizeof(name), &name_len)) {
			bool utf8_name;

			e = normal_encoding(name, name_len, &utf8_name);
			/* a BOM with any other name: "encoding problem: utf-8" */
			if (bom && !utf8_name)
				return LC_NONE;
			return e;
		}
		if (pass == 0) {
			/* blank_re = br'^[ \t\f]*(?:[#\r\n]|$)': only then look at line 2 */
			size_t i = 0;

			while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f'))
				i++;
			if (i < len && line[i] != '#' && line[i] != '\r' && line[i] != '\n')
				break;
		}
		line += len;
		rest -= len;
	}
	return LC_UTF8;
}

/* Decodes the file into UTF-8 text; NULL when Python would give no lines. */
static char *decode_source(const unsigned char *data, size_t n, size_t *out_len)
{
	size_t skip, i, o = 0;
	enum lc_encoding e = detect_encoding(data, n, &skip);
	char *text;

	if (e == LC_NONE || e == LC_UNSUPPORTED)
		return NULL;
	data += skip;
	n -= skip;
	if (e == LC_UTF8 || e == LC_ASCII) {
		if (e == LC_UTF8 && !utf8_valid(data, n))
			return NULL;
		for (i = 0; e == LC_ASCII && i < n; i++)
			if (data[i] >= 0x80)
				return NULL;
		text = malloc(n + 1);
		if (!text)
			return NULL;
		memcpy(text, data, n);
		o = n;
	} else {
		text = malloc(2 * n + 1);       /* latin-1: each byte is one code point */
		if (!text)
			return NULL;
		for (i = 0; i < n; i++) {
			if (data[i] < 0x80) {
				text[o++] = (char)data[i];
			} else {
				text[o++] = (char)(0xc0 | (data[i] >> 6));
				text[o++] = (char)(0x80 | (data[i] & 0x3f));
			}
		}
	}
	text[o] = '\0';
	*out_len = o;
	return text;
}

/* Universal newlines: a line ends after \r\n, \r or \n. */
static size_t *split_lines(const char *text, size_t n, size_t *nlines)
{
	size_t cap = 64, count = 0, i = 0;
	size_t *starts = malloc(cap * sizeof(*starts));

	if (!starts)
		return NULL;
	while (i < n) {
		if (count + 2 > cap) {
			size_t *p = realloc(starts, 2 * cap * sizeof(*starts));

			if (!p) {
				free(starts);
				return NULL;
			}
			starts = p;
			cap *= 2;
		}
		starts[count++] = i;
		while (i < n && text[i] != '\n' && text[i] != '\r')
			i++;
		if (i < n && text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')
			i++;
		if (i < n)
			i++;
	}
	starts[count] = n;
	*nlines = count;
	return starts;
}

/*
 * os.fsencode(filename) for our UTF-8/surrogatepass names: U+DC80..U+DCFF
 * become the bytes they escaped; other surrogates and NUL bytes make os.stat()
 * raise an error other than OSError: Python 3.13's linecache returns no lines,
 * older ones let Traceback.format() raise. We show no line. Returns a malloc'd
 * path under root_dir, or NULL.
 */
static char *source_path(const char *root_dir, const char *name, size_t len)
{
	size_t root_len = root_dir ? strlen(root_dir) : 0, i, o = 0;
	char *path = malloc(root_len + 1 + len + 1);

	if (!path)
		return NULL;
	if (root_dir) {
		memcpy(path, root_dir, root_len);
		o = root_len;
		if (name[0] != '/')
			path[o++] = '/';
	}
	for (i = 0; i < len; i++) {
		const unsigned char *p = (const unsigned char *)name + i;

		if (p[0] == 0)
			goto fail;
		if (p[0] == 0xed && i + 2 < len && p[1] >= 0xa0) {
			unsigned cp = 0xd000u | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);

			if (cp < 0xdc80 || cp > 0xdcff)
				goto fail;
			path[o++] = (char)(cp - 0xdc00);
			i += 2;
			continue;
		}
		path[o++] = (char)p[0];
	}
	path[o] = '\0';
	return path;
fail:
	free(path);
	return NULL;
}

static struct lc_file *lc_load(const char *path)
{
	struct lc_file *f;
	unsigned char *data = NULL;
	size_t n = 0, text_len = 0, nlines = 0;
	char *text = NULL;
	size_t *starts;
	struct stat st;
	FILE *fp;
	unsigned i;

	for (i = 0; i < TM_LINECACHE_FILES; i++)
		if (lc_files[i].path && strcmp(lc_files[i].path, path) == 0)
			return &lc_files[i];
	/* os.stat() first, then tokenize.open(): a directory stats but fails to open */
	if (stat(path, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > TM_LINECACHE_MAX_FILE)
		return NULL;
	fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	data = malloc((size_t)st.st_size + 1);
	if (data)
		n = fread(data, 1, (size_t)st.st_size + 1, fp);
	if (!data || ferror(fp) || n > (size_t)st.st_size) {
		fclose(fp);
		free(data);
		return NULL;
	}
	fclose(fp);
	text = decode_source(data, n, &text_len);
	free(data);
	if (!text)
		return NULL;
	starts = split_lines(text, text_len, &nlines);
	if (!starts) {
		free(text);
		return NULL;
	}
	f = &lc_files[lc_next];
	lc_next = (lc_next + 1) % TM_LINECACHE_FILES;
	lc_file_clear(f);
	f->path = strdup(path);
	if (!f->path) {
		free(text);
		free(starts);
		return NULL;
	}
	f->text = text;
	f->line_start = starts;
	f->nlines = nlines;
	return f;
}

/* Length of the code point at p if it is whitespace for str.strip() (see
 * Py_UNICODE_ISSPACE), else 0. */
static size_t space_len(const unsigned char *p, size_t n)
{
	unsigned cp;

	if (p[0] < 0x80)
		return (p[0] >= 0x09 && p[0] <= 0x0d) || (p[0] >= 0x1c && p[0] <= 0x20);
	if (p[0] == 0xc2 && n >= 2)
		return (p[1] == 0x85 || p[1] == 0xa0) ? 2 : 0;
	if ((p[0] == 0xe1 || p[0] == 0xe2 || p[0] == 0xe3) && n >= 3) {
		cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
		if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
		    cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
			return 3;
	}
	return 0;
}

/* getline(...).strip() as a span of the cached text; false = no such line. */
static bool linecache_span(const char *root_dir, const char *name, size_t name_len,
			   uint32_t lineno, const char **text, size_t *len)
{
	const unsigned char *p, *e;
	struct lc_file *f;
	char *path;

	/* updatecache(): '' and '<...>' names have no source */
	if (name_len == 0 || (name[0] == '<' && name[name_len - 1] == '>'))
		return false;
	path = source_path(root_dir, name, name_len);
	if (!path)
		return false;
	f = lc_load(path);
	free(path);
	if (!f || lineno < 1 || lineno > f->nlines)
		return false;
	p = (const unsigned char *)f->text + f->line_start[lineno - 1];
	e = (const unsigned char *)f->text + f->line_start[lineno];
	for (;;) {
		size_t l = p < e ? space_len(p, (size_t)(e - p)) : 0;

		if (!l)
			break;
		p += l;
	}
	while (e > p) {
		/* step back to the start of the last code point */
		const unsigned char *q = e - 1;

		while (q > p && (*q & 0xc0) == 0x80)
			q--;
		if (space_len(q, (size_t)(e - q)) != (size_t)(e - q))
			break;
		e = q;
	}
	*text = (const char *)p;
	*len = (size_t)(e - p);
	return true;
}

int tm_linecache_getline(const char *root_dir, const char *filename, uint32_t lineno,
			 char *buf, size_t bufsz)
{
	const char *text;
	size_t len;

	if (!linecache_span(root_dir, filename, strlen(filename), lineno, &text, &len))
		return -1;
	if (bufsz) {
		if (len >= bufsz)
			len = bufsz - 1;
		memcpy(buf, text, len);
		buf[len] = '\0';
	}
	return 0;
}

/* ---- Traceback.format() ------------------------------------------------- */

void tm_print_frames_format(FILE *out, const struct tm_stat_frame *frames, uint32_t nframe,
			    bool has_limit, int64_t limit, bool most_recent_first,
			    const char *root_dir)
{
	/* positions in the OLDEST-FIRST sequence, Python's slice of it */
	int64_t n = nframe, start = 0, end = n, k;

	if (has_limit) {
		if (limit > 0)
			start = limit >= n ? 0 : n - limit;     /* self[-limit:] */
		else
			end = limit == 0 || limit <= -n ? 0 : n + limit; /* self[:limit] */
	}
	for (k = 0; k < end - start; k++) {
		int64_t pos = most_recent_first ? end - 1 - k : start + k;
		const struct tm_stat_frame *f = &frames[nframe - 1 - pos];
		const char *line;
		size_t len;

		fputs("  File \"", out);
		tm_fputs_pystr(out, f->filename);
		fprintf(out, "\", line %" PRIu32 "\n", f->lineno);
		if (linecache_span(root_dir, f->filename.data, f->filename.len, f->lineno, &line,
				   &len) && len) {
			fputs("    ", out);
			fwrite(line, 1, len, out);
			fputc('\n', out);
		}
	}
}

void tm_print_traceback_format(FILE *out, const struct tm_snapshot *s, tm_id traceback,
			       bool has_limit, int64_t limit, bool most_recent_first,
			       const char *root_dir)
{
	const struct tm_traceback *tb = &s->tracebacks[traceback];
	const tm_id *fids = tm_traceback_frames(s, traceback);
	struct tm_stat_frame *frames = malloc((size_t)tb->nframe * sizeof(*frames));
	uint32_t i;

	if (!frames)
		return;
	for (i = 0; i < tb->nframe; i++)
		frames[i] = stat_frame_of(s, fids[i]);
	tm_print_frames_format(out, frames, tb->nframe, has_limit, limit, most_recent_first,
			       root_dir);
	free(frames);
}
