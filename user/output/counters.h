/* SPDX-License-Identifier: MIT */
/*
 * Which capture counters of a snapshot count something the tracer did not see
 * or could not resolve, and must be shown to the user as losses: lost.* (full
 * maps, ring buffer, ...), frames.* (unreadable or truncated stacks), code.*
 * (code objects that could not be read), and two call counters. The tracers
 * name their counters by this rule; every report that shows losses asks here.
 */
#ifndef TMBPF_COUNTERS_H
#define TMBPF_COUNTERS_H

#include <stdbool.h>
#include "snapshot/snapshot.h"

bool report_counter_is_loss(struct tm_str name);

#endif
