// SPDX-License-Identifier: GPL-2.0
/* Logging to stderr or syslog. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static bool log_syslog;
static int log_max = LOG_INFO;
static const char *log_ident = "vhost-blk-launcher";

void log_init(const char *ident, bool use_syslog, int max_prio)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_max = max_prio;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	if (prio > log_max)
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fprintf(stderr, "%s: ", log_ident);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
