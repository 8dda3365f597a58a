#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests of trace-breakdown.py on made-up traces with known timings."""
import contextlib
import importlib.util
import io
import os
import tempfile
import unittest
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    'tb', os.path.join(HERE, '..', 'trace-breakdown.py'))
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)


def ev(t_us, name, owner=100, q=0, rest=''):
    """A line as /sys/kernel/tracing/trace prints it."""
    return ('       vblk-%d-%d-77     [001] d..1.  %.6f: vhost_blk_%s: owner=%d q=%d%s\n'
            % (owner, q, t_us / 1e6, name, owner, q, rest))


def run(lines, owner=None):
    queues = defaultdict(tb.Queue)
    n, bad = tb.parse(lines, queues, owner)
    return queues, n, bad


class Stages(unittest.TestCase):
    # One request: kick at 1000, pass 1010-1030, bio done inline at 1020,
    # status at 1050 (completion thread), signal at 1060 held 40 us, next
    # request read at 1200.
    TRACE = [
        '# tracer: nop\n',
        ev(1000, 'kick'),
        ev(1010, 'pass_start'),
        ev(1012, 'req_start', rest=' head=5 type=0 sector=8 len=4096'),
        ev(1020, 'req_io_done', rest=' head=5 status=0'),
        ev(1030, 'pass_end', rest=' taken=1 inflight=1 notify_held=1'),
        ev(1050, 'req_end', rest=' head=5 status=0'),
        ev(1055, 'publish', rest=' n=1 inflight=0'),
        ev(1060, 'signal', rest=' n=1 reached=1 held_ns=40000'),
        ev(1190, 'rekick'),
        ev(1195, 'pass_start'),
        ev(1200, 'req_start', rest=' head=6 type=1 sector=16 len=4096'),
        ev(1290, 'pass_end', rest=' taken=1 inflight=1 notify_held=1'),
        ev(1300, 'req_io_done', rest=' head=6 status=1'),
        ev(1310, 'req_end', rest=' head=6 status=1'),
    ]

    def test_stages(self):
        queues, n, bad = run(self.TRACE)
        self.assertEqual(14, n)
        self.assertEqual(0, bad)
        q = queues[(100, 0)]
        s = {k: [round(x, 3) for x in v] for k, v in q.samples.items()}
        self.assertEqual([10.0], s['kick->pass'])
        self.assertEqual([5.0], s['rekick->pass'])
        self.assertEqual([20.0, 95.0], s['pass'])
        self.assertEqual([8.0, 100.0], s['req->io_done'])
        self.assertEqual([30.0, 10.0], s['io_done->end'])
        self.assertEqual([38.0, 110.0], s['req->end'])
        self.assertEqual([40.0], s['signal_hold'])
        self.assertEqual([140.0], s['signal->req'])
        # the first ended inside its pass, the second after it
        self.assertEqual(1, q.inline)
        self.assertEqual(2, q.count['taken'])
        self.assertEqual(1, q.signal_n)

    def test_report(self):
        queues, _, bad = run(self.TRACE)
        out = io.StringIO()
        tb.report(queues, bad, out)
        text = out.getvalue()
        self.assertIn('2 requests, 2 passes (1.00 requests a pass), 1 kicks, 1 rekicks, '
                      '1 signals (1.00 entries a signal), 50.0 % of requests ended '
                      'inside their pass', text)
        row = [l for l in text.splitlines() if l.startswith('req->end')][0].split()
        self.assertEqual(['req->end', '2', '74.0', '38.0', '110.0', '110.0', '110.0'], row)
        self.assertIn('lines that did not parse: 0', text)


