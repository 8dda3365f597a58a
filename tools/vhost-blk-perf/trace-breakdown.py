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
When the trace also holds sched:sched_switch and sched:sched_wakeup, a
scheduler section follows, over the span from the first to the last
switch: the CPU share of submit, completion, vCPU, idle and other threads,
and how long all CPUs were idle at once.  It splits the time submit
threads spent off their CPU inside a pass by the class that took the CPU
and the state they left in (R: preempted, else asleep), and gives submit
and completion wake-ups and vCPU preemptions by our threads per request.
A last table follows each kick (the first since its queue's last pass) to
the submit thread's wake-up, its switch in and its pass start, by whether
it was woken on the kick's CPU and what ran there then (idle, vCPU, ours,
other), or counts it under "no wake-up" when it was already awake.
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
SCHED = re.compile(r'\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+):\s+(sched_switch|sched_wakeup):\s+(.*?)\s*$')
SWITCH = re.compile(r'prev_comm=(.*) prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) '
                    r'==> next_comm=(.*) next_pid=(\d+) next_prio=-?\d+$')
WAKEUP = re.compile(r'comm=(.*) pid=(\d+) prio=-?\d+ target_cpu=\d+$')
TASK = re.compile(r'-(\d+)\s+\[(\d+)\]')   # pid and cpu in "comm-pid [cpu]"
TARGET = re.compile(r'target_cpu=(\d+)\s*$')
SUBMIT = re.compile(r'vblk-(\d+)-(\d+)$')   # a submit thread: owner, queue
WOKEN_ON = {'idle': 'idle', 'vcpu': 'vCPU', 'submit': 'ours', 'completion': 'ours',
            'other': 'other'}
CLASSES = ('submit', 'completion', 'vcpu', 'idle', 'other')


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


def sched_event(line):
    """('switch', t, cpu, prev_comm, prev_pid, prev_state, next_comm,
    next_pid) or ('wakeup', t, comm, pid) from a sched line, else None."""
    m = SCHED.search(line)
    if not m:
        return None
    t = float(m.group(2)) * 1e6
    if m.group(3) == 'sched_switch':
        f = SWITCH.match(m.group(4))
        return f and ('switch', t, int(m.group(1)), f.group(1), int(f.group(2)),
                      f.group(3), f.group(4), int(f.group(5)))
    f = WAKEUP.match(m.group(4))
    return f and ('wakeup', t, f.group(1), int(f.group(2)))


def classify(comm, owner=None):
    """(class, group) of a task by its comm; group names an "other" one."""
    m = re.match(r'(vblkc?)-(\d+)-\d+$', comm)
    if m and (owner is None or int(m.group(2)) == owner):
        return ('completion' if m.group(1) == 'vblkc' else 'submit'), None
    if re.match(r'CPU \d+/KVM$', comm):
        return 'vcpu', None
    if re.match(r'swapper(/\d+)?$', comm):
        return 'idle', None
    return 'other', comm.split('/')[0]


