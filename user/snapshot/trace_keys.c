// SPDX-License-Identifier: MIT
/*
 * The (traceback, domain) pairs of an aggregated load (see snapfile_priv.h):
 * what the pickle reader and the native loader group traces by when they
 * keep sums instead of traces. The lookup is inline there; this file adds.
 */
#include "snapshot/snapfile_priv.h"

#include <stdlib.h>
#include <string.h>

void tm_trace_keys_destroy(struct tm_trace_keys *k)
{
	free(k->keys);
	free(k->first);
	free(k->other);
	memset(k, 0, sizeof(*k));
}

/* Doubles the table of the other pairs. */
static int other_grow(struct tm_trace_keys *k)
{
	unsigned bits = k->other ? k->other_bits + 1 : 8;
	uint64_t size = (uint64_t)1 << bits, old = k->other ? (uint64_t)1 << k->other_bits : 0;
	uint64_t i, j;
	tm_id *slots;

	if (bits > 32 || !(slots = malloc((size_t)size * sizeof(*slots))))
		return -1;
	memset(slots, 0xff, (size_t)size * sizeof(*slots));
	for (i = 0; i < old; i++) {
		const struct tm_trace_key *key;

		if (k->other[i] == TM_ID_NONE)
			continue;
		key = &k->keys[k->other[i]];
		for (j = tm_trace_key_hash(key->traceback, key->domain, bits);
		     slots[j] != TM_ID_NONE; j = (j + 1) & (size - 1))
			;
		slots[j] = k->other[i];
	}
	free(k->other);
	k->other = slots;
	k->other_bits = bits;
	return 0;
}

/* Appends the pair; its new id, or TM_ID_NONE. */
static tm_id append(struct tm_trace_keys *k, tm_id traceback, uint32_t domain)
{
	if (k->n >= UINT32_MAX - 1)
		return TM_ID_NONE;
	if (k->n == k->cap) {
		uint32_t cap = k->cap < 64 ? 64 : k->cap > UINT32_MAX / 2 ? UINT32_MAX - 1
									     : k->cap * 2;
		struct tm_trace_key *keys = realloc(k->keys, (size_t)cap * sizeof(*keys));

		if (!keys)
			return TM_ID_NONE;
		k->keys = keys;
		k->cap = cap;
	}
	k->keys[k->n] = (struct tm_trace_key){ traceback, domain };
	return k->n++;
}

/* tm_trace_keys_get() did not find the pair: adds it. (It also gets here for
 * a traceback beyond the first[] array, which then grows.) */
tm_id tm_trace_keys_add(struct tm_trace_keys *k, tm_id traceback, uint32_t domain)
{
	uint64_t mask, j;
	tm_id id;

	if (traceback == TM_ID_NONE)
		return TM_ID_NONE;
	/* the array of first pairs grows with the tracebacks */
	if (traceback >= k->first_len) {
		uint64_t len = k->first_len ? k->first_len : 1024, i;
		struct tm_trace_key_first *first;

		while (len <= traceback)
			len *= 2;
		if (len > UINT32_MAX)
			len = UINT32_MAX;
		first = realloc(k->first, (size_t)len * sizeof(*first));
		if (!first)
			return TM_ID_NONE;
		for (i = k->first_len; i < len; i++)
			first[i].id = TM_ID_NONE;
		k->first = first;
		k->first_len = (uint32_t)len;
	}
	if (k->first[traceback].id == TM_ID_NONE) {
		id = append(k, traceback, domain);
		if (id != TM_ID_NONE)
			k->first[traceback] = (struct tm_trace_key_first){ id, domain };
		return id;
	}
	if (k->first[traceback].domain == domain)
		return k->first[traceback].id;
	/* another domain of a traceback seen before */
	if (!k->other || ((uint64_t)k->other_count + 1) * 2 > (uint64_t)1 << k->other_bits) {
		if (other_grow(k))
			return TM_ID_NONE;
	}
	mask = ((uint64_t)1 << k->other_bits) - 1;
	for (j = tm_trace_key_hash(traceback, domain, k->other_bits); k->other[j] != TM_ID_NONE;
	     j = (j + 1) & mask)
		if (k->keys[k->other[j]].traceback == traceback &&
		    k->keys[k->other[j]].domain == domain)
			return k->other[j];
	id = append(k, traceback, domain);
	if (id == TM_ID_NONE)
		return TM_ID_NONE;
	k->other[j] = id;
	k->other_count++;
	return id;
}