class Parsing(unittest.TestCase):
    def test_queues_and_owner_apart(self):
        lines = [ev(10, 'kick', owner=1, q=0), ev(20, 'kick', owner=1, q=1),
                 ev(30, 'kick', owner=2, q=0), ev(40, 'pass_start', owner=1, q=1)]
        queues, n, _ = run(lines)
        self.assertEqual(4, n)
        self.assertEqual({(1, 0), (1, 1), (2, 0)}, set(queues))
        # q1's pass answers q1's kick only
        self.assertEqual([20.0], [round(x, 3) for x in queues[(1, 1)].samples['kick->pass']])
        self.assertEqual([], queues[(1, 0)].samples['kick->pass'])
        queues, n, _ = run(lines, owner=2)
        self.assertEqual(1, n)
        self.assertEqual({(2, 0)}, set(queues))

    def test_bad_lines_counted(self):
        lines = ['  foo [000] 1.0: vhost_blk_kick: garbage\n',
                 ev(10, 'req_start', rest=' type=0'),      # no head
                 'unrelated line\n', ev(20, 'kick')]
        _, n, bad = run(lines)
        self.assertEqual(1, n)
        self.assertEqual(2, bad)

    def test_unmatched_ends_ignored(self):
        # an end whose start was before the trace: no sample, no crash
        queues, n, _ = run([ev(5, 'req_io_done', rest=' head=1 status=0'),
                            ev(6, 'req_end', rest=' head=1 status=0'),
                            ev(7, 'pass_end', rest=' taken=3 inflight=0 notify_held=0')])
        self.assertEqual(3, n)
        q = queues[(100, 0)]
        self.assertEqual([], q.samples['req->end'])
        self.assertEqual([], q.samples['pass'])

    def test_pct(self):
        v = list(range(1, 101))
        self.assertEqual(50, tb.pct(v, 50))
        self.assertEqual(90, tb.pct(v, 90))
        self.assertEqual(99, tb.pct(v, 99))
        self.assertEqual(0.0, tb.pct([], 50))
        self.assertEqual(7, tb.pct([7], 99))


