// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: the tracepoints of blk_trace.h are created here.
 */
#define CREATE_TRACE_POINTS
#include "blk_trace.h"
