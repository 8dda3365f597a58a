// SPDX-License-Identifier: GPL-2.0
/*
 * cpu.c - CPU time of tasks by name, from /proc/PID/task/TID/stat.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "perf.h"

/* utime + stime of one stat file whose comm matches, else 0. */
static long long task_ticks(const char *path, const char *const *prefixes)
{
	char buf[1024], *comm, *rp;
	unsigned long long ut, st;
	const char *const *p;
	size_t n;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return 0;	/* the task went away */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	comm = strchr(buf, '(');
	rp = strrchr(buf, ')');
	if (!comm || !rp || rp < comm)
		return 0;
	*rp = '\0';
	comm++;
	for (p = prefixes; *p; p++)
		if (!strncmp(comm, *p, strlen(*p)))
			break;
	if (!*p)
		return 0;
	/* after ") ": state(3) ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return 0;
	return (long long)(ut + st);
}

static long long pid_ticks(const char *pid, const char *const *prefixes)
{
	char path[300];
	struct dirent *t;
	long long sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%s/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((t = readdir(d))) {
		if (t->d_name[0] < '0' || t->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task/%s/stat", pid, t->d_name);
		sum += task_ticks(path, prefixes);
	}
	closedir(d);
	return sum;
}

long long cpu_ticks_matching(int pid, const char *const *prefixes)
{
	struct dirent *e;
	long long sum = 0;
	char one[24];
	DIR *d;

	if (pid > 0) {
		snprintf(one, sizeof(one), "%d", pid);
		return pid_ticks(one, prefixes);
	}
	d = opendir("/proc");
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			sum += pid_ticks(e->d_name, prefixes);
	closedir(d);
	return sum;
}

long long cpu_self_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
	       (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}
