// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Bounded reads of target memory: see remote.h. */
#include "tracer/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int remote_init(struct remote *r, pid_t pid)
{
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->mem_fd = -1;
	return 0;
}

void remote_close(struct remote *r)
{
	if (r->mem_fd >= 0)
		close(r->mem_fd);
	r->mem_fd = -1;
}

static int read_mem_file(struct remote *r, uint64_t addr, void *buf, size_t len)
{
	if (r->mem_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)r->pid);
		r->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->mem_fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
	}
	/* pread's offset is signed: addresses at or above 2^63 are not user space. */
	if (addr > (uint64_t)INT64_MAX - len)
		return -EFAULT;
	ssize_t n = pread(r->mem_fd, buf, len, (off_t)addr);
	if (n < 0)
		return errno == EIO ? -EFAULT : -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len)
{
	int err;

	if (len > REMOTE_MAX_READ) {
		r->stats.too_big++;
		return -E2BIG;
	}
	if (len == 0)
		return 0;
	if (addr == 0 || addr + len < addr) {
		r->stats.faults++;
		return -EFAULT;
	}
	if (!r->use_mem_file) {
		struct iovec local = { .iov_base = buf, .iov_len = len };
		struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
		ssize_t n = process_vm_readv(r->pid, &local, 1, &remote, 1, 0);

		if (n == (ssize_t)len) {
			err = 0;
			goto done;
		}
		if (n >= 0) {
			/* The range crossed into an unmapped page: a partial read
			 * is never returned as data. */
			err = -EFAULT;
			goto done;
		}
		err = -errno;
		/* EFAULT and ESRCH are answers about the target, not about the
		 * mechanism; anything else (EPERM under a seccomp filter, ENOSYS)
		 * makes us switch to /proc/PID/mem for good. */
		if (err == -EFAULT || err == -ESRCH)
			goto done;
		r->use_mem_file = true;
	}
	err = read_mem_file(r, addr, buf, len);
done:
	if (err == 0) {
		r->stats.reads++;
		r->stats.bytes += len;
	} else if (err == -EFAULT) {
		r->stats.faults++;
	} else {
		r->stats.other_errors++;
	}
	return err;
}

int remote_read_u64(struct remote *r, uint64_t addr, uint64_t *out)
{
	return remote_read(r, addr, out, sizeof(*out));
}

int remote_read_u32(struct remote *r, uint64_t addr, uint32_t *out)
{
	return remote_read(r, addr, out, sizeof(*out));
}

int remote_read_s32(struct remote *r, uint64_t addr, int32_t *out)
{
	return remote_read(r, addr, out, sizeof(*out));
}
