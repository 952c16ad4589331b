// SPDX-License-Identifier: MIT
#include <string.h>
#include "output/counters.h"

static bool has_prefix(struct tm_str n, const char *prefix)
{
	size_t len = strlen(prefix);

	return n.len > len && !memcmp(n.data, prefix, len);
}

static bool equals(struct tm_str n, const char *s)
{
	return n.len == strlen(s) && !memcmp(n.data, s, n.len);
}

bool report_counter_is_loss(struct tm_str n)
{
	return has_prefix(n, "lost.") || has_prefix(n, "frames.") || has_prefix(n, "code.") ||
	       equals(n, "calls.missed_returns") || equals(n, "calls.unknown_process");
}

uint64_t report_counter(const struct tm_snapshot *s, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; i < s->capture.ncounters; i++) {
		struct tm_str n = tm_string(s, s->capture.counters[i].name);

		if (n.len == len && !memcmp(n.data, name, len))
			return s->capture.counters[i].value;
	}
	return 0;
}

const char *report_tier_name(enum tm_tier t)
{
	switch (t) {
	case TM_TIER_EXACT: return "exact";
	case TM_TIER_NATIVE: return "native";
	case TM_TIER_GROWTH: return "growth";
	default: return "tracemalloc";
	}
}

const char *report_coverage_name(enum tm_coverage c)
{
	switch (c) {
	case TM_COVERAGE_COMPLETE: return "complete";
	case TM_COVERAGE_PARTIAL: return "PARTIAL";
	case TM_COVERAGE_SAMPLED: return "sampled";
	default: return "unknown";
	}
}