class Sched:
    """sched_switch/sched_wakeup events and the submit passes, folded into
    CPU time by class and off-CPU time in passes.  The span is the first to
    the last switch: a count waits in pending until a later switch."""

    def __init__(self, owner=None):
        self.owner = owner
        self.t0 = self.t1 = None
        self.last = {}                  # cpu -> time of its last switch
        self.cur = {}                   # cpu -> (class, group) since then
        self.cpu = defaultdict(float)   # (class, group) -> us on a CPU
        self.idle = []                  # (start, end) of a CPU's idle time
        self.passes = {}                # submit pid -> (start, its counts)
        self.away = {}                  # pid -> (t, class in, state) in a pass
        self.n = defaultdict(float)
        self.pending = defaultdict(float)
        self.kick = {}                  # (owner, q) -> its first kick since a pass
        self.woken = {}                 # submit pid -> (owner, q) woken for a kick
        self.kicks = defaultdict(list)  # row -> (kick->wakeup, ->on-cpu, ->pass)

    def switch(self, t, cpu, pcomm, ppid, state, ncomm, npid):
        if self.t0 is None:
            self.t0 = t
        self.t1 = t
        for k, v in self.pending.items():
            self.n[k] += v
        self.pending.clear()
        self.n['switches'] += 1
        prev, nxt = classify(pcomm, self.owner), classify(ncomm, self.owner)
        since = self.last.get(cpu, self.t0)   # before its first: prev ran
        self.cpu[prev] += t - since
        if prev[0] == 'idle':
            self.idle.append((since, t))
        self.last[cpu], self.cur[cpu] = t, nxt
        k = self.kick.get(self.woken.pop(npid, None))
        if k is not None and k['on'] is None:
            k['on'] = t
        st = 'R' if state.startswith('R') else state
        if prev[0] == 'vcpu' and st == 'R':
            self.n['vcpu R'] += 1
            if nxt[0] in ('submit', 'completion'):
                self.n['vcpu R ours'] += 1
        if ppid in self.passes:
            self.away[ppid] = (t, nxt[0], st)
        back = self.away.pop(npid, None)
        if back and npid in self.passes:
            counts = self.passes[npid][1]
            counts[('off',) + back[1:]] += t - back[0]
            counts[('offn',) + back[1:]] += 1

    def wakeup(self, t, comm, pid, target=None):
        cls = classify(comm, self.owner)[0]
        if self.t0 is not None and cls in ('submit', 'completion'):
            self.pending['wake ' + cls] += 1
        m = SUBMIT.match(comm)
        key = m and (int(m.group(1)), int(m.group(2)))
        k = self.kick.get(key)
        if k is not None and k['wake'] is None:
            busy = self.cur.get(target)
            k.update(wake=t, target=target, pid=pid,
                     busy=WOKEN_ON[busy[0]] if busy else 'unknown')
            self.woken[pid] = key

    def vhost(self, t, name, pid, key=None, cpu=None):
        if self.t0 is None:
            return
        if name == 'req_start':
            self.pending['req'] += 1
        elif name == 'kick' and key not in self.kick:
            self.kick[key] = {'t': t, 'cpu': cpu, 'wake': None, 'on': None}
        elif name == 'pass_start':
            self.passes[pid] = (t, defaultdict(float))
            self.served(t, self.kick.pop(key, None))
        elif name == 'pass_end' and pid in self.passes:
            start, counts = self.passes.pop(pid)
            self.pending['pass'] += t - start
            self.pending['passes'] += 1
            for k, v in counts.items():
                self.pending[k] += v

    def served(self, t, k):
        """File kick k, whose pass started at t, under its row."""
        if k is None:
            return
        self.woken.pop(k.get('pid'), None)
        if k['wake'] is None:
            self.kicks['no wake-up'].append(None)
        elif k['on'] is None:       # woken while still on its CPU
            self.kicks['woken, no switch'].append((k['wake'] - k['t'], None, None))
        else:
            row = '%s CPU, %s' % ('same' if k['target'] == k['cpu'] else 'other', k['busy'])
            self.kicks[row].append((k['wake'] - k['t'], k['on'] - k['wake'], t - k['on']))

    def summary(self):
        """(us by (class, group), us all CPUs were idle at once)."""
        cpu, idle = defaultdict(float, self.cpu), list(self.idle)
        for c, k in self.cur.items():
            cpu[k] += self.t1 - self.last[c]
            if k[0] == 'idle':
                idle.append((self.last[c], self.t1))
        edges = sorted([(s, 1) for s, e in idle] + [(e, -1) for s, e in idle])
        both = n = 0
        at = self.t0
        for t, d in edges:
            if n == len(self.last):
                both += t - at
            n, at = n + d, t
        return cpu, both


