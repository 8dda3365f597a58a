#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests of bench_guest.py on the canned run in testdata/run:
python3 -m unittest (or make -C tools/testing/bench-guest test)."""

import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stdout

import bench_guest as bg

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "testdata", "run")


class Parsers(unittest.TestCase):
    def test_fio_json_after_a_warning(self):
        m = bg.parse_fio(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/gio/qd1.json"))
        self.assertEqual(m["iops"], 3000)
        self.assertEqual(m["p50_us"], 300)
        self.assertEqual(m["p99_us"], 900)

    def test_fio_missing(self):
        self.assertIsNone(bg.parse_fio(os.path.join(RUN, "nothing.json")))

    def test_vq_lines_old_and_new_format(self):
        vq = bg.parse_vq(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/backend.log"))
        self.assertEqual(vq[("rr32", "pre")][0]["requests"], 1000)
        self.assertEqual(vq[("rr32", "pre")][0]["polls"], 0)
        self.assertEqual(vq[("rr32", "post")][1]["polls"], 7)
        self.assertEqual(vq[("rr32", "post")][1]["poll_hits"], 5)
        # a "stopped" line after the last marker is not a snapshot
        self.assertEqual(vq[("rr32", "post")][0]["requests"], 121000)
        d = bg.vq_delta(vq, "rr32")
        self.assertEqual((d["requests"], d["kicks"], d["completions"], d["updates"]),
                         (240000, 20000, 240000, 40000))

    def test_cpu_new_thread_and_ticks(self):
        s = bg.parse_snaps(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/snaps.txt"))
        ns, wall = bg.cpu_ns(s, "rr32")
        # 2.4 s of vblk-400-0, 0.6 s of vblkc-400-1 (absent at pre)
        self.assertAlmostEqual(ns, 3.0e9)
        self.assertAlmostEqual(wall, 12e9)
        self.assertIsNone(bg.cpu_ns(s, "rr32", "qemu")[0])
        # without schedstat: ticks at hz
        s[("x", "pre")] = {"up": 0.0, "tasks": {"1": ("be", "c", 10, None)}}
        s[("x", "post")] = {"up": 1.0, "tasks": {"1": ("be", "c", 60, None)}}
        self.assertAlmostEqual(bg.cpu_ns(s, "x", hz=100)[0], 0.5e9)


    def test_kvm_counters_per_io(self):
        s = bg.parse_snaps(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/snaps.txt"))
        self.assertEqual(s[("qd1", "post")]["kvm"]["exits"], 73000)
        k = bg.kvm_per_io(s, "qd1", 36000)
        self.assertEqual(k, {"kvm_exits": 2.0, "kvm_halts": 1.0, "kvm_notify_exits": 1.0,
                             "kvm_injections": 1.0, "kvm_halt_poll_us": 60.0,
                             "kvm_halt_wait_us": 100.0})
        # a job without the counters (rr32), or without I/O: nothing
        self.assertEqual(bg.kvm_per_io(s, "rr32", 240000), {})
        self.assertEqual(bg.kvm_per_io(s, "qd1", 0), {})
        # a counter missing at either end leaves out what needs it
        del s[("qd1", "pre")]["kvm"]["halt_poll_fail_ns"]
        k = bg.kvm_per_io(s, "qd1", 36000)
        self.assertNotIn("kvm_halt_poll_us", k)
        self.assertEqual(k["kvm_halts"], 1.0)


    def test_kvm_hist(self):
        h = bg.parse_kvm_hist(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/kvm-exits-qd1.txt"))
        self.assertEqual(h, {"exit page-fault": 36000, "exit hlt": 12000, "exit 0x1092": 12,
                             "page-fault mmio": 30000, "page-fault 0x6": 6000,
                             "msr eoi write": 18000, "msr tsc-deadline read": 12,
                             "vector timer": 6000, "vector 0x26": 36000})
        self.assertIsNone(bg.parse_kvm_hist(os.path.join(RUN, "nothing.txt")))
        # the older kernels' field name
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        with open(os.path.join(d, "k.txt"), "w") as f:
            f.write("=== kvm_inj_virq\n{ irq:        253 } hitcount:          7\n")
        self.assertEqual(bg.parse_kvm_hist(os.path.join(d, "k.txt")), {"vector reschedule": 7})


class Clock(unittest.TestCase):
    def clock_of(self, text):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        p = os.path.join(d, "console.log")
        with open(p, "w") as f:
            f.write(text)
        return bg.outer_clock(p)

    def test_outer_clock(self):
        self.assertEqual(bg.outer_clock(os.path.join(RUN, "rep-1-vhost-blk/console.log")), "tsc")
        self.assertEqual(bg.outer_clock(os.path.join(RUN, "rep-1-qsd/console.log")),
                         "hpet (TSC: TSCs unsynchronized)")
        self.assertIsNone(bg.outer_clock(os.path.join(RUN, "rep-1-native/console.log")))
        self.assertIsNone(self.clock_of("[ 0.1] clocksource: hpet: mask: 0xffffffff\n"))
        # the watchdog gives up the TSC in the middle of the run
        self.assertEqual(self.clock_of(
            "[ 1.5] clocksource: Switched to clocksource tsc-early\n"
            "[ 2.8] clocksource: Switched to clocksource tsc\n"
            "[ 190.2] clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as "
            "unstable because the skew is too large:\n"
            "[ 190.3] clocksource: Switched to clocksource hpet\n"),
            "tsc, then hpet (watchdog: tsc unstable)")


class Meter(unittest.TestCase):
    """host-meter.py, the machine's pace beside the boots."""
    METER = os.path.join(HERE, "host-meter.py")

    def setUp(self):
        self.d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.d)

    def test_proc_stat(self):
        import importlib.util
        spec = importlib.util.spec_from_file_location("host_meter", self.METER)
        hm = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hm)
        p = os.path.join(self.d, "stat")
        with open(p, "w") as f:
            # user nice system idle iowait irq softirq steal guest guest_nice
            f.write("cpu  10 1 5 100 2 0 1 7 30 0\ncpu0 5 0 2 50 1 0 0 3 15 0\n")
        self.assertEqual(hm.cpu_ticks(p), (7, 126))
        self.assertEqual(hm.spin_rate(0), 0.0)
        self.assertGreater(hm.spin_rate(2), 0.0)

    def test_lines_and_bad_arguments(self):
        log = os.path.join(self.d, "meter.log")
        p = subprocess.Popen([sys.executable, self.METER, log, "--interval", "0.1", "--spin-ms", "2"])
        # three lines, however loaded the machine (the first check's
        # debug-kernel build may run beside this)
        deadline = time.time() + 20
        while time.time() < deadline:
            time.sleep(0.2)
            if os.path.exists(log):
                with open(log) as f:
                    if len(f.readlines()) >= 3:
                        break
        p.terminate()
        self.assertEqual(p.wait(), 0)   # SIGTERM is its normal end
        with open(log) as f:
            lines = [ln.split() for ln in f]
        self.assertGreaterEqual(len(lines), 3)
        self.assertTrue(all(len(w) == 4 and float(w[3]) > 0 for w in lines), lines)
        ts = [float(w[0]) for w in lines]
        self.assertEqual(ts, sorted(ts))
        self.assertLess(abs(ts[-1] - time.time()), 5)
        for bad in (["--interval", "0"], ["--spin-ms", "100"]):
            r = subprocess.run([sys.executable, self.METER, log] + bad, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("host-meter.py: error: --", r.stderr)


class Options(unittest.TestCase):
    """run-bench-guest.sh's --paging and VHOST_BLK_E2E_KVM_AMD, checked
    before anything is built or booted."""

    def run_script(self, args, env=None):
        # --jobs none: should the check under test let the options by, the
        # script stops at the job's name, before it builds or boots.
        args = args + ["--jobs", "none"]
        e = dict(os.environ)
        e.pop("VHOST_BLK_E2E_KVM_AMD", None)
        e.pop("BENCH_PAGING", None)
        e.update(env or {})
        return subprocess.run([os.path.join(HERE, "run-bench-guest.sh")] + args, env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=30)

    def test_bad_paging(self):
        p = self.run_script(["--paging", "npt"])
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.strip().splitlines(),
                         ["run-bench-guest.sh: error: --paging must be shadow or nested, not 'npt'"])
        p = self.run_script([], {"BENCH_PAGING": "on"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("not 'on'", p.stderr)

    def test_bad_kvm_amd(self):
        p = self.run_script(["--paging", "shadow"], {"VHOST_BLK_E2E_KVM_AMD": "npt=0;reboot"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("error: bad VHOST_BLK_E2E_KVM_AMD 'npt=0;reboot'", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)


class Summary(unittest.TestCase):
    def setUp(self):
        self.r = bg.collect(RUN)

    def test_boot_metrics(self):
        s = self.r["summary"]["vhost-blk"]["rr32"]
        self.assertEqual(s["iops"]["median"], 20000)
        self.assertAlmostEqual(s["irq_per_io"]["median"], 0.1)
        self.assertAlmostEqual(s["cpu_us_per_io"]["median"], 12.5)
        self.assertAlmostEqual(s["req_per_kick"]["median"], 12.0)
        self.assertAlmostEqual(s["compl_per_update"]["median"], 6.0)
        self.assertAlmostEqual(self.r["summary"]["qsd"]["rr32"]["cpu_us_per_io"]["median"], 20.0)
        self.assertAlmostEqual(self.r["idle"]["vhost-blk"]["median"], 0.5)
        self.assertIn("| vhost-blk | rr32 | 0.083 | 240000 | 20000 | 20000 | 240000 | 40000 | 0 | 0 | 14 | 10 |",
                      bg.render(self.r))

    def test_kvm_table(self):
        s = self.r["summary"]["vhost-blk"]["qd1"]
        # QEMU: 3.6 s of CPU over 36000 I/Os, 60 us of them KVM's polling
        self.assertAlmostEqual(s["qemu_cpu_us_per_io"]["median"], 100.0)
        self.assertAlmostEqual(s["qemu_busy_us_per_io"]["median"], 40.0)
        md = bg.render(self.r)
        # exits x IOPS: 2 exits an I/O at 3000 IOPS (qd1.json)
        self.assertIn("| vhost-blk | qd1 | 2.00 | 6000 | 1.00 | 1.000 | 1.000 | 60.0 | 100.0 | 40.0 | 100.0 |", md)
        # only the job that has the counters has a row
        self.assertNotIn("| vhost-blk | rr32 | 0.", md.split("The nested guest as")[1].split("IOPS ratios")[0])

    def test_kvm_hist_table(self):
        md = bg.render(self.r)
        # 36000 I/Os in a 12 s window
        self.assertIn("| rep-1-vhost-blk | qd1 | exit page-fault | 1.000 | 3000 |", md)
        self.assertIn("| rep-1-vhost-blk | qd1 | exit hlt | 0.333 | 1000 |", md)
        self.assertIn("| rep-1-vhost-blk | qd1 | vector 0x26 | 1.000 | 3000 |", md)
        self.assertNotIn("| rep-1-vhost-blk | rr32 | exit", md)

    def test_failed_boot_reported_and_not_used(self):
        self.assertEqual(self.r["failed"], [(1, "virtio-blk", False, "rep-1-virtio-blk")])
        self.assertEqual(self.r["summary"]["virtio-blk"]["qd1"]["iops"]["median"], 1000)
        self.assertTrue(self.r["reps"]["virtio-blk"][1])
        md = bg.render(self.r)
        self.assertIn("FAILED boot: repetition 1, virtio-blk (rep-1-virtio-blk): guest_secs=300", md)
        self.assertNotIn("MISSING", md)

    def test_verdicts(self):
        v = bg.verdicts(self.r, "vhost-blk")
        self.assertEqual(v[0], "target 4k randread QD32x2 vhost-blk >= 1.5x qsd: MET (2.00x)")
        self.assertEqual(v[1], "target 4k randread QD32x2 vhost-blk >= 2x virtio-blk: NOT MET (1.67x)")
        self.assertEqual(v[2], "target 4k randread QD1 vhost-blk >= 1.5x qsd: NOT MET (1.20x)")
        self.assertEqual(v[3], "target QD32x2 requests per kick >= 8: MET (12.00)")
        self.assertEqual(v[4], "target QD32x2 completion interrupts per I/O <= 0.2: MET (0.100)")
        self.assertEqual(v[5], "target idle CPU of the queue threads <= 1 %: MET (0.50 %)")
        # the canned run has no randwrite job
        self.assertEqual(v[6], "target 4k randwrite QD32x2 vhost-blk >= 1.5x qsd: NOT MET (no data)")
        self.assertEqual(v[7], "target 4k randwrite QD32x2 vhost-blk >= 2x virtio-blk: NOT MET (no data)")
        self.assertEqual(8, len(v))
        p = bg.verdicts(self.r, "vhost-blk-poll")
        self.assertEqual(p[2], "target 4k randread QD1 vhost-blk >= 1.5x qsd [vhost-blk-poll]: MET (2.00x)")
        self.assertTrue(p[0].endswith("NOT MET (no data)"))

    def test_median_min_max(self):
        self.assertEqual(bg.stats([3, 1, 2, None]), {"median": 2, "min": 1, "max": 3, "n": 3})
        self.assertEqual(bg.fmt(bg.stats([3, 1, 2])), "2 [1-3]")
        self.assertEqual(bg.fmt(None), "-")

    def scratch_run(self):
        """A copy of testdata/run to change, removed after the test."""
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        run = os.path.join(d, "run")
        shutil.copytree(RUN, run)
        return run

    @staticmethod
    def second_rep(run, virtio_blk=True):
        """rep-2 boots, copies of rep 1's (virtio-blk's from its retry)."""
        for b in ("vhost-blk", "vhost-blk-poll", "qsd", "native"):
            shutil.copytree(os.path.join(run, "rep-1-" + b), os.path.join(run, "rep-2-" + b))
        if virtio_blk:
            shutil.copytree(os.path.join(run, "rep-1-virtio-blk-retry"), os.path.join(run, "rep-2-virtio-blk"))

    @staticmethod
    def scale_iops(run, boot, job, factor):
        """Multiply the IOPS of BOOT's JOB by FACTOR; its JSON file's path."""
        q = os.path.join(run, boot, "vmlogs", "gio", job + ".json")
        with open(q) as f:
            js = json.load(f)
        js["jobs"][0]["read"]["iops"] *= factor
        with open(q, "w") as f:
            json.dump(js, f)
        return q

    def test_missing_repetition(self):
        d = tempfile.mkdtemp()
        try:
            shutil.copytree(RUN, os.path.join(d, "run"))
            shutil.rmtree(os.path.join(d, "run", "rep-1-virtio-blk-retry"))
            r = bg.collect(os.path.join(d, "run"))
            self.assertIn("MISSING: repetition 1 of virtio-blk has no successful boot", bg.render(r))
            with redirect_stdout(io.StringIO()) as out:
                self.assertEqual(bg.main([os.path.join(d, "run")]), 0)
            self.assertIn("| job | vhost-blk/qsd |", out.getvalue())
            self.assertTrue(os.path.exists(os.path.join(d, "run", "results.json")))
        finally:
            shutil.rmtree(d)

    def test_spread_in_run_order(self):
        # Two repetitions: the second runs the backends rotated by one, and
        # qsd's second qd1 at three times the first: each is then 0.50 and
        # 1.50 of their median.
        run = self.scratch_run()
        self.assertNotIn("Each boot's IOPS", bg.render(bg.collect(run)))
        self.second_rep(run)
        self.scale_iops(run, "rep-2-qsd", "qd1", 3)
        r = bg.collect(run)
        rows = bg.spread(r)
        self.assertEqual([(rep, n) for rep, n, _ in rows][:6], [
            (1, "vhost-blk"), (1, "vhost-blk-poll"), (1, "qsd"), (1, "virtio-blk"), (1, "native"),
            (2, "vhost-blk-poll")])
        self.assertEqual(rows[-1][:2], (2, "vhost-blk"))
        qsd = {rep: row for rep, n, row in rows if n == "qsd"}
        self.assertAlmostEqual(qsd[1]["qd1"], 0.5)
        self.assertAlmostEqual(qsd[2]["qd1"], 1.5)
        self.assertAlmostEqual(qsd[2]["rr32"], 1.0)
        md = bg.render(r)
        self.assertIn("| 2 | qsd | 1.50 | 1.00 |", md)

    def test_outer_paging(self):
        self.assertEqual(bg.outer_paging(os.path.join(RUN, "rep-1-vhost-blk/vmlogs/result.txt")),
                         "nested paging (npt=Y)")
        self.assertEqual(bg.outer_paging(os.path.join(RUN, "rep-1-qsd/vmlogs/result.txt")),
                         "shadow paging (npt=N)")
        self.assertIsNone(bg.outer_paging(os.path.join(RUN, "rep-1-native/vmlogs/result.txt")))
        self.assertIsNone(bg.outer_paging(os.path.join(RUN, "no-such-boot/vmlogs/result.txt")))

    def test_paging_in_the_header(self):
        md = bg.render(self.r)
        self.assertIn("Outer KVM's paging of the nested guest: ", md)
        self.assertIn("nested paging (npt=Y) in 1 boot(s)", md)
        self.assertIn("shadow paging (npt=N) in 1 boot(s)", md)
        self.assertIn("? in 3 boot(s)", md)
        self.assertIn("boots on different pagings are not comparable", md)
        # one paging (and boots that did not say): no warning of a mix
        run = self.scratch_run()
        with open(os.path.join(run, "rep-1-qsd/vmlogs/result.txt"), "w") as f:
            f.write("backend=qsd hz=100 kvm_amd_npt=Y\nboot_ok=1\n")
        md = bg.render(bg.collect(run))
        self.assertIn("nested paging (npt=Y) in 2 boot(s)", md)
        self.assertNotIn("pagings are not comparable", md)

    def test_clocks_in_the_header_and_per_boot(self):
        md = bg.render(self.r)
        self.assertIn("Outer VM clocksource: ", md)
        self.assertIn("tsc in 1 boot(s)", md)
        self.assertIn("hpet (TSC: TSCs unsynchronized) in 1 boot(s)", md)
        self.assertIn("? in 3 boot(s)", md)
        self.assertIn("(MIXED: boots on different clocks are not comparable)", md)
        self.assertIn("Warning: boots on the HPET", md)
        run = self.scratch_run()
        self.second_rep(run, virtio_blk=False)
        md = bg.render(bg.collect(run))
        self.assertIn("| rep | backend | qd1 | rr32 | outer clock |", md)
        self.assertIn("| 2 | qsd | 1.00 | 1.00 | hpet (TSC: TSCs unsynchronized) |", md)
        self.assertIn("| 1 | vhost-blk | 1.00 | 1.00 | tsc |", md)
        # one clock in every boot: no warning of a mix, none of the HPET
        for e in os.listdir(run):
            if e.startswith("rep-"):
                shutil.copy(os.path.join(RUN, "rep-1-vhost-blk/console.log"), os.path.join(run, e))
        md = bg.render(bg.collect(run))
        self.assertIn("Outer VM clocksource: tsc in ", md)
        self.assertNotIn("MIXED", md)
        self.assertNotIn("Warning: boots on the HPET", md)

    def test_append_in_the_header(self):
        run = self.scratch_run()
        with open(os.path.join(run, "meta.txt"), "a") as f:
            f.write("append=tsc=reliable\n")
        head = bg.render(bg.collect(run)).splitlines()[2]
        self.assertTrue(head.endswith("; outer kernel command line + 'tsc=reliable'"), head)

    def test_pinned_vcpus_in_the_header(self):
        run = self.scratch_run()
        self.assertNotIn("vCPUs pinned", bg.render(bg.collect(run)))
        with open(os.path.join(run, "meta.txt"), "a") as f:
            f.write("pin_vcpus=1\n")
        head = bg.render(bg.collect(run)).splitlines()[2]
        self.assertTrue(head.endswith("; every guest's vCPUs pinned (--pin-vcpus)"), head)

    def test_third_attempt(self):
        # rep-R-NAME-retry3 is the third boot: it counts, and the two before
        # it are listed as failed with their own reasons.
        run = self.scratch_run()
        os.rename(os.path.join(run, "rep-1-virtio-blk-retry"),
                  os.path.join(run, "rep-1-virtio-blk-retry3"))
        shutil.copytree(os.path.join(run, "rep-1-virtio-blk"),
                        os.path.join(run, "rep-1-virtio-blk-retry"))
        with open(os.path.join(run, "failures.txt"), "a") as f:
            f.write("rep 1 virtio-blk attempt 2 FAILED: no heartbeat\n")
        boots = [b for b in bg.find_boots(run) if b[1] == "virtio-blk"]
        self.assertEqual([(b[2], b[4]) for b in boots], [(0, False), (1, False), (2, True)])
        md = bg.render(bg.collect(run))
        self.assertIn("FAILED boot: repetition 1, virtio-blk, attempt 2 "
                      "(rep-1-virtio-blk-retry): no heartbeat", md)
        self.assertNotIn("MISSING", md)
        self.assertNotIn("| virtio-blk-retry3 ", md)

    def test_host_pace(self):
        # Two repetitions; every job ends 20 s after the one before it; the
        # machine runs at pace 100 with 1 % steal, except in the window of
        # rep-2-qsd's rr32, at pace 50 with steal, when that job did half
        # of rep 1's IOPS.
        run = self.scratch_run()
        self.assertNotIn("Host pace", bg.render(bg.collect(run)))
        self.second_rep(run)
        q = self.scale_iops(run, "rep-2-qsd", "rr32", 0.5)
        t = 1000
        for e in sorted(os.listdir(run)):
            for sub in ("gio", "native"):
                for j in ("qd1", "rr32"):
                    p = os.path.join(run, e, "vmlogs", sub, j + ".json")
                    if os.path.exists(p):
                        t += 20
                        os.utime(p, (t, t))
        slow = os.path.getmtime(q)
        steal = total = 0
        with open(os.path.join(run, "host-meter.log"), "w") as f:
            for i in range(990, t + 5):
                bad = slow - 10 < i <= slow
                steal += 50 if bad else 1
                total += 100
                f.write("%d.000 %d %d %.1f\n" % (i, steal, total, 50.0 if bad else 100.0))
        r = bg.collect(run)
        self.assertEqual(r["host"]["pace"]["median"], 100.0)
        h = r["boots"]["rep-2-qsd"]["jobs"]["rr32"]["host"]
        self.assertAlmostEqual(h["rel_pace"], 0.5)
        self.assertAlmostEqual(h["steal_pct"], 100.0 * 501 / 1100)
        self.assertAlmostEqual(r["boots"]["rep-1-qsd"]["jobs"]["rr32"]["host"]["steal_pct"], 1.0)
        # the fit by hand: 18 jobs, 16 at (0, 0); qsd's rr32 at (0, log 4/3)
        # and (log 1/2, log 2/3) (IOPS over their median, 7500)
        x = [0.0] * 17 + [math.log(0.5)]
        y = [0.0] * 16 + [math.log(4 / 3), math.log(2 / 3)]
        mx, my = sum(x) / 18, sum(y) / 18
        sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
        sxx = sum((a - mx) ** 2 for a in x)
        syy = sum((b - my) ** 2 for b in y)
        slope, rr = sxy / sxx, sxy / math.sqrt(sxx * syy)
        self.assertEqual(r["host"]["n"], 18)
        self.assertAlmostEqual(r["host"]["slope"], slope)
        self.assertAlmostEqual(r["host"]["r"], rr)
        self.assertGreater(rr, 0.5)
        s = r["summary"]["qsd"]["rr32"]
        self.assertEqual(s["iops"]["median"], 7500)
        adj = (10000 + 5000 / 0.5 ** slope) / 2
        self.assertAlmostEqual(s["pace_adj_iops"]["median"], adj)
        md = bg.render(r)
        self.assertIn("Host pace (host-meter.log", md)
        self.assertIn("100 [50-100] over the 18 job windows", md)
        self.assertIn("steal 1.0 [1.0-45.5] %. IOPS against pace, over 18 jobs", md)
        self.assertIn("r = %.2f, slope %.2f (1: IOPS in proportion" % (rr, slope), md)
        raw = md.index("IOPS ratios (medians)")
        at = md.index("IOPS ratios at the run's median pace")
        # raw: 20000 / 7500; at the median pace: 20000 / adj
        self.assertEqual(md.index("| rr32 | 2.67 | 1.67 | 0.40 | - | - | - |", raw), md.index("| rr32 |", raw))
        row = "| rr32 | %.2f | 1.67 | 0.40 | - | - | - |" % (20000 / adj)
        self.assertEqual(md.index(row, at), md.index("| rr32 |", at))
        self.assertIn("| 2 | qsd | 1.00 | 0.50 (steal 46 %) |", md)
        self.assertIn("| 1 | qsd | 1.00 | 1.00 |", md)

    def test_host_window(self):
        meter = [(10.0, 0, 0, 80.0), (11.0, 1, 100, 60.0), (12.0, 3, 200, 0.0), (13.0, 3, 300, 40.0)]
        self.assertEqual(bg.host_window(meter, 10.0, 12.5), {"steal_pct": 1.0, "pace": 60.0})
        self.assertIsNone(bg.host_window(meter, 9.0, 12.0))
        self.assertIsNone(bg.host_window(meter, 10.5, 13.0))
        self.assertEqual(bg.host_window(meter, 11.0, 12.0)["pace"], None)

    def test_variants_only(self):
        # No other backend: each vhost-blk variant against the first.
        d = tempfile.mkdtemp()
        try:
            run = os.path.join(d, "run")
            shutil.copytree(RUN, run)
            meta = os.path.join(run, "meta.txt")

            def backends(names):
                with open(meta) as f:
                    lines = [ln for ln in f if not ln.startswith("backends=")]
                with open(meta, "w") as f:
                    f.writelines(lines + ["backends=%s\n" % names])
            for b in os.listdir(run):
                if b.startswith("rep-") and not b.startswith("rep-1-vhost-blk"):
                    shutil.rmtree(os.path.join(run, b))
            backends("vhost-blk vhost-blk-poll")
            md = bg.render(bg.collect(run))
            self.assertIn("| job | vhost-blk-poll/vhost-blk |", md)
            self.assertIn("| qd1 | 1.67 |", md)
            shutil.rmtree(os.path.join(run, "rep-1-vhost-blk-poll"))
            backends("vhost-blk")
            md = bg.render(bg.collect(run))
            self.assertIn("(no other backend measured)", md)
            self.assertNotIn("| job |  |", md)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
