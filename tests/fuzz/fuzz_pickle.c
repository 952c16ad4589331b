// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the pickle reader (tm_pickle_load_mem) on any bytes, and
 * its aggregated and streamed loads (fuzz_check_ways).
 * Seeds: tests/fuzz/corpus/fuzz_pickle/ (Snapshot.dump() output of every
 * CPython 3.8-3.13, other protocols, hostile pickles); crashes found once are
 * kept in tests/fuzz/regressions/fuzz_pickle/.
 */
#include <stdint.h>

#include "fuzz_snapshot_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_pickle_load_mem(data, size, &err);

	fuzz_check_refusal(s, &err);
	if (s)
		fuzz_check_snapshot(s);
	fuzz_check_ways(tm_pickle_load_input, data, size, s, &err);
	tm_snapshot_free(s);
	/* the format dispatch must agree with itself on the same bytes */
	err.msg[0] = '\0';
	s = tm_snapshot_load_mem(data, size, &err);
	fuzz_check_refusal(s, &err);
	tm_snapshot_free(s);
	return 0;
}
