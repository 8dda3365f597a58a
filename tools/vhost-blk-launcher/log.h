/* SPDX-License-Identifier: GPL-2.0 */
/* Logging to stderr or syslog. */
#ifndef VBL_LOG_H
#define VBL_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_init(const char *ident, bool use_syslog, int max_prio);
void log_msg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_dbg(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