def report_sched(s, out):
    """The scheduler section: CPU shares, off-CPU in passes, per request."""
    cpu, both = s.summary()
    span, ncpu = s.t1 - s.t0, len(s.last)
    whole = max(span * ncpu, 1e-9)
    n = s.n
    print('== scheduler (sched_switch/sched_wakeup in the trace): %d CPUs, '
          '%.1f ms span, %d switches' % (ncpu, span / 1e3, n['switches']), file=out)
    print('%-18s %10s %7s' % ('cpu time', 'ms', '%'), file=out)
    for cls in CLASSES:
        us = sum(v for k, v in cpu.items() if k[0] == cls)
        print('%-18s %10.1f %7.1f' % (cls, us / 1e3, 100.0 * us / whole), file=out)
    for (cls, grp), us in sorted(cpu.items(), key=lambda kv: -kv[1]):
        if cls == 'other':
            print('  %-16s %10.1f %7.1f' % (grp, us / 1e3, 100.0 * us / whole), file=out)
    print('%-18s %10.1f %7.1f  (of the span)' % ('all CPUs idle', both / 1e3,
          100.0 * both / max(span, 1e-9)), file=out)
    off = sum(v for k, v in n.items() if k[0] == 'off')
    print('submit passes: %d, %.1f ms wall, %.1f ms of it off CPU (%.1f %%)'
          % (n['passes'], n['pass'] / 1e3, off / 1e3, 100.0 * off / max(n['pass'], 1e-9)),
          file=out)
    print('%-18s %-6s %10s %7s  (state R: preempted, else asleep)'
          % ('off CPU, taken by', 'state', 'ms', 'count'), file=out)
    for k in sorted((k for k in n if k[0] == 'off'), key=lambda k: -n[k]):
        print('%-18s %-6s %10.1f %7d' % (k[1], k[2], n[k] / 1e3, n[('offn',) + k[1:]]),
              file=out)
    reqs = max(n['req'], 1)
    print('per request (%d): %.3f submit wake-ups, %.3f completion wake-ups, '
          '%.3f vCPU preemptions by our threads (%.3f by any task)'
          % (n['req'], n['wake submit'] / reqs, n['wake completion'] / reqs,
             n['vcpu R ours'] / reqs, n['vcpu R'] / reqs), file=out)
    report_kicks(s.kicks, out)


def report_kicks(kicks, out):
    """Kicks by where their submit thread was woken, with its steps' us."""
    total = sum(len(v) for v in kicks.values())
    if not total:
        return
    print('%-20s %7s %6s %17s %26s %17s' % ('kick woken on', 'share', 'n', 'kick->wakeup p50',
                                              'wakeup->on-cpu p50 (mean)', 'on-cpu->pass p50'),
          file=out)
    for row, v in sorted(kicks.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        cols = ['%-20s %5.1f %% %6d' % (row, 100.0 * len(v) / total, len(v))]
        if v[0] is not None:
            step = [sorted(x[i] for x in v) for i in range(3)]
            cols.append('%17.0f' % pct(step[0], 50))
            if v[0][1] is not None:
                cols.append('%19.0f (%5.0f) %17.0f' % (pct(step[1], 50), sum(step[1]) / len(v),
                                                     pct(step[2], 50)))
        print(' '.join(cols), file=out)


def parse(lines, queues, owner=None, sched=None):
    """Feed trace lines to queues[(owner, q)], and sched lines to sched if
    given; return (vhost_blk events, bad lines)."""
    events = bad = 0
    for line in lines:
        if line.startswith('#'):
            continue
        if sched is not None and ('sched_switch:' in line or 'sched_wakeup:' in line):
            e = sched_event(line)
            if e is None:
                bad += 1
            elif e[0] == 'switch':
                sched.switch(*e[1:])
            else:
                sched.wakeup(*e[1:], target=int(TARGET.search(line).group(1)))
            continue
        if 'vhost_blk_' not in line:
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
        t = float(m.group(1)) * 1e6
        queues[(pid, q)].event(t, name, fields)
        events += 1
        task = sched is not None and TASK.search(line, 0, m.start() + 1)
        if task:
            sched.vhost(t, name, int(task.group(1)), (pid, q), int(task.group(2)))
    return events, bad


def report(queues, bad, out, sched=None):
    """Print one block per queue, then all queues together, then the
    scheduler section if sched saw a switch."""
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
    if sched is not None and sched.t0 is not None:
        report_sched(sched, out)
    print('lines that did not parse: %d' % bad, file=out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--owner', type=int, help='only this owner pid')
    ap.add_argument('trace', nargs='+', help='tracefs text, .gz, or -')
    a = ap.parse_args(argv)
    rc = 0
    for path in a.trace:
        queues, sched = defaultdict(Queue), Sched(a.owner)
        try:
            if path == '-':
                ev, bad = parse(sys.stdin, queues, a.owner, sched)
            else:
                opener = gzip.open if path.endswith('.gz') else open
                with opener(path, 'rt', errors='replace') as f:
                    ev, bad = parse(f, queues, a.owner, sched)
        except OSError as e:
            print('trace-breakdown: %s: %s' % (path, e.strerror or e), file=sys.stderr)
            return 2
        if len(a.trace) > 1:
            print('### %s' % path)
        if not ev:
            print('trace-breakdown: %s: no vhost_blk event' % path, file=sys.stderr)
            rc = 1
            continue
        report(queues, bad, sys.stdout, sched)
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
