// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the native snapshot loader (tm_native_load_mem) on any
 * bytes, and its aggregated and streamed loads (fuzz_check_ways). Seeds: tests/fuzz/corpus/fuzz_native/ (native files written by
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
	if (s)
		fuzz_check_snapshot(s);
	fuzz_check_ways(tm_native_load_input, data, size, s, &err);
	tm_snapshot_free(s);
	return 0;
}
