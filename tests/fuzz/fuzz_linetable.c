// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the decoders that take target memory (untrusted):
 * the three line-table formats (py_addr2line) and str -> UTF-8
 * (py_str_to_utf8), plus /proc/PID/maps lines (paths are chosen by the
 * target). An input starting with 'M' is a maps line. Otherwise:
 *   byte 0      selector: low 2 bits = line-table kind (1..3; 0 = string test),
 *               bits 2..4 = str kind for the string test
 *   bytes 1..4  co_firstlineno (little-endian int32)
 *   byte 5      highest address to query / 4 (bounded: each query walks the table)
 *   byte 6      unused
 *   rest        the table / the string data
 * Besides not crashing, it checks properties every answer must have.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracer/procmaps.h"
#include "tracer/pycode.h"

static void check_utf8(const char *s, long n)
{
	/* Output is well-formed generalized UTF-8 (surrogates allowed): every
	 * lead byte is followed by the right number of continuation bytes. */
	for (long i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;

		if (more < 0 || i + 1 + more > n)
			abort();
		for (int k = 1; k <= more; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				abort();
		i += 1 + more;
	}
	if (s[n] != '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'M') {
		char *line = malloc(size);
		struct procmaps_entry e;

		if (!line)
			return 0;
		memcpy(line, data + 1, size - 1);
		line[size - 1] = '\0';
		if (procmaps_parse_line(line, &e)) {
			if (e.end <= e.start || !e.path || strlen(e.path) > size)
				abort();
			free(e.path);
		}
		free(line);
		return 0;
	}
	if (size < 7)
		return 0;
	unsigned sel = data[0] & 3, str_kind = (data[0] >> 2) & 7;
	int32_t first;
	memcpy(&first, data + 1, 4);
	unsigned max_addr = (unsigned)data[5] * 4;
	const uint8_t *body = data + 7;
	size_t len = size - 7;

	if (sel == 0) {
		size_t chars = str_kind ? len / str_kind : len;
		char *out = malloc(chars * 4 + 1);

		if (!out)
			return 0;
		long n = py_str_to_utf8(str_kind, body, chars, out);
		if (n >= 0) {
			if (str_kind != 1 && str_kind != 2 && str_kind != 4)
				abort();
			if ((size_t)n > chars * 4)
				abort();
			check_utf8(out, n);
		} else if (str_kind == 1 || str_kind == 2) {
			abort();        /* every Latin-1 / UCS-2 string is encodable */
		}
		free(out);
		return 0;
	}
	/* A private copy, so that ASan sees any read past the table's end. */
	uint8_t *table = malloc(len ? len : 1);
	if (!table)
		return 0;
	memcpy(table, body, len);
	for (int32_t addr = -2; addr <= (int32_t)max_addr; addr += 1) {
		int32_t line;

		if (py_addr2line((enum py_linetable_kind)sel, table, len, first, addr, &line) != 0)
			continue;
		if (addr < 0 && sel != PY_LINETABLE_LNOTAB && line != first)
			abort();        /* negative offsets give co_firstlineno */
	}
	free(table);
	return 0;
}
