/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/maps: which file is mapped where in a target process.
 *
 * The maps file is written by the kernel but names paths chosen by the target
 * (a file can be called anything), so lines are read with a bounded length and
 * parsed strictly; a malformed line is an error, not a guess.
 *
 * Paths in maps are paths inside the target's mount namespace. The files are
 * opened from the host through /proc/PID/root/<path>, which also works for
 * processes in containers; procmaps_check_file() then compares device and
 * inode with the mapping, so a file replaced on disk is noticed.
 */
#ifndef TMBPF_TRACER_PROCMAPS_H
#define TMBPF_TRACER_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"  /* struct tm_error */

/* Longest maps line accepted (the kernel prints at most PATH_MAX of path). */
#define PROCMAPS_MAX_LINE 4608
/* Most mappings accepted (a large process has a few thousand). */
#define PROCMAPS_MAX_ENTRIES (1u << 20)

#define PROCMAPS_R 1u
#define PROCMAPS_W 2u
#define PROCMAPS_X 4u
#define PROCMAPS_P 8u                   /* private (copy-on-write) */

struct procmaps_entry {
	uint64_t start, end;            /* [start, end) */
	uint64_t offset;                /* file offset of start */
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t perms;                 /* PROCMAPS_* */
	bool deleted;                   /* path ended with " (deleted)" (stripped from path) */
	char *path;                     /* "" for anonymous; "[heap]" etc. for special */
};

struct procmaps {
	pid_t pid;
	struct procmaps_entry *v;
	size_t n;
};

/* Reads /proc/PID/maps. Errors (one line in err): no such process, permission
 * denied, malformed or over-long line. Returns 0 or a negative errno. */
int procmaps_read(pid_t pid, struct procmaps *m, struct tm_error *err);
void procmaps_free(struct procmaps *m);

/* Parses one maps line (without its newline) into e; e->path is malloc'ed.
 * Returns false (and allocates nothing) if the line is malformed. */
bool procmaps_parse_line(const char *line, struct procmaps_entry *e);

/* The mapping that contains addr, or NULL. */
const struct procmaps_entry *procmaps_find_addr(const struct procmaps *m, uint64_t addr);

/* The first (lowest-address) mapping of path, or NULL. */
const struct procmaps_entry *procmaps_find_file(const struct procmaps *m, const char *path);

/* The host path of a target path: "/proc/PID/root" + path. Returns 0, or
 * -ENAMETOOLONG / -EINVAL (path not absolute). */
int procmaps_host_path(pid_t pid, const char *target_path, char *out, size_t out_size);

/* Checks that host_path is the file mapped by e (same device and inode).
 * Returns 0, or a negative errno with err set. */
int procmaps_check_file(const struct procmaps_entry *e, const char *host_path, struct tm_error *err);

/* One PT_LOAD program header, as procmaps_load_bias needs it. */
struct procmaps_segment {
	uint64_t vaddr;                 /* p_vaddr */
	uint64_t offset;                /* p_offset */
	uint64_t filesz;                /* p_filesz */
};

/* A module's load bias (runtime address - link-time vaddr) from its file
 * mappings and its PT_LOAD segments. Every file mapping of path whose offset
 * lies in a segment must agree on one bias (0 for ET_EXEC). Returns 0, or
 * -ENOENT (file not mapped) / -EINVAL (no mapping matches a segment, or two
 * disagree) with err set. */
int procmaps_load_bias(const struct procmaps *m, const char *path,
		       const struct procmaps_segment *seg, size_t nseg,
		       int64_t *bias, struct tm_error *err);

#endif /* TMBPF_TRACER_PROCMAPS_H */
