/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Bounded, checked reads of another process's memory.
 *
 * The target's memory is untrusted input to a root process: every read names
 * its maximum length, and a read either fills the whole buffer or fails with
 * an error. A partial read (a mapping that ends inside the range) is an error,
 * never "some bytes".
 *
 * process_vm_readv() is tried first (one syscall, no file descriptor per read);
 * if the kernel refuses it (seccomp, EPERM from Yama/ptrace scope with a
 * different uid, ENOSYS), /proc/PID/mem is used through pread().
 */
#ifndef TMBPF_TRACER_REMOTE_H
#define TMBPF_TRACER_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest single read we ever do: larger requests are a caller bug or a
 * hostile size read from the target, and fail with -E2BIG. */
#define REMOTE_MAX_READ (1u << 20)

struct remote_stats {
	uint64_t reads;                 /* successful reads */
	uint64_t bytes;                 /* bytes returned by successful reads */
	uint64_t faults;                /* reads of unmapped/short ranges (-EFAULT) */
	uint64_t too_big;               /* requests over the cap (-E2BIG) */
	uint64_t other_errors;          /* anything else (target gone, permission) */
};

struct remote {
	pid_t pid;
	int mem_fd;                     /* /proc/PID/mem, opened on first fallback; -1 if not */
	bool use_mem_file;              /* process_vm_readv refused: always use mem_fd */
	struct remote_stats stats;
};

/* Prepares reads from pid. Does not check that the process exists (the first
 * read does); returns 0. */
int remote_init(struct remote *r, pid_t pid);
void remote_close(struct remote *r);

/* Reads exactly len bytes at addr into buf. Returns 0, or a negative errno:
 * -E2BIG (len > REMOTE_MAX_READ), -EFAULT (range not fully mapped/readable;
 * also any partial read), -ESRCH (process gone), -EPERM/-EACCES. */
int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len);

/* Convenience wrappers (little-endian target = this machine). */
int remote_read_u64(struct remote *r, uint64_t addr, uint64_t *out);
int remote_read_u32(struct remote *r, uint64_t addr, uint32_t *out);
int remote_read_s32(struct remote *r, uint64_t addr, int32_t *out);

#endif /* TMBPF_TRACER_REMOTE_H */
