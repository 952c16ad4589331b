/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where glibc keeps thread-specific data (pthread_key_create/getspecific),
 * relative to the thread pointer (fsbase = struct pthread *).
 *
 * struct pthread holds specific_1stblock[32] (keys 0..31: {uintptr_t seq;
 * void *data;}, 16 bytes each) followed by specific[32] (pointers to blocks of
 * 32 such entries, for keys 32..1023). The offsets change between glibc
 * versions, so they are derived from the machine code of the target's own
 * pthread_getspecific, which computes exactly these addresses:
 *     mov %edi,%eax; add $0x31,%rax; shl $4,%rax; add %fs:0x10,%rax   (keys < 32)
 *     mov %fs:0x510(,%rax,8),%rax                                    (keys >= 32)
 * glibc 2.36: first block at 0x310, second level at 0x510.
 */
#ifndef TMBPF_TRACER_GLIBC_TSD_H
#define TMBPF_TRACER_GLIBC_TSD_H

#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"
#include "tracer/procmaps.h"

#define GLIBC_TSD_KEYS_PER_BLOCK 32     /* PTHREAD_KEY_2NDLEVEL_SIZE */
#define GLIBC_TSD_ENTRY_SIZE 16         /* struct pthread_key_data */
#define GLIBC_TSD_DATA_OFFSET 8         /* .data inside an entry */
#define GLIBC_TSD_MAX_KEYS 1024         /* PTHREAD_KEYS_MAX */

struct glibc_tsd {
	uint32_t first_block;           /* fsbase + first_block + 16*key: keys 0..31 */
	uint32_t second_level;          /* fsbase + second_level + 8*(key/32): block pointer */
	char libc_path[512];            /* the libc the offsets came from (host path) */
};

/* Derives the offsets from the libc at host_path (for a program not yet
 * started: the libc its DT_NEEDED resolves to). Returns 0, or a negative
 * errno with err set (not glibc, unexpected code). */
int glibc_tsd_from_file(const char *host_path, struct glibc_tsd *out, struct tm_error *err);

/* The libc mapped by a live process (maps = its /proc/PID/maps). */
int glibc_tsd_for_pid(pid_t pid, const struct procmaps *maps, struct glibc_tsd *out,
		      struct tm_error *err);

/* Address of the TSD entry's data word for key in the thread whose thread
 * pointer is fsbase, for keys < 32 (one read); keys >= 32 need the
 * second-level pointer first: see glibc_tsd_read. */
static inline uint64_t glibc_tsd_first_block_slot(const struct glibc_tsd *t, uint64_t fsbase,
						  uint32_t key)
{
	return fsbase + t->first_block + (uint64_t)GLIBC_TSD_ENTRY_SIZE * key + GLIBC_TSD_DATA_OFFSET;
}

struct remote;
/* pthread_getspecific(key) as seen from outside, for the thread whose thread
 * pointer is fsbase (the seq check against __pthread_keys is not done: a
 * deleted-and-reused key would be stale, which CPython never does for its
 * own key while running). Returns 0 and *value, or a negative errno. */
int glibc_tsd_read(const struct glibc_tsd *t, struct remote *r, uint64_t fsbase, uint32_t key,
		   uint64_t *value);

#endif /* TMBPF_TRACER_GLIBC_TSD_H */
