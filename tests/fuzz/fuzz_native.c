// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the native snapshot loader (tm_native_load_mem) on any
 * bytes. Seeds: tests/fuzz/corpus/fuzz_native/ (native files written by
 * tmbpf, with capture information and counters); crashes found once are kept
 * in tests/fuzz/regressions/fuzz_native/.
 */
#include <stdint.h>

#include "fuzz_snapshot_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_native_load_mem(data, size, &err);

	fuzz_check_refusal(s, &err);
	if (s) {
		fuzz_check_snapshot(s);
		tm_snapshot_free(s);
	}
	return 0;
}