class Cli(unittest.TestCase):
    def main(self, argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = tb.main(argv)
        return rc, err.getvalue()

    def test_no_events_fails(self):
        with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
            f.write('# tracer: nop\n')
        try:
            rc, err = self.main([f.name])
            self.assertEqual(1, rc)
            self.assertEqual('trace-breakdown: %s: no vhost_blk event\n' % f.name, err)
        finally:
            os.unlink(f.name)

    def test_missing_file(self):
        rc, err = self.main(['/nonexistent/trace'])
        self.assertEqual(2, rc)
        self.assertEqual(1, len(err.splitlines()))


def sw(t_us, cpu, prev, ppid, state, nxt, npid):
    """A sched_switch line (task names may hold spaces)."""
    return ('%16s-%-7d [%03d] d..2. %12.6f: sched_switch: prev_comm=%s prev_pid=%d '
            'prev_prio=120 prev_state=%s ==> next_comm=%s next_pid=%d next_prio=120\n'
            % (prev, ppid, cpu, t_us / 1e6, prev, ppid, state, nxt, npid))


def wk(t_us, comm, pid, cpu=0):
    """A sched_wakeup line."""
    return ('          <idle>-0       [%03d] dNh4. %12.6f: sched_wakeup: comm=%s pid=%d '
            'prio=120 target_cpu=%03d\n' % (cpu, t_us / 1e6, comm, pid, cpu))


def kick(t_us, cpu, owner=100, q=0, comm='CPU 0/KVM-264'):
    """A vhost_blk_kick line logged on cpu by the vCPU thread comm-pid."""
    return ('%16s     [%03d] d..1. %12.6f: vhost_blk_kick: owner=%d q=%d\n'
            % (comm, cpu, t_us / 1e6, owner, q))


def kick_rows(sched):
    """sched's kick table: row -> [(us, us, us) rounded, or None]."""
    return {r: [x and tuple(y and round(y, 3) for y in x) for x in v]
            for r, v in sched.kicks.items()}


def run_sched(lines, owner=None):
    queues, sched = defaultdict(tb.Queue), tb.Sched(owner)
    n, bad = tb.parse(lines, queues, owner, sched)
    out = io.StringIO()
    tb.report(queues, bad, out, sched)
    return sched, bad, out.getvalue()


class Scheduler(unittest.TestCase):
    def test_cpu_shares(self):
        # span 1000..2000 on 2 CPUs (2000 us); CPU1 idled before its first
        # switch.  cpu0: submit 1000-1400, vcpu 1400-1800, idle 1800-2000;
        # cpu1: idle 1000-1200, compl 1200-1500, kworker 1500-1700, idle
        # 1700-2000.  Both idle 1800-2000.
        lines = [ev(500, 'kick'),
                 sw(1000, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77),
                 sw(1200, 1, 'swapper/1', 0, 'R', 'vblkc-100-0', 76),
                 sw(1400, 0, 'vblk-100-0', 77, 'S', 'CPU 0/KVM', 264),
                 sw(1500, 1, 'vblkc-100-0', 76, 'S', 'kworker/1:1', 30),
                 sw(1700, 1, 'kworker/1:1', 30, 'I', 'swapper/1', 0),
                 sw(1800, 0, 'CPU 0/KVM', 264, 'S', 'swapper/0', 0),
                 sw(2000, 1, 'swapper/1', 0, 'R', 'kworker/u4:2', 31)]
        sched, bad, text = run_sched(lines)
        self.assertEqual(0, bad)
        cpu, both = sched.summary()
        by = defaultdict(float)
        for (cls, _), us in cpu.items():
            by[cls] += us
        self.assertEqual({'submit': 400, 'completion': 300, 'vcpu': 400, 'idle': 700,
                          'other': 200}, {k: round(v, 3) for k, v in by.items()})
        self.assertAlmostEqual(2000, sum(by.values()), places=3)
        self.assertAlmostEqual(200, both, places=3)
        self.assertAlmostEqual(200, cpu[('other', 'kworker')], places=3)
        rows = {l.split()[0]: l.split()[1:] for l in text.splitlines() if len(l.split()) == 3}
        self.assertIn('== scheduler (sched_switch/sched_wakeup in the trace): 2 CPUs, '
                      '1.0 ms span, 7 switches', text)
        self.assertEqual(['0.4', '20.0'], rows['submit'])
        self.assertEqual(['0.3', '15.0'], rows['completion'])
        self.assertEqual(['0.4', '20.0'], rows['vcpu'])
        self.assertEqual(['0.7', '35.0'], rows['idle'])
        self.assertEqual(['0.2', '10.0'], rows['other'])
        self.assertEqual(['0.2', '10.0'], rows['kworker'])
        self.assertIn('all CPUs idle             0.2    20.0  (of the span)', text)

    def test_off_cpu_in_pass(self):
        # submit thread 77 in a pass 1100-1500: preempted by the completion
        # thread 1200-1250 (R+), asleep on a mutex 1300-1340 (D).  Its sleep
        # at 1600 is outside a pass; the pass at 1800 ends after the last
        # switch, outside the span.
        lines = [sw(1000, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77),
                 ev(1100, 'pass_start'),
                 sw(1200, 0, 'vblk-100-0', 77, 'R+', 'vblkc-100-0', 76),
                 sw(1250, 0, 'vblkc-100-0', 76, 'S', 'vblk-100-0', 77),
                 sw(1300, 0, 'vblk-100-0', 77, 'D', 'swapper/0', 0),
                 wk(1330, 'vblk-100-0', 77),
                 sw(1340, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77),
                 ev(1500, 'pass_end', rest=' taken=0 inflight=0 notify_held=0'),
                 sw(1600, 0, 'vblk-100-0', 77, 'S', 'swapper/0', 0),
                 sw(1700, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77),
                 ev(1800, 'pass_start'),
                 ev(1900, 'pass_end', rest=' taken=0 inflight=0 notify_held=0')]
        sched, bad, text = run_sched(lines)
        self.assertEqual(0, bad)
        n = sched.n
        self.assertEqual(1, n['passes'])
        self.assertAlmostEqual(400, n['pass'], places=3)
        self.assertAlmostEqual(50, n[('off', 'completion', 'R')], places=3)
        self.assertEqual(1, n[('offn', 'completion', 'R')])
        self.assertAlmostEqual(40, n[('off', 'idle', 'D')], places=3)
        self.assertEqual(1, n[('offn', 'idle', 'D')])
        self.assertEqual(2, len([k for k in n if k[0] == 'off']))
        self.assertIn('submit passes: 1, 0.4 ms wall, 0.1 ms of it off CPU (22.5 %)', text)
        rows = [l.split() for l in text.splitlines()]
        self.assertIn(['completion', 'R', '0.1', '1'], rows)
        self.assertIn(['idle', 'D', '0.0', '1'], rows)

    def test_per_request_ratios(self):
        # 4 requests inside the span (one before the first switch and one
        # after the last do not count); 1 submit and 2 completion wake-ups
        # (one other ignored); vCPUs preempted by ours twice, by a kworker
        # once, and one vCPU that slept.
        req = lambda t, h: ev(t, 'req_start', rest=' head=%d type=0 sector=8 len=4096' % h)
        lines = [req(900, 1), wk(950, 'vblkc-100-0', 76),
                 sw(1000, 0, 'CPU 0/KVM', 264, 'R+', 'vblkc-100-0', 76),
                 req(1010, 2), req(1020, 3), wk(1030, 'vblkc-100-0', 76),
                 wk(1040, 'vblkc-100-0', 76), wk(1050, 'vblk-100-0', 77),
                 wk(1060, 'kworker/0:1', 30),
                 sw(1100, 1, 'CPU 1/KVM', 265, 'R', 'vblk-100-0', 77),
                 sw(1200, 0, 'CPU 0/KVM', 264, 'R+', 'kworker/0:1', 30),
                 sw(1300, 1, 'CPU 1/KVM', 265, 'S', 'vblk-100-0', 77),
                 req(1310, 4), req(1320, 5),
                 sw(1400, 0, 'kworker/0:1', 30, 'I', 'swapper/0', 0),
                 req(1410, 6), wk(1420, 'vblk-100-0', 77)]
        sched, bad, text = run_sched(lines)
        self.assertEqual(0, bad)
        self.assertEqual(4, sched.n['req'])
        self.assertIn('per request (4): 0.250 submit wake-ups, 0.500 completion wake-ups, '
                      '0.500 vCPU preemptions by our threads (0.750 by any task)', text)
        # only owner 100's threads are ours with --owner 100; owner 7's are other
        other = [l.replace('-100-', '-7-') if 'sched_' in l else l for l in lines]
        sched, _, text = run_sched(other, owner=100)
        self.assertIn('per request (4): 0.000 submit wake-ups, 0.000 completion wake-ups, '
                      '0.000 vCPU preemptions by our threads (0.750 by any task)', text)

    def test_comm_with_space_and_bad_lines(self):
        self.assertEqual(
            ('switch', 50000961.0, 0, 'vblkc-259-1', 271, 'S', 'CPU 0/KVM', 264),
            tb.sched_event('     vblkc-259-1-271     [000] d..2.    50.000961: sched_switch: '
                           'prev_comm=vblkc-259-1 prev_pid=271 prev_prio=120 prev_state=S '
                           '==> next_comm=CPU 0/KVM next_pid=264 next_prio=120\n'))
        self.assertEqual(
            ('switch', 50001500.0, 1, 'CPU 0/KVM', 264, 'R+', 'vblk-259-0', 269),
            tb.sched_event('       CPU 0/KVM-264     [001] d..2.    50.001500: sched_switch: '
                           'prev_comm=CPU 0/KVM prev_pid=264 prev_prio=120 prev_state=R+ '
                           '==> next_comm=vblk-259-0 next_pid=269 next_prio=120\n'))
        self.assertEqual(
            ('wakeup', 50006500.0, 'CPU 0/KVM', 264),
            tb.sched_event('          <idle>-0       [000] dNh4.    50.006500: sched_wakeup: '
                           'comm=CPU 0/KVM pid=264 prio=120 target_cpu=000\n'))
        self.assertEqual(('vcpu', None), tb.classify('CPU 0/KVM'))
        self.assertEqual(('other', 'kworker'), tb.classify('kworker/u4:2'))
        # a vhost_blk event from a vCPU thread is still ours to count
        lines = [sw(1000, 0, 'swapper/0', 0, 'R', 'CPU 0/KVM', 264),
                 ev(1010, 'kick').replace('vblk-100-0-77', 'CPU 0/KVM-264'),
                 sw(1100, 0, 'CPU 0/KVM', 264, 'R+', 'vblk-100-0', 77),
                 '  CPU 0/KVM-264 [000] d..2. 1.0: sched_switch: prev_comm=CPU 0/KVM\n',
                 '  x-1 [000] d..2. 1.0: sched_wakeup: garbage\n',
                 '  x-1 [000] d..2. 1.0: sched_waking: comm=a pid=1 prio=120 target_cpu=000\n',
                 'unrelated line\n',
                 sw(1200, 0, 'vblk-100-0', 77, 'S', 'CPU 0/KVM', 264)]
        queues, sched = defaultdict(tb.Queue), tb.Sched()
        n, bad = tb.parse(lines, queues, None, sched)
        self.assertEqual((1, 2), (n, bad))
        self.assertEqual(1, queues[(100, 0)].count['kick'])
        self.assertEqual(1, sched.n['vcpu R ours'])
        cpu, _ = sched.summary()
        self.assertAlmostEqual(100, cpu[('vcpu', None)], places=3)
        self.assertAlmostEqual(100, cpu[('submit', None)], places=3)

    def test_kick_woken_idle_other_cpu_and_no_wakeup(self):
        # cpu0 idles from 1000; a vCPU on cpu1 kicks q0 at 2000 (and again
        # at 2050: the first kick counts), the submit thread is woken onto
        # cpu0 at 2084, switched in at 2092, its pass starts at 2097.  The
        # kick at 2200 finds it awake (no wake-up before its pass at 2210).
        # The one at 2300 has it woken at 2310 while still on its CPU; it is
        # preempted at 2330, kicked at 2400, back at 2410 (no wake-up: that
        # is not the kick's switch in), asleep at 2415, woken at 2430.
        # The kick at 500, before the first switch, is ignored.
        lines = [kick(500, 1), wk(510, 'vblk-100-0', 77),
                 sw(1000, 0, 'vblk-100-0', 77, 'S', 'swapper/0', 0),
                 sw(1500, 1, 'swapper/1', 0, 'R', 'CPU 0/KVM', 264),
                 kick(2000, 1), kick(2050, 1), wk(2084, 'vblk-100-0', 77, cpu=0),
                 sw(2092, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77),
                 ev(2097, 'pass_start'), kick(2200, 1), ev(2210, 'pass_start'),
                 kick(2300, 1), wk(2310, 'vblk-100-0', 77, cpu=0), ev(2320, 'pass_start'),
                 sw(2330, 0, 'vblk-100-0', 77, 'R+', 'kworker/0:1', 30), kick(2400, 1),
                 sw(2410, 0, 'kworker/0:1', 30, 'S', 'vblk-100-0', 77),
                 sw(2415, 0, 'vblk-100-0', 77, 'S', 'swapper/0', 0),
                 wk(2430, 'vblk-100-0', 77, cpu=0),
                 sw(2440, 0, 'swapper/0', 0, 'R', 'vblk-100-0', 77), ev(2445, 'pass_start')]
        sched, bad, text = run_sched(lines)
        self.assertEqual(0, bad)
        self.assertEqual({'other CPU, idle': [(84, 8, 5), (30, 10, 5)], 'no wake-up': [None],
                          'woken, no switch': [(10, None, None)]},
                         kick_rows(sched))
        rows = text.splitlines()
        i = rows.index([l for l in rows if l.startswith('kick woken on')][0])
        # by count, rows of equal count in name order
        self.assertEqual([['other', 'CPU,', 'idle', '50.0', '%', '2', '30', '8', '(', '9)', '5'],
                          ['no', 'wake-up', '25.0', '%', '1'],
                          ['woken,', 'no', 'switch', '25.0', '%', '1', '10']],
                         [l.split() for l in rows[i + 1:i + 4]])

    def test_kick_woken_same_cpu_preempting_vcpu(self):
        # CPU 1/KVM runs on cpu1 and kicks q1 at 3000; the submit thread is
        # woken onto cpu1 at 3020 and preempts the vCPU at 3032; its pass
        # starts at 3049.  Owner 7's kick and wake-up are another owner's:
        # apart without --owner, not there with --owner 100.
        lines = [sw(1000, 1, 'swapper/1', 0, 'R', 'CPU 1/KVM', 265),
                 sw(1000, 0, 'swapper/0', 0, 'R', 'vblk-7-1', 90),
                 kick(2990, 1, owner=7, comm='CPU 1/KVM-265'),
                 kick(3000, 1, q=1, comm='CPU 1/KVM-265'),
                 wk(3020, 'vblk-100-1', 78, cpu=1),
                 sw(3032, 1, 'CPU 1/KVM', 265, 'R+', 'vblk-100-1', 78),
                 wk(3040, 'vblk-7-0', 91, cpu=0),
                 ev(3049, 'pass_start', q=1),
                 sw(3050, 0, 'vblk-7-1', 90, 'S', 'vblk-7-0', 91),
                 ev(3060, 'pass_start', owner=7)]
        sched, bad, text = run_sched(lines, owner=100)
        self.assertEqual(0, bad)
        self.assertEqual({'same CPU, vCPU': [(20, 12, 17)]},
                         kick_rows(sched))
        self.assertIn('\nsame CPU, vCPU       100.0 %      1                20'
                      '                  12 (   12)                17\n', text)
        # without --owner, owner 7's kick of q0 (cpu1) is woken 50 us later
        # onto cpu0, where its q1 thread runs (ours), and is on it 10 us on
        sched, _, _ = run_sched(lines)
        self.assertEqual({'same CPU, vCPU': [(20, 12, 17)], 'other CPU, ours': [(50, 10, 10)]},
                         kick_rows(sched))

    # the tool's whole output for Stages.TRACE as it was before the
    # scheduler section
    BEFORE = (
        '== owner 100 q 0: 2 requests, 2 passes (1.00 requests a pass), 1 kicks, 1 rekicks, '
        '1 signals (1.00 entries a signal), 50.0 % of requests ended inside their pass\n'
        'stage (us)        count       mean        p50        p90        p99        max\n'
        'kick->pass            1       10.0       10.0       10.0       10.0       10.0\n'
        'rekick->pass          1        5.0        5.0        5.0        5.0        5.0\n'
        'pass                  2       57.5       20.0       95.0       95.0       95.0\n'
        'req->io_done          2       54.0        8.0      100.0      100.0      100.0\n'
        'io_done->end          2       20.0       10.0       30.0       30.0       30.0\n'
        'req->end              2       74.0       38.0      110.0      110.0      110.0\n'
        'signal_hold           1       40.0       40.0       40.0       40.0       40.0\n'
        'signal->req           1      140.0      140.0      140.0      140.0      140.0\n'
        'lines that did not parse: 0\n')

    def test_no_sched_output_unchanged(self):
        with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
            f.writelines(Stages.TRACE + ['unrelated line\n'])
        try:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(0, tb.main([f.name]))
            self.assertEqual(self.BEFORE, out.getvalue())
        finally:
            os.unlink(f.name)
        self.assertEqual(self.BEFORE, run_sched(Stages.TRACE)[2])
        self.assertNotIn('scheduler', run_sched(Stages.TRACE + [wk(1001, 'vblk-100-0', 77)])[2])


if __name__ == '__main__':
    unittest.main()
