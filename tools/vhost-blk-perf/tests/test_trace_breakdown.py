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


if __name__ == '__main__':
    unittest.main()
