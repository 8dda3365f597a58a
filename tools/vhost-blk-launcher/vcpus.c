// SPDX-License-Identifier: GPL-2.0
/*
 * --queue-cpus vcpus: where the front-end's vCPU threads may run, from
 * /proc/PID/task/TID/{comm,status}, and which vCPUs use which queue.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpus.h"

bool cpu_mask_empty(const struct cpu_mask *m)
{
	for (unsigned int i = 0; i < VCPU_MASK_WORDS; i++)
		if (m->w[i])
			return false;
	return true;
}

bool cpu_mask_subset(const struct cpu_mask *sub, const struct cpu_mask *super)
{
	for (unsigned int i = 0; i < VCPU_MASK_WORDS; i++)
		if (sub->w[i] & ~super->w[i])
			return false;
	return true;
}

unsigned int cpu_mask_bytes(const struct cpu_mask *m)
{
	unsigned int words = 1;

	for (unsigned int i = 0; i < VCPU_MASK_WORDS; i++)
		if (m->w[i])
			words = i + 1;
	return words * 8;
}

void cpu_mask_format(const struct cpu_mask *m, char *buf, size_t len)
{
	unsigned int ncpus = VCPU_MASK_WORDS * 64;
	size_t used = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (unsigned int c = 0; c < ncpus; c++) {
		unsigned int end = c;
		int w;

		if (!cpu_mask_test(m, c))
			continue;
		while (end + 1 < ncpus && cpu_mask_test(m, end + 1))
			end++;
		if (end == c)
			w = snprintf(buf + used, len - used, "%s%u", used ? "," : "", c);
		else
			w = snprintf(buf + used, len - used, "%s%u-%u",
				     used ? "," : "", c, end);
		if (w < 0 || (size_t)w >= len - used) {
			if (len > 4)
				strcpy(buf + len - 4, "...");
			return;
		}
		used += (size_t)w;
		c = end;
	}
}

int cpu_mask_parse(const char *s, struct cpu_mask *m)
{
	const char *p = s;

	memset(m, 0, sizeof(*m));
	while (*p && *p != '\n') {
		unsigned long lo, hi;
		char *end;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		lo = strtoul(p, &end, 10);
		hi = lo;
		if (!errno && *end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (errno || hi < lo || hi >= VCPU_MASK_WORDS * 64)
			return -EINVAL;
		for (unsigned long c = lo; c <= hi; c++)
			cpu_mask_set(m, (unsigned int)c);
		if (*end == ',')
			end++;
		else if (*end && *end != '\n')
			return -EINVAL;
		p = end;
	}
	return 0;
}

/* "CPU <n>/KVM" (or another accelerator's name after the slash). */
static bool vcpu_number(const char *comm, unsigned int *n)
{
	unsigned int v;
	int end = 0;

	if (sscanf(comm, "CPU %u/%*[A-Za-z]%n", &v, &end) != 1 || !end)
		return false;
	if (comm[end] && comm[end] != '\n')
		return false;
	*n = v;
	return true;
}

/* Read a small /proc file into @buf; false if it cannot be read. */
static bool read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t got;

	if (!f)
		return false;
	got = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[got] = '\0';
	return got > 0;
}

static int thread_mask(const char *dir, struct cpu_mask *m)
{
	char path[600], buf[8192];
	const char *line;

	if ((size_t)snprintf(path, sizeof(path), "%s/status", dir) >= sizeof(path) ||
	    !read_small(path, buf, sizeof(buf)))
		return -EIO;
	line = strstr(buf, "\nCpus_allowed_list:");
	if (!line)
		return -EINVAL;
	line += strlen("\nCpus_allowed_list:");
	line += strspn(line, " \t");
	return cpu_mask_parse(line, m);
}

int vcpus_read(const char *proc, int pid, struct cpu_mask **vcpus,
	       unsigned int *n)
{
	struct cpu_mask *out = NULL;
	unsigned int nout = 0;
	char path[512];
	struct dirent *e;
	DIR *d;
	int err = 0;

	*vcpus = NULL;
	*n = 0;
	if (pid <= 0)
		return -ESRCH;
	if ((size_t)snprintf(path, sizeof(path), "%s/%d/task", proc, pid) >= sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char dir[512], file[600], comm[64];
		struct cpu_mask m;
		unsigned int v;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", path,
				     e->d_name) >= sizeof(dir) ||
		    (size_t)snprintf(file, sizeof(file), "%s/comm", dir) >= sizeof(file) ||
		    !read_small(file, comm, sizeof(comm)) ||
		    !vcpu_number(comm, &v) || v >= VCPU_MAX)
			continue;
		/* A thread that exited meanwhile is no vCPU of ours. */
		if (thread_mask(dir, &m))
			continue;
		if (v >= nout) {
			struct cpu_mask *grown = realloc(out, (v + 1) * sizeof(*out));

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			memset(grown + nout, 0, (v + 1 - nout) * sizeof(*out));
			out = grown;
			nout = v + 1;
		}
		out[v] = m;
	}
	closedir(d);
	if (!err && !nout)
		err = -ENOENT;
	if (err) {
		free(out);
		return err;
	}
	*vcpus = out;
	*n = nout;
	return 0;
}

void vcpus_queue_mask(const struct cpu_mask *vcpus, unsigned int n,
		      unsigned int q, unsigned int nq, struct cpu_mask *out)
{
	unsigned int first, count;

	memset(out, 0, sizeof(*out));
	if (!n || !nq)
		return;
	if (nq > n) {
		first = q % n;
		count = 1;
	} else {
		unsigned int base = n / nq, extra = n % nq;

		first = q * base + (q < extra ? q : extra);
		count = base + (q < extra);
	}
	for (unsigned int v = first; v < first + count && v < n; v++)
		for (unsigned int i = 0; i < VCPU_MASK_WORDS; i++)
			out->w[i] |= vcpus[v].w[i];
}
