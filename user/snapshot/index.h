/* SPDX-License-Identifier: MIT */
/*
 * Private to user/snapshot: a value-keyed open-addressing hash index over dense
 * ids, and the hash functions that feed it.
 *
 * The index stores only (id, hash) pairs; the values live in the caller's flat
 * arrays (the snapshot's tables, or the statistics' groups), so one index type
 * serves strings, frames, tracebacks and statistic keys alike. The caller
 * supplies the equality test, which sees an id and compares the value it names
 * against the probe -- the way _tracemalloc.c's hashtables compare keys.
 * Linear probing over a power-of-two table kept at most half full: probes are
 * short and the table is one cache-friendly array.
 */
#ifndef TMBPF_SNAPSHOT_INDEX_H
#define TMBPF_SNAPSHOT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snapshot/snapshot.h"

struct tm_index_slot {
	tm_id id;                       /* TM_ID_NONE = empty */
	uint32_t hash;                  /* low 32 bits of the value's hash */
};

struct tm_index {
	struct tm_index_slot *slots;
	uint32_t mask;                  /* capacity - 1; capacity is a power of two */
	uint32_t count;
};

/* An empty index able to hold `expected` entries without growing.
 * NULL on allocation failure. */
struct tm_index *tm_index_new(uint32_t expected);
void tm_index_free(struct tm_index *ix);
/* Makes room for one more entry (grows at half full). 0 or -1 (allocation). */
int tm_index_reserve_one(struct tm_index *ix);

typedef bool (*tm_index_eq_fn)(const void *ctx, tm_id id);

/* Finds the id whose value equals the probe (eq(ctx, id) is true), or returns
 * TM_ID_NONE and leaves *empty at the slot where it would be inserted. */
static inline tm_id tm_index_find(const struct tm_index *ix, uint32_t hash, tm_index_eq_fn eq,
				  const void *ctx, struct tm_index_slot **empty)
{
	uint32_t i = hash & ix->mask;

	for (;;) {
		struct tm_index_slot *slot = &ix->slots[i];

		if (slot->id == TM_ID_NONE) {
			if (empty)
				*empty = slot;
			return TM_ID_NONE;
		}
		if (slot->hash == hash && eq(ctx, slot->id))
			return slot->id;
		i = (i + 1) & ix->mask;
	}
}

/* Fills the slot returned by tm_index_find (after tm_index_reserve_one). */
static inline void tm_index_insert_at(struct tm_index *ix, struct tm_index_slot *slot, tm_id id,
				      uint32_t hash)
{
	slot->id = id;
	slot->hash = hash;
	ix->count++;
}

/* ---- hashing ------------------------------------------------------------ */

/* A 64-bit finaliser (splitmix64): spreads ids and line numbers, which are
 * small and dense, over the whole word before the table masks the low bits. */
static inline uint64_t tm_hash_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t tm_hash_combine(uint64_t h, uint64_t v)
{
	return tm_hash_mix(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

/* Hash of a byte string (strings may hold NUL bytes: length-based). Reads
 * eight bytes at a time; filenames are tens of bytes long. */
static inline uint64_t tm_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x243f6a8885a308d3ULL ^ len;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = tm_hash_mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		h = tm_hash_mix(h ^ w ^ ((uint64_t)len << 56));
	}
	return tm_hash_mix(h);
}

#endif /* TMBPF_SNAPSHOT_INDEX_H */
