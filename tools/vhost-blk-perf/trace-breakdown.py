#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where a vhost-blk request's wall time goes, from the module's tracepoints.

    trace-breakdown.py [--owner PID] TRACE [TRACE...]

TRACE is the text of /sys/kernel/tracing/trace (or trace_pipe) with the
vhost_blk events enabled (drivers/vhost/blk_trace.h); a name ending in .gz
is read compressed, "-" is stdin.  For every queue (owner pid and index)
and for all queues together it prints, in microseconds (count, mean, p50,
p90, p99, max):

  kick->pass      the guest's kick until the submit pass that serves it
                  starts (the submit thread's wake-up)
  rekick->pass    the same for a pass the device started itself
  pass            a submit pass, start to end
  req->io_done    a request's header read until its last bio ended
                  (the backend; 0 for one that completes in submit_bio())
  io_done->end    its bio's end until its status byte is written (the
                  hand-off to whoever publishes it)
  req->end        header read to status written: the request in the host
  signal_hold     how long a signal waited for more entries (held_ns)
  signal->req     a signal until the next request is read on that queue
                  (the guest's turnaround, when it had nothing posted)

and counts: requests, passes, kicks, rekicks, signals, entries per
signal, requests per pass, the share of requests whose bios ended inside
their own submit pass (inline), and lines of ours that did not parse.
Exit status 1 if a file holds no vhost_blk event, 2 on bad usage.
"""
import argparse
import gzip
import math
import re
import sys
from collections import defaultdict

LINE = re.compile(r'\s(\d+\.\d+):\s+(vhost_blk_\w+):\s+owner=(\d+)\s+q=(\d+)(.*)$')
FIELD = re.compile(r'(\w+)=(\d+)')
STAGES = ('kick->pass', 'rekick->pass', 'pass', 'req->io_done',
          'io_done->end', 'req->end', 'signal_hold', 'signal->req')


class Queue:
    """The events of one queue, folded into stage samples as they come."""

    def __init__(self):
        self.samples = defaultdict(list)
        self.count = defaultdict(int)
        self.kick_at = None        # oldest kick not yet served by a pass
        self.rekick_at = None
        self.pass_at = None        # the pass running now
        self.req_at = {}           # head -> req_start time
        self.io_at = {}            # head -> req_io_done time
        self.signal_at = None      # last signal not yet followed by a request
        self.inline = 0
        self.signal_n = 0

    def event(self, t, name, f):
        s = self.samples
        self.count[name] += 1
        if name == 'kick':
            if self.kick_at is None:
                self.kick_at = t
        elif name == 'rekick':
            if self.rekick_at is None:
                self.rekick_at = t
        elif name == 'pass_start':
            if self.kick_at is not None:
                s['kick->pass'].append(t - self.kick_at)
            if self.rekick_at is not None:
                s['rekick->pass'].append(t - self.rekick_at)
            self.kick_at = self.rekick_at = None
            self.pass_at = t
        elif name == 'pass_end':
            if self.pass_at is not None:
                s['pass'].append(t - self.pass_at)
            self.pass_at = None
            self.count['taken'] += f.get('taken', 0)
        elif name == 'req_start':
            self.req_at[f['head']] = t
            self.io_at.pop(f['head'], None)
            if self.signal_at is not None:
                s['signal->req'].append(t - self.signal_at)
                self.signal_at = None
        elif name == 'req_io_done':
            start = self.req_at.get(f['head'])
            if start is not None:
                s['req->io_done'].append(t - start)
                self.io_at[f['head']] = t
                if self.pass_at is not None and start >= self.pass_at:
                    self.inline += 1
        elif name == 'req_end':
            start = self.req_at.pop(f['head'], None)
            io = self.io_at.pop(f['head'], None)
            if start is not None:
                s['req->end'].append(t - start)
            if io is not None:
                s['io_done->end'].append(t - io)
        elif name == 'signal':
            s['signal_hold'].append(f.get('held_ns', 0) / 1000.0)
            self.signal_n += f.get('n', 0)
            self.signal_at = t


def pct(v, p):
    """The p-th percentile of sorted v (nearest rank)."""
    if not v:
        return 0.0
    k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


def parse(lines, queues, owner=None):
    """Feed trace lines to queues[(owner, q)]; return (events, bad lines)."""
    events = bad = 0
    for line in lines:
        if 'vhost_blk_' not in line or line.startswith('#'):
            continue
        m = LINE.search(line)
        if not m:
            bad += 1
            continue
        pid, q = int(m.group(3)), int(m.group(4))
        if owner is not None and pid != owner:
            continue
        fields = {k: int(v) for k, v in FIELD.findall(m.group(5))}
        name = m.group(2)[len('vhost_blk_'):]
        if name in ('req_start', 'req_io_done', 'req_end') and 'head' not in fields:
            bad += 1
            continue
        queues[(pid, q)].event(float(m.group(1)) * 1e6, name, fields)
        events += 1
    return events, bad


def report(queues, bad, out):
    """Print one block per queue, then all queues together."""
    blocks = [('owner %d q %d' % k, [queues[k]]) for k in sorted(queues)]
    if len(queues) > 1:
        blocks.append(('all queues', list(queues.values())))
    for title, qs in blocks:
        c = defaultdict(int)
        inline = signal_n = 0
        for q in qs:
            for k, v in q.count.items():
                c[k] += v
            inline += q.inline
            signal_n += q.signal_n
        reqs = c['req_start']
        print('== %s: %d requests, %d passes (%.2f requests a pass), %d kicks, '
              '%d rekicks, %d signals (%.2f entries a signal), %.1f %% of '
              'requests ended inside their pass'
              % (title, reqs, c['pass_end'], c['taken'] / max(1, c['pass_end']),
                 c['kick'], c['rekick'], c['signal'],
                 signal_n / max(1, c['signal']), 100.0 * inline / max(1, reqs)),
              file=out)
        print('%-14s %8s %10s %10s %10s %10s %10s' %
              ('stage (us)', 'count', 'mean', 'p50', 'p90', 'p99', 'max'), file=out)
        for st in STAGES:
            v = sorted(x for q in qs for x in q.samples[st])
            mean = sum(v) / len(v) if v else 0.0
            print('%-14s %8d %10.1f %10.1f %10.1f %10.1f %10.1f' %
                  (st, len(v), mean, pct(v, 50), pct(v, 90), pct(v, 99),
                   v[-1] if v else 0.0), file=out)
    print('lines that did not parse: %d' % bad, file=out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--owner', type=int, help='only this owner pid')
    ap.add_argument('trace', nargs='+', help='tracefs text, .gz, or -')
    a = ap.parse_args(argv)
    rc = 0
    for path in a.trace:
        queues = defaultdict(Queue)
        try:
            if path == '-':
                ev, bad = parse(sys.stdin, queues, a.owner)
            else:
                opener = gzip.open if path.endswith('.gz') else open
                with opener(path, 'rt', errors='replace') as f:
                    ev, bad = parse(f, queues, a.owner)
        except OSError as e:
            print('trace-breakdown: %s: %s' % (path, e.strerror or e), file=sys.stderr)
            return 2
        if len(a.trace) > 1:
            print('### %s' % path)
        if not ev:
            print('trace-breakdown: %s: no vhost_blk event' % path, file=sys.stderr)
            rc = 1
            continue
        report(queues, bad, sys.stdout)
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
