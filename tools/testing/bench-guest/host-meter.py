#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""host-meter: the pace of the machine that runs the outer VM.

    host-meter.py LOG [--interval S] [--spin-ms MS]

run-bench-guest.sh starts it beside the boots and stops it at the end.
Every INTERVAL seconds (0.5) it appends one line to LOG:

    T STEAL TOTAL SPIN

T is the wall clock (seconds since the epoch, the clock the outer VM's
9p share stamps its files with); STEAL and TOTAL are this machine's
cumulative CPU ticks from /proc/stat (all CPUs), so a reader takes the
steal share of any window from two lines; SPIN is how many rounds of a
fixed loop ran per millisecond of CPU time in an MS-millisecond (5)
spin. It is a speedometer for what steal does not show: on the
machines of this project a CPU with no steal runs a fixed loop at half
speed for spells of milliseconds to seconds (a busy SMT sibling, or the
hypervisor's doing), and TCG, hence the whole bed, slows down with it.
SPIN is 0 with --spin-ms 0. The spin costs MS/INTERVAL of one CPU (1 %
by default). It stops by itself when its parent is gone.
"""

import argparse
import os
import signal
import sys
import time


def cpu_ticks(path="/proc/stat"):
    """(steal, total) ticks of the "cpu " line of /proc/stat."""
    with open(path) as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                steal = v[7] if len(v) > 7 else 0
                # guest and guest_nice are already in user and nice
                return steal, sum(v[:8])
    raise ValueError("no cpu line in " + path)


def spin_rate(ms):
    """Rounds of a fixed loop per millisecond of this thread's CPU time,
    over about ms milliseconds of wall time.  CPU time, not wall time:
    a spin preempted by the outer VM's threads, or stolen by the
    hypervisor (steal is not task time), is not counted slower for it;
    what is left is the speed of the CPU while it runs us."""
    if ms <= 0:
        return 0.0
    end = time.perf_counter_ns() + ms * 1000000
    c0 = time.thread_time_ns()
    n = 0
    while True:
        for _ in range(1000):
            pass
        n += 1
        if time.perf_counter_ns() >= end:
            break
    c = time.thread_time_ns() - c0
    return n * 1000.0 / (c / 1e6) if c > 0 else 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--spin-ms", type=int, default=5)
    a = ap.parse_args(argv)
    if not 0.1 <= a.interval <= 60:
        ap.error("--interval must be between 0.1 and 60 seconds")
    if not 0 <= a.spin_ms <= a.interval * 100:
        ap.error("--spin-ms must be between 0 and a tenth of the interval")
    parent = os.getppid()
    # run-bench-guest.sh ends it with SIGTERM: a normal end, status 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(a.log, "a", buffering=1) as out:
        nxt = time.time()
        while os.getppid() == parent:
            spin = spin_rate(a.spin_ms)
            steal, total = cpu_ticks()
            out.write("%.3f %d %d %.1f\n" % (time.time(), steal, total, spin))
            nxt += a.interval
            time.sleep(max(0.0, nxt - time.time()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
