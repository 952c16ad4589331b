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
