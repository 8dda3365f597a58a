# SPDX-License-Identifier: GPL-2.0
"""Unit tests of vhost-blk-stat on fake debugfs trees (no module needed)."""
import contextlib
import importlib.machinery
import importlib.util
import io
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_loader = importlib.machinery.SourceFileLoader(
    "vhost_blk_stat", os.path.join(HERE, "..", "vhost-blk-stat"))
_spec = importlib.util.spec_from_loader("vhost_blk_stat", _loader)
vbs = importlib.util.module_from_spec(_spec)
_loader.exec_module(vbs)

HEAD = " ".join(vbs.HEADER)


def qline(queue, running=1, inflight=0, kicks=0, rounds=0, requests=0,
          completed=0, publishes=0, poll_ns=0, depth=0, target=0):
    return ("%d 1 %d %d %d %d %d %d %d 0 0 0 0 %d 200000 %d %d 0"
            % (queue, running, inflight, kicks, rounds, requests, completed,
               publishes, poll_ns, depth, target))


def qfile(owner, *lines):
    return "owner %d\n%s\n%s\n" % (owner, HEAD, "\n".join(lines))


class Tree:
    """A fake /sys/kernel/debug/vhost-blk."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="vbs-")
        with open(os.path.join(self.root, "counters"), "w") as f:
            f.write("devices 0\n")

    def put(self, name, text):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "queues"), "w") as f:
            f.write(text)

    def drop(self, name):
        shutil.rmtree(os.path.join(self.root, name))

    def close(self):
        shutil.rmtree(self.root)


def run(argv, sleep=None):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = vbs.main(argv, out=out, sleep=sleep or (lambda s: None))
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def table_rows(text):
    """Data rows of the last table in @text, split into columns."""
    block = text.strip().split("\n\n")[-1].splitlines()
    return [line.split() for line in block[1:]]


class ParseTest(unittest.TestCase):
    def test_parse_good(self):
        owner, qs = vbs.parse_queues(qfile(
            4711, qline(0, requests=10, completed=9), qline(1, running=0)))
        self.assertEqual(4711, owner)
        self.assertEqual(2, len(qs))
        self.assertEqual(10, qs[0]["requests"])
        self.assertEqual(9, qs[0]["completed"])
        self.assertEqual(0, qs[1]["running"])
        self.assertEqual(200000, qs[1]["batch_max_ns"])

    def test_parse_rejects(self):
        bad = [
            "",
            "queue x\n",
            "owner x\n%s\n" % HEAD,
            "owner 1\nqueue enabled\n",
            qfile(1, "0 1 1"),
            qfile(1, qline(1)),
            qfile(1, qline(0).replace(" 200000 ", " 2e5 ")),
        ]
        for text in bad:
            with self.assertRaises(vbs.StatError, msg=repr(text)):
                vbs.parse_queues(text)


class ModuleFormatTest(unittest.TestCase):
    def test_header_matches_module(self):
        """The header this tool expects is the one blk_stats.c prints."""
        src = os.path.join(HERE, "..", "..", "..", "drivers", "vhost",
                           "blk_stats.c")
        with open(src) as f:
            text = f.read()
        want = 'seq_puts(m, "%s\\n");' % HEAD
        self.assertIn(want, text)
        # and the queue line has one conversion per column
        start = text.index('seq_printf(m, "%u %d %d %u')
        fmt = text[start:text.index('\\n"', start)]
        self.assertEqual(len(vbs.HEADER), fmt.count("%"))


class MainTest(unittest.TestCase):
    def setUp(self):
        self.t = Tree()

    def tearDown(self):
        self.t.close()

    def test_totals(self):
        self.t.put("3", qfile(100, qline(0, kicks=10, requests=180,
                                         completed=180, publishes=12,
                                         depth=18, target=36),
                              qline(1, running=0)))
        self.t.put("12", qfile(200, qline(0, kicks=4, requests=4,
                                          completed=3, publishes=3,
                                          inflight=1)))
        rc, out, err = run(["--root", self.t.root])
        self.assertEqual((0, ""), (rc, err))
        rows = table_rows(out)
        # numeric order of devices; queue 1 of device 3 is not running
        self.assertEqual([["3", "100", "0", "180", "10", "12", "18.0",
                           "15.0", "0", "0", "18/36"],
                          ["12", "200", "0", "3", "4", "3", "1.0", "1.0",
                           "1", "0", "0/0"]], rows)
        self.assertIn("ios", out.splitlines()[0].split())
        rc, out, _ = run(["--root", self.t.root, "--all"])
        self.assertEqual(3, len(table_rows(out)))

    def test_rates(self):
        self.t.put("1", qfile(7, qline(0, kicks=100, requests=1000,
                                       completed=990, publishes=50)))
        calls = []

        def sleep(s):
            calls.append(s)
            # during the interval: 400 requests in 20 kicks, 400
            # completions in 10 signals
            self.t.put("1", qfile(7, qline(0, kicks=120, requests=1400,
                                           completed=1390, publishes=60,
                                           inflight=10, poll_ns=4000,
                                           depth=40, target=40)))

        rc, out, err = run(["--root", self.t.root, "2"], sleep=sleep)
        self.assertEqual((0, ""), (rc, err))
        self.assertEqual([2.0], calls)
        self.assertIn("io/s", out.splitlines()[0].split())
        self.assertEqual([["1", "7", "0", "200", "10", "5", "20.0", "40.0",
                           "10", "4000", "40/40"]], table_rows(out))

    def test_devices_come_and_go(self):
        self.t.put("1", qfile(7, qline(0, kicks=1, requests=1, completed=1,
                                       publishes=1)))

        def sleep(s):
            self.t.drop("1")
            self.t.put("2", qfile(8, qline(0, kicks=5, requests=50,
                                           completed=50, publishes=5)))

        rc, out, _ = run(["--root", self.t.root, "1"], sleep=sleep)
        self.assertEqual(0, rc)
        # the new device has no earlier sample: its totals
        self.assertEqual([["2", "8", "0", "50", "5", "5", "10.0", "10.0",
                           "0", "0", "0/0"]], table_rows(out))

    def test_count(self):
        self.t.put("1", qfile(7, qline(0)))
        rc, out, _ = run(["--root", self.t.root, "0.5", "3"])
        self.assertEqual(0, rc)
        self.assertEqual(3, sum(1 for line in out.splitlines()
                                if line.split()[:1] == ["dev"]))

    def test_missing_root(self):
        rc, out, err = run(["--root", os.path.join(self.t.root, "nope")])
        self.assertEqual(1, rc)
        self.assertEqual("", out)
        self.assertEqual(1, len(err.splitlines()))
        self.assertIn("not found", err)

    def test_bad_file(self):
        self.t.put("1", "owner 1\nsomething else\n")
        rc, _, err = run(["--root", self.t.root])
        self.assertEqual(1, rc)
        self.assertIn("unknown header", err)
        self.assertEqual(1, len(err.splitlines()))

    def test_bad_arguments(self):
        for argv in (["0"], ["-1"], ["x"], ["1", "-2"], ["1", "y"],
                     ["--bogus"]):
            rc, out, err = run(["--root", self.t.root] + argv)
            self.assertEqual(2, rc, argv)
            self.assertEqual("", out)
            self.assertEqual(1, len(err.splitlines()), (argv, err))
            self.assertTrue(err.startswith("vhost-blk-stat: error: "), err)


if __name__ == "__main__":
    unittest.main()
