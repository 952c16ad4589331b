// SPDX-License-Identifier: MIT
/* Value-keyed open-addressing index over ids: see index.h. */
#include "snapshot/index.h"

#include <stdlib.h>

#define TM_INDEX_MIN_CAP 16u

static uint32_t cap_for(uint32_t expected)
{
	uint64_t cap = TM_INDEX_MIN_CAP;

	/* at most half full, so that probes stay short */
	while (cap < (uint64_t)expected * 2)
		cap <<= 1;
	return cap > (1ULL << 31) ? 0 : (uint32_t)cap;
}

static struct tm_index_slot *slots_new(uint32_t cap)
{
	struct tm_index_slot *slots = malloc((size_t)cap * sizeof(*slots));

	/* every byte 0xff: id == TM_ID_NONE marks an empty slot */
	if (slots)
		memset(slots, 0xff, (size_t)cap * sizeof(*slots));
	return slots;
}

struct tm_index *tm_index_new(uint32_t expected)
{
	struct tm_index *ix = calloc(1, sizeof(*ix));
	uint32_t cap = cap_for(expected);

	if (!ix || !cap)
		goto fail;
	ix->slots = slots_new(cap);
	if (!ix->slots)
		goto fail;
	ix->mask = cap - 1;
	return ix;
fail:
	free(ix);
	return NULL;
}

void tm_index_free(struct tm_index *ix)
{
	if (!ix)
		return;
	free(ix->slots);
	free(ix);
}

int tm_index_reserve_one(struct tm_index *ix)
{
	uint64_t cap = (uint64_t)ix->mask + 1;
	struct tm_index_slot *slots;
	uint32_t new_cap, i;

	if ((uint64_t)(ix->count + 1) * 2 <= cap)
		return 0;
	if (cap >= (1ULL << 31))
		return -1;
	new_cap = (uint32_t)cap * 2;
	slots = slots_new(new_cap);
	if (!slots)
		return -1;
	/* rehash from the stored hashes: values are never touched again */
	for (i = 0; i < cap; i++) {
		struct tm_index_slot *old = &ix->slots[i];
		uint32_t j;

		if (old->id == TM_ID_NONE)
			continue;
		j = old->hash & (new_cap - 1);
		while (slots[j].id != TM_ID_NONE)
			j = (j + 1) & (new_cap - 1);
		slots[j] = *old;
	}
	free(ix->slots);
	ix->slots = slots;
	ix->mask = new_cap - 1;
	return 0;
}
