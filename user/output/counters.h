/* SPDX-License-Identifier: MIT */
/*
 * Which capture counters of a snapshot count something the tracer did not see
 * or could not resolve, and must be shown to the user as losses: lost.* (full
 * maps, ring buffer, ...), frames.* (unreadable or truncated stacks), code.*
 * (code objects that could not be read), and two call counters. The tracers
 * name their counters by this rule; every report that shows losses asks here.
 * Also: reading a counter, and the short names of tiers and coverage that the
 * live reports print.
 */
#ifndef TMBPF_COUNTERS_H
#define TMBPF_COUNTERS_H

#include <stdbool.h>
#include "snapshot/snapshot.h"

bool report_counter_is_loss(struct tm_str name);

/* The value of the counter called name, 0 when the snapshot has none. */
uint64_t report_counter(const struct tm_snapshot *s, const char *name);

/* "exact", "native", "growth", "tracemalloc" (an imported pickle). */
const char *report_tier_name(enum tm_tier t);
/* "complete", "PARTIAL", "sampled", "unknown". */
const char *report_coverage_name(enum tm_coverage c);

#endif
