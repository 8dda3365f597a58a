#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""vhost-blk bench-guest: the summary of a run (run-bench-guest.sh calls it).

    bench_guest.py OUT [--json FILE] [--md FILE]

Reads OUT/meta.txt, OUT/failures.txt and every boot directory
OUT/rep-R-NAME[-retry[N]]/vmlogs/ (outer/bench-guest.sh, guest/run.sh):

  result.txt      boot_ok=1 when every job ran; hz=
  gio/JOB.json    the guest's fio JSON (native/JOB.json for native)
  gio/gstat.txt   "JOB pre|post UPTIME IOS IRQS": the guest's completed
                  I/Os and the disk's virtio interrupts around each job
  snaps.txt       "cpu JOB pre|post UPTIME", then "task TAG TID COMM UTIME
                  STIME RUN_NS" (TAG be: the backend's threads) and
                  "kvm NAME VALUE" (the outer VM's KVM counters)
  backend.log     the launcher's "=== snap JOB pre|post" markers, each
                  followed by its "queue N running: ..." counter lines

and OUT/rep-*/console.log, the outer kernel's log, for its clocksource
(outer_clock(): a boot on the HPET reads its clock by emulated MMIO);
and OUT/host-meter.log (host-meter.py), the pace of the machine itself
during each job, whose window is the runtime up to its JSON file's
modification time on the 9p share (the host's clock);

and writes OUT/results.md (printed too) and OUT/results.json: per backend
and job the median [min-max] over the repetitions of IOPS, p50/p99 latency,
interrupts per I/O, backend CPU per I/O and vhost-blk's requests per kick
and completions per used-ring update; IOPS ratios of vhost-blk (each
variant) to qsd, virtio-blk and native; the idle CPU; the issue's targets.
"""

import argparse
import collections
import json
import math
import os
import re
import statistics
import sys

JOBS = ["qd1", "rr32", "rw32", "seq64k"]
JOB_TEXT = {
    "qd1": "4k randread QD1",
    "rr32": "4k randread QD32x2",
    "rw32": "4k randwrite QD32x2",
    "seq64k": "64k read QD8x2",
}
BACKEND_ORDER = ["vhost-blk", "qsd", "virtio-blk", "vhost-scsi", "native"]

VQ_RE = re.compile(
    r"queue (\d+) (\w+): (\d+) requests from (\d+) kicks in (\d+) passes, "
    r"(\d+) completions in (\d+) used-ring updates, (\d+) in flight"
    r"(?:; (\d+) passes without a kick, (\d+) heads posted while in flight"
    r"(?:, (\d+) polls \((\d+) found a request\))?)?")
VQ_FIELDS = ["requests", "kicks", "passes", "completions", "updates", "inflight",
             "rekicks", "dup_heads", "polls", "poll_hits"]
BOOT_RE = re.compile(r"^rep-(\d+)-(.+?)(?:-retry(\d*))?$")
CLOCK_SWITCH_RE = re.compile(r"clocksource: Switched to clocksource (\S+)")
CLOCK_UNSTABLE_RE = re.compile(r"(?m)Marking TSC unstable due to (.+?)\s*$|"
                               r"Marking clocksource '(\S+)' as unstable")


def read_kv(path):
    """key=value words of a file (later ones win)."""
    kv = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                for w in line.split():
                    if "=" in w:
                        k, v = w.split("=", 1)
                        kv[k] = v
    except OSError:
        pass
    return kv


def parse_fio(path):
    """IOPS, p50/p99 total latency (us), MiB/s of one fio JSON file."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    i = text.find("{")
    if i < 0:
        return None
    try:
        data = json.loads(text[i:])
        job = data["jobs"][0]
    except (ValueError, KeyError, IndexError):
        return None
    if job.get("error"):
        return None
    iops = bw = ios = 0.0
    pct = {}
    for d in ("read", "write"):
        s = job.get(d, {})
        if not s.get("total_ios"):
            continue
        iops += s.get("iops", 0.0)
        bw += s.get("bw", 0) / 1024.0
        ios += s.get("total_ios", 0)
        p = (s.get("lat_ns") or {}).get("percentile") or (s.get("clat_ns") or {}).get("percentile") or {}
        for k, v in p.items():
            pct.setdefault(float(k), []).append(v)
    def lat(q):
        v = pct.get(q)
        return max(v) / 1000.0 if v else None
    return {"iops": iops, "mibps": bw, "fio_ios": ios, "p50_us": lat(50.0), "p99_us": lat(99.0)}


def parse_gstat(path):
    """{(job, when): (uptime, ios, irqs)}"""
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.split()
                if len(w) == 5:
                    try:
                        out[(w[0], w[1])] = (float(w[2]), int(w[3]), int(w[4]))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def parse_snaps(path):
    """{(job, when): {"up": uptime, "tasks": {tid: (tag, comm, ticks, run_ns)},
    "kvm": {name: value}}}"""
    out, cur = {}, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.split()
                if len(w) == 4 and w[0] == "cpu":
                    cur = {"up": float(w[3]), "tasks": {}, "kvm": {}}
                    out[(w[1], w[2])] = cur
                elif len(w) == 7 and w[0] == "task" and cur is not None:
                    ns = int(w[6]) if w[6].isdigit() else None
                    cur["tasks"][w[2]] = (w[1], w[3], int(w[4]) + int(w[5]), ns)
                elif len(w) == 3 and w[0] == "kvm" and cur is not None and w[2].isdigit():
                    cur["kvm"][w[1]] = int(w[2])
    except (OSError, ValueError):
        pass
    return out


# The outer VM's KVM counters per guest I/O (kvm_per_io()): name, then the
# counters summed (a "_ns" sum is given in us).
KVM_PER_IO = [
    ("exits", ["exits"]),
    ("halts", ["halt_exits"]),
    ("notify_exits", ["io_exits", "mmio_exits"]),
    ("injections", ["irq_injections"]),
    ("halt_poll_us", ["halt_poll_success_ns", "halt_poll_fail_ns"]),
    ("halt_wait_us", ["halt_wait_ns"]),
]


# SVM exit codes (arch/x86/include/uapi/asm/svm.h) and x2APIC MSRs the
# nested guest's exits are named by in kvm-exits-JOB.txt's summary.
SVM_EXITS = {0x03: "cr3-read", 0x13: "cr3-write", 0x4e: "page-fault", 0x60: "intr",
             0x64: "vintr", 0x72: "cpuid", 0x77: "pause", 0x78: "hlt", 0x79: "invlpg",
             0x7b: "ioio", 0x7c: "msr", 0x81: "vmmcall", 0x400: "npf"}
MSRS = {0x6e0: "tsc-deadline", 0x80b: "eoi", 0x830: "icr", 0x838: "timer-count"}
VECTORS = {0xec: "timer", 0xfb: "call-function-single", 0xfc: "call-function",
           0xfd: "reschedule", 0xf6: "irq-work"}
HIST_RE = re.compile(r"^\{ (.*) \} hitcount:\s+(\d+)")


def parse_kvm_hist(path):
    """kvm-exits-JOB.txt (outer/bench-guest.sh, BENCH_KVM_EXITS): {label:
    count} of the nested guest's exits ("exit hlt"), page faults by error
    code ("page-fault mmio": the reserved bit, an emulated device's
    register; "page-fault 0x6"), MSR accesses ("msr eoi write") and
    injected vectors ("vector timer"; a device's vector in hex); None
    without the file."""
    out, sec = {}, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("=== "):
                    sec = line.split()[1]
                    continue
                m = HIST_RE.match(line)
                if not m:
                    continue
                kv = {}
                for part in m.group(1).split(","):
                    k, _, v = part.partition(":")
                    kv[k.strip()] = int(v)
                if sec == "kvm_exit" and "exit_reason" in kv:
                    c = kv["exit_reason"]
                    label = "exit " + SVM_EXITS.get(c, "0x%x" % c)
                elif sec == "kvm_page_fault" and "error_code" in kv:
                    e = kv["error_code"]
                    label = "page-fault %s" % ("mmio" if e & 0x8 else "0x%x" % e)
                elif sec == "kvm_msr" and "ecx" in kv:
                    label = "msr %s %s" % (MSRS.get(kv["ecx"], "0x%x" % kv["ecx"]),
                                           "write" if kv.get("write") else "read")
                elif sec == "kvm_inj_virq" and ("vector" in kv or "irq" in kv):
                    v = kv.get("vector", kv.get("irq"))
                    label = "vector " + VECTORS.get(v, "0x%x" % v)
                else:
                    continue
                out[label] = out.get(label, 0) + int(m.group(2))
    except (OSError, ValueError):
        return None
    return out


def kvm_per_io(snaps, job, ios):
    """{"kvm_" + name: per guest I/O} of KVM_PER_IO over JOB, {} when the
    snapshots lack a counter (a kernel without it, or no debugfs)."""
    a, b = snaps.get((job, "pre")), snaps.get((job, "post"))
    if not a or not b or not ios:
        return {}
    out = {}
    for name, keys in KVM_PER_IO:
        if not all(k in a.get("kvm", {}) and k in b.get("kvm", {}) for k in keys):
            continue
        d = sum(b["kvm"][k] - a["kvm"][k] for k in keys)
        if name.endswith("_us"):
            d /= 1000.0
        out["kvm_" + name] = d / ios
    return out


def parse_vq(path):
    """{(job, when): {queue: {field: value}}} from the launcher's log."""
    out, cur = {}, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("=== snap "):
                    w = line.split()
                    cur = {}
                    if len(w) >= 4:
                        out[(w[2], w[3])] = cur
                    continue
                m = VQ_RE.search(line)
                if m and cur is not None and m.group(2) == "running":
                    q = int(m.group(1))
                    if q not in cur:   # the first dump after the marker
                        vals = [int(x) if x is not None else 0 for x in m.groups()[2:]]
                        cur[q] = dict(zip(VQ_FIELDS, vals))
    except OSError:
        pass
    return out


def cpu_ns(snaps, job, tag="be", hz=100):
    """CPU time (ns) of the threads tagged TAG between JOB's pre and post."""
    a, b = snaps.get((job, "pre")), snaps.get((job, "post"))
    if not a or not b:
        return None, None
    tot = seen = 0
    for tid, (t, _comm, ticks, ns) in b["tasks"].items():
        if t != tag:
            continue
        seen += 1
        pre = a["tasks"].get(tid)
        if ns is not None and (pre is None or pre[3] is not None):
            tot += ns - (pre[3] if pre else 0)
        else:
            tot += (ticks - (pre[2] if pre else 0)) * 1e9 / hz
    return (tot if seen else None), (b["up"] - a["up"]) * 1e9


def vq_delta(vq, job):
    a, b = vq.get((job, "pre")), vq.get((job, "post"))
    if not a or not b:
        return None
    d = {f: 0 for f in VQ_FIELDS}
    for q, vals in b.items():
        pre = a.get(q, {})
        for f in VQ_FIELDS:
            if f == "inflight":
                continue
            d[f] += vals[f] - pre.get(f, 0)
    return d


def div(a, b):
    return a / b if a is not None and b else None


def read_meter(path):
    """[(t, steal, total, spin)] of host-meter.py's log, in time order;
    [] without a log."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.split()
                if len(w) != 4:
                    continue
                try:
                    out.append((float(w[0]), int(w[1]), int(w[2]), float(w[3])))
                except ValueError:
                    pass
    except OSError:
        pass
    out.sort()
    return out


def host_window(meter, t0, t1):
    """The machine's pace over [t0, t1]: {"steal_pct": the steal share of
    all CPU ticks from the last sample at or before t0 to the first at or
    after t1, "pace": the mean SPIN of the samples inside (None if the
    spin was off)}, or None when the log does not cover the window."""
    a = b = None
    inside = []
    for x in meter:
        if x[0] <= t0:
            a = x
        elif x[0] <= t1:
            inside.append(x[3])
        elif b is None:
            b = x
    if a is None or b is None:
        return None
    tot = b[2] - a[2]
    spins = [v for v in inside if v > 0]
    return {"steal_pct": 100.0 * (b[1] - a[1]) / tot if tot > 0 else None,
            "pace": sum(spins) / len(spins) if spins else None}


def boot_metrics(bdir, jobs):
    """Per-job metrics of one boot directory, and its idle CPU %."""
    v = os.path.join(bdir, "vmlogs")
    res = read_kv(os.path.join(v, "result.txt"))
    hz = int(res.get("hz", "100") or 100)
    native = res.get("backend") == "native" or os.path.isdir(os.path.join(v, "native"))
    gst = parse_gstat(os.path.join(v, "gio", "gstat.txt"))
    snaps = parse_snaps(os.path.join(v, "snaps.txt"))
    vq = parse_vq(os.path.join(v, "backend.log"))
    out = {}
    for j in jobs:
        jpath = os.path.join(v, "native" if native else "gio", j + ".json")
        fio = parse_fio(jpath)
        if fio is None:
            continue
        m = dict(fio)
        m["end"] = os.path.getmtime(jpath)
        g0, g1 = gst.get((j, "pre")), gst.get((j, "post"))
        ios = (g1[1] - g0[1]) if g0 and g1 else None
        m["ios"] = ios
        m["irq_per_io"] = div((g1[2] - g0[2]) if g0 and g1 else None, ios)
        be, wall = cpu_ns(snaps, j, "be", hz)
        qe, _ = cpu_ns(snaps, j, "qemu", hz)
        m["cpu_us_per_io"] = div(be / 1000.0 if be is not None else None, ios)
        m["qemu_cpu_us_per_io"] = div(qe / 1000.0 if qe is not None else None, ios)
        m.update(kvm_per_io(snaps, j, ios))
        if m.get("kvm_exits") is not None and m.get("iops") is not None:
            # the exits a second of fio's run cost the bed (see kvm_lines())
            m["kvm_exits_per_s"] = m["kvm_exits"] * m["iops"]
        h = parse_kvm_hist(os.path.join(v, "kvm-exits-%s.txt" % j))
        if h and ios:
            m["kvm_hist"] = {"per_io": {k: n / ios for k, n in h.items()},
                             "per_s": {k: n * 1e9 / wall for k, n in h.items()} if wall else None}
        if m.get("kvm_halt_poll_us") is not None and m["qemu_cpu_us_per_io"] is not None:
            m["qemu_busy_us_per_io"] = m["qemu_cpu_us_per_io"] - m["kvm_halt_poll_us"]
        d = vq_delta(vq, j)
        if d:
            m["req_per_kick"] = div(d["requests"], d["kicks"])
            m["compl_per_update"] = div(d["completions"], d["updates"])
            m["kicks_per_io"] = div(d["kicks"], ios)
            m["vq"] = d
        out[j] = m
    idle = None
    be, wall = cpu_ns(snaps, "idle", "be", hz)
    if be is not None and wall:
        idle = 100.0 * be / wall
    return out, idle


def outer_clock(path):
    """The outer kernel's clocksource from its console log, one label:
    "tsc"; "hpet (TSC: TSCs unsynchronized)" when the kernel gave up the
    TSC at boot; "tsc, then hpet (watchdog: tsc unstable)" when it
    switched after the first clocksource took over (tsc-early hands over
    to tsc: not a switch); None without a log."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    seq = []
    for name in CLOCK_SWITCH_RE.findall(text):
        name = name.replace("-early", "")
        if not seq or seq[-1] != name:
            seq.append(name)
    if not seq:
        return None
    why = []
    for m in CLOCK_UNSTABLE_RE.finditer(text):
        why.append("TSC: " + m.group(1) if m.group(1) else "watchdog: %s unstable" % m.group(2))
    label = ", then ".join(seq)
    if why:
        label += " (%s)" % "; ".join(why)
    return label


def outer_paging(path):
    """How the outer VM's KVM maps the nested guest's memory, from the
    kvm_amd_npt= word of a boot's result.txt: "nested paging (npt=Y)",
    "shadow paging (npt=N)", None when the boot did not record it."""
    v = read_kv(path).get("kvm_amd_npt")
    if v in ("Y", "1"):
        return "nested paging (npt=Y)"
    if v in ("N", "0"):
        return "shadow paging (npt=N)"
    return None


def find_boots(out_dir):
    """[(rep, name, retry, dir, ok)] sorted by repetition, as run; retry
    counts the boots before this one (rep-R-NAME: 0, -retry: 1, -retryN:
    N - 1)."""
    boots = []
    for e in sorted(os.listdir(out_dir)):
        m = BOOT_RE.match(e)
        d = os.path.join(out_dir, e)
        if not m or not os.path.isdir(d):
            continue
        ok = read_kv(os.path.join(d, "vmlogs", "result.txt")).get("boot_ok") == "1"
        if m.group(3) is None:
            retry = 0
        else:
            retry = int(m.group(3)) - 1 if m.group(3) else 1
        boots.append((int(m.group(1)), m.group(2), retry, d, ok))
    boots.sort(key=lambda b: (b[0], b[1], b[2]))
    return boots


def stats(vals):
    vals = [x for x in vals if x is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def read_meta(path):
    """key=value lines of meta.txt (the value is the rest of the line)."""
    meta = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    except OSError:
        pass
    return meta


def collect(out_dir):
    meta = read_meta(os.path.join(out_dir, "meta.txt"))
    jobs = meta.get("jobs", "").split()
    jobs = jobs or JOBS
    boots = find_boots(out_dir)
    per = {}     # name -> job -> metric -> [values per repetition]
    idle = {}    # name -> [idle %]
    reps = {}    # name -> {rep: ok}
    failed = []
    per_boot = {}
    measured = []
    for rep, name, retry, d, ok in boots:
        reps.setdefault(name, {})
        if not ok:
            failed.append((rep, name, retry, os.path.basename(d)))
            reps[name].setdefault(rep, False)
            continue
        reps[name][rep] = True
        m, idl = boot_metrics(d, jobs)
        per_boot[os.path.basename(d)] = {"jobs": m, "idle_cpu_pct": idl,
                                         "clock": outer_clock(os.path.join(d, "console.log")),
                                         "paging": outer_paging(os.path.join(d, "vmlogs", "result.txt"))}
        measured.append((name, m, idl))
    host = host_pace(out_dir, meta, per_boot)
    for name, m, idl in measured:
        for j, vals in m.items():
            for k, x in vals.items():
                if k in ("end", "host", "kvm_hist"):
                    continue
                if k == "vq":
                    for f, y in x.items():
                        per.setdefault(name, {}).setdefault(j, {}).setdefault("vq_" + f, []).append(y)
                else:
                    per.setdefault(name, {}).setdefault(j, {}).setdefault(k, []).append(x)
        if idl is not None:
            idle.setdefault(name, []).append(idl)
    reasons = {}
    try:
        with open(os.path.join(out_dir, "failures.txt"), errors="replace") as f:
            for line in f:
                m = re.match(r"rep (\d+) (\S+) attempt (\d+) FAILED: (.*)", line)
                if m:
                    reasons[(int(m.group(1)), m.group(2), int(m.group(3)))] = m.group(4)
    except OSError:
        pass
    names = meta.get("backends", "").split() or sorted(per)
    for n in list(per) + list(reps):
        if n not in names:
            names.append(n)
    summary = {n: {j: {k: stats(v) for k, v in per.get(n, {}).get(j, {}).items()} for j in jobs} for n in names}
    return {
        "jobs": jobs, "backends": names, "summary": summary, "raw": per,
        "idle": {n: stats(v) for n, v in idle.items()},
        "reps": reps, "failed": failed, "meta": meta, "failure_reasons": reasons,
        "boots": per_boot, "host": host,
    }


def host_pace(out_dir, meta, per_boot):
    """Each measured job's window in OUT/host-meter.log: adds "host"
    ({"steal_pct", "pace", "rel_pace"}: rel_pace is the pace over the
    median pace of all jobs of the run) to the job's metrics.  Then fits
    log(IOPS over its backend's median) against log(rel_pace) over all
    jobs: the slope s (1: IOPS in proportion to the machine's pace, 0:
    not at all) and Pearson's r; and adds "pace_adj_iops", IOPS over
    rel_pace ** s, what the job would have done at the run's median pace.
    Returns {"pace": stats of the pace, "steal_pct": stats, "r", "slope",
    "n": jobs in the fit}, or None without a log."""
    meter = read_meter(os.path.join(out_dir, "host-meter.log"))
    if not meter:
        return None
    mt = re.match(r"\d+", meta.get("runtime", ""))   # "10 ramp=2 idle=20"
    runtime = float(mt.group(0)) if mt else 10.0
    jobs = [(d, j, m) for d, b in per_boot.items() for j, m in b["jobs"].items() if "end" in m]
    for _d, _j, m in jobs:
        h = host_window(meter, m["end"] - runtime, m["end"])
        if h:
            m["host"] = h
    paces = [m["host"]["pace"] for _d, _j, m in jobs if m.get("host", {}).get("pace")]
    ref = statistics.median(paces) if paces else None
    byname = {}
    for d, j, m in jobs:
        p = m.get("host", {}).get("pace")
        if ref and p:
            m["host"]["rel_pace"] = p / ref
        bm = BOOT_RE.match(d)
        if bm:
            byname.setdefault((bm.group(2), j), []).append(m)
    xs, ys = [], []
    for ms in byname.values():
        md = statistics.median([m["iops"] for m in ms])
        for m in ms:
            rp = m.get("host", {}).get("rel_pace")
            if rp and md and m["iops"] > 0:
                xs.append(math.log(rp))
                ys.append(math.log(m["iops"] / md))
    r = slope = None
    if len(xs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
        r = statistics.correlation(xs, ys)
        slope = statistics.linear_regression(xs, ys).slope
    for _d, _j, m in jobs:
        rp = m.get("host", {}).get("rel_pace")
        if rp and slope is not None:
            m["pace_adj_iops"] = m["iops"] / rp ** slope
    return {"pace": stats(paces),
            "steal_pct": stats([m["host"]["steal_pct"] for _d, _j, m in jobs if m.get("host")]),
            "r": r, "slope": slope, "n": len(xs)}


def boot_counts(r, key):
    """{label: measured boots} of a per-boot label ("clock", "paging"); a
    boot without one counts as "?"."""
    return dict(collections.Counter(v.get(key) or "?" for v in r["boots"].values()))


def counts_text(counts):
    """"LABEL in N boot(s), ...", the commonest first."""
    return ", ".join("%s in %d boot(s)" % (c, n) for c, n in sorted(counts.items(), key=lambda x: -x[1]))


def spread(r):
    """[(rep, name, {job: IOPS / the backend's median})] for each measured
    boot, in the order the boots ran: repetition R runs the backends of
    meta.txt rotated left by R - 1 (run-bench-guest.sh).  The row also
    carries the boot's outer clocksource under "clock"."""
    names = r["backends"]
    by = {}
    for d, v in r["boots"].items():
        m = BOOT_RE.match(d)
        if m:
            by[(int(m.group(1)), m.group(2))] = v
    out = []
    for rep in sorted({k[0] for k in by}):
        n = len(names)
        for i in range(n):
            name = names[(i + rep - 1) % n]
            boot = by.get((rep, name))
            if boot is None:
                continue
            jobs = boot["jobs"]
            row = {"clock": boot.get("clock")}
            for j in r["jobs"]:
                x, m = jobs.get(j, {}).get("iops"), med(r, name, j, "iops")
                row[j] = x / m if x is not None and m else None
                row["host_" + j] = jobs.get(j, {}).get("host")
            out.append((rep, name, row))
    return out


def boot_table(rows, jobs, cell, extra=None):
    """A table of spread()'s rows: rep, backend, cell(row, job) for each
    job, and extra = (heading, value(row)) last; then a blank line."""
    head = ["rep", "backend"] + jobs + ([extra[0]] if extra else [])
    L = ["| %s |" % " | ".join(head), "|" + "---|" * len(head)]
    for rep, name, row in rows:
        cells = [str(rep), name] + [cell(row, j) for j in jobs] + ([extra[1](row)] if extra else [])
        L.append("| %s |" % " | ".join(cells))
    return L + [""]


def pace_cell(h):
    if not h or h.get("rel_pace") is None:
        return "-"
    st = h.get("steal_pct")
    return "%.2f" % h["rel_pace"] + (" (steal %.0f %%)" % st if st is not None and st > 1 else "")


def med(r, name, job, key):
    s = r["summary"].get(name, {}).get(job, {}).get(key)
    return s["median"] if s else None


def ratio(r, a, b, job, key="iops"):
    x, y = med(r, a, job, key), med(r, b, job, key)
    return x / y if x is not None and y else None


def fmt(s, nd=0, scale=1.0):
    if not s:
        return "-"
    f = "%%.%df" % nd
    m = f % (s["median"] * scale)
    if s["n"] > 1:
        m += " [" + f % (s["min"] * scale) + "-" + f % (s["max"] * scale) + "]"
    return m


def verdicts(r, vb):
    """The issue's targets for the vhost-blk variant VB: [(text, met, value)]."""
    out = []
    def tgt(text, val, ok, shown):
        out.append("target %s%s: %s (%s)" % (
            text, "" if vb == "vhost-blk" else " [%s]" % vb,
            "MET" if val is not None and ok(val) else "NOT MET",
            shown if val is not None else "no data"))
    x = ratio(r, vb, "qsd", "rr32")
    tgt("4k randread QD32x2 vhost-blk >= 1.5x qsd", x, lambda v: v >= 1.5, "%.2fx" % x if x else None)
    x = ratio(r, vb, "virtio-blk", "rr32")
    tgt("4k randread QD32x2 vhost-blk >= 2x virtio-blk", x, lambda v: v >= 2.0, "%.2fx" % x if x else None)
    x = ratio(r, vb, "qsd", "qd1")
    tgt("4k randread QD1 vhost-blk >= 1.5x qsd", x, lambda v: v >= 1.5, "%.2fx" % x if x else None)
    x = med(r, vb, "rr32", "req_per_kick")
    tgt("QD32x2 requests per kick >= 8", x, lambda v: v >= 8, "%.2f" % x if x is not None else None)
    x = med(r, vb, "rr32", "irq_per_io")
    tgt("QD32x2 completion interrupts per I/O <= 0.2", x, lambda v: v <= 0.2, "%.3f" % x if x is not None else None)
    s = r["idle"].get(vb)
    x = s["median"] if s else None
    tgt("idle CPU of the queue threads <= 1 %", x, lambda v: v <= 1.0, "%.2f %%" % x if x is not None else None)
    # randwrite: the same two ratios (issue 12 asks them of both)
    x = ratio(r, vb, "qsd", "rw32")
    tgt("4k randwrite QD32x2 vhost-blk >= 1.5x qsd", x, lambda v: v >= 1.5, "%.2fx" % x if x else None)
    x = ratio(r, vb, "virtio-blk", "rw32")
    tgt("4k randwrite QD32x2 vhost-blk >= 2x virtio-blk", x, lambda v: v >= 2.0, "%.2fx" % x if x else None)
    return out


def ratio_table(r, pairs, key):
    L = ["| job | " + " | ".join("%s/%s" % p for p in pairs) + " |",
         "|---|" + "---|" * len(pairs)]
    for j in r["jobs"]:
        cells = []
        for v, b in pairs:
            x = ratio(r, v, b, j, key)
            cells.append("%.2f" % x if x is not None else "-")
        L.append("| %s | %s |" % (j, " | ".join(cells)))
    return L


def host_lines(r, pairs):
    """The machine's pace (host-meter.log), and the ratios at the run's
    median pace; [] without a log."""
    h = r.get("host")
    if not h or not h["pace"]:
        return []
    L = ["Host pace (host-meter.log: a fixed loop's rounds per ms of CPU time on the machine that "
         "runs the outer VM, twice a second): %s over the %d job windows; steal %s %%. "
         "IOPS against pace, over %d jobs (the log of each job's IOPS over its backend's "
         "median against the log of its pace over the run's median): r = %s, slope %s "
         "(1: IOPS in proportion to the machine's pace)." % (
             fmt(h["pace"]), h["pace"]["n"], fmt(h["steal_pct"], 1), h["n"],
             "%.2f" % h["r"] if h["r"] is not None else "-",
             "%.2f" % h["slope"] if h["slope"] is not None else "-"), ""]
    if pairs and h["slope"] is not None:
        L.append("IOPS ratios at the run's median pace (each job's IOPS divided by its pace over "
                 "the run's median to the power of the slope, then the medians: an estimate; "
                 "the targets use the raw medians above):")
        L.append("")
        L.extend(ratio_table(r, pairs, "pace_adj_iops"))
        L.append("")
    return L


def kvm_lines(r):
    """The nested guest's exits, halts and halt polling per I/O (the outer
    VM's KVM counters), for the boots that have them."""
    cols = [("exits", "kvm_exits", 2), ("x IOPS", "kvm_exits_per_s", 0), ("halts", "kvm_halts", 2),
            ("I/O+MMIO exits", "kvm_notify_exits", 3), ("injected irqs", "kvm_injections", 3),
            ("halt-poll us", "kvm_halt_poll_us", 1), ("QEMU us/IO", "qemu_cpu_us_per_io", 1),
            ("less halt-poll", "qemu_busy_us_per_io", 1), ("halted us", "kvm_halt_wait_us", 1)]
    rows = []
    for n in r["backends"]:
        for j in r["jobs"]:
            s = r["summary"].get(n, {}).get(j, {})
            if s.get("kvm_exits"):
                rows.append("| %s | %s | %s |" % (n, j, " | ".join(fmt(s.get(k), nd) for _, k, nd in cols)))
    if not rows:
        return []
    return ["The nested guest as the outer VM's KVM saw it, per guest I/O (medians): its exits "
            "(and exits per I/O times IOPS: the exits a second of the job cost; about the same "
            "for every backend on a bed whose nested exits are what it spends its time on, "
            "so that IOPS follow 1 / exits per I/O), halts, I/O and MMIO exits that went to "
            "QEMU (a kick that an ioeventfd takes in the kernel is not one of them: with either "
            "paging it is a page-fault exit, 'page-fault mmio' under BENCH_KVM_EXITS), interrupts "
            "injected, the time KVM spent polling its halted vCPUs (CPU time that shows in "
            "QEMU us/IO), QEMU us/IO without that polling (the guest's own work and its exits), "
            "and the time its vCPUs slept halted:", "",
            "| backend | job | " + " | ".join(c for c, _, _ in cols) + " |",
            "|---|---|" + "---|" * len(cols)] + rows + [""]


def kvm_hist_lines(r):
    """Per boot and job with kvm-exits-JOB.txt: the nested guest's exits by
    reason, per guest I/O and per second."""
    rows = []
    for d, boot in sorted(r["boots"].items()):
        for j in r["jobs"]:
            h = boot["jobs"].get(j, {}).get("kvm_hist")
            if not h:
                continue
            ps = h["per_s"] or {}
            for k in sorted(h["per_io"], key=lambda k: (k.split()[0], -h["per_io"][k])):
                rows.append("| %s | %s | %s | %.3f | %s |" % (
                    d, j, k, h["per_io"][k], "%.0f" % ps[k] if k in ps else "-"))
    if not rows:
        return []
    return ["The nested guest's exits by reason, MSR accesses and injected vectors "
            "(BENCH_KVM_EXITS: hist triggers on the outer kernel's kvm events), per guest "
            "I/O and per second of the job:", "",
            "| boot | job | event | per I/O | per s |", "|---|---|---|---|---|"] + rows + [""]


def vblk_names(r):
    return [n for n in r["backends"] if n == "vhost-blk" or n.startswith("vhost-blk-")]


def render(r):
    L = []
    meta = r["meta"]
    L.append("# bench-guest results")
    L.append("")
    L.append("%s; reps %s; outer %s, guest %s; commit %s%s" % (
        meta.get("command", "run-bench-guest.sh"), meta.get("reps", "?"),
        meta.get("outer", "?"), meta.get("guest", "?"), meta.get("commit", "?"),
        "; every guest's vCPUs pinned (--pin-vcpus)" if meta.get("pin_vcpus") == "1" else "")
        + ("; outer kernel command line + '%s'" % meta["append"] if meta.get("append") else ""))
    L.append("")
    cl = boot_counts(r, "clock")
    if cl:
        L.append("Outer VM clocksource: %s%s" % (
            counts_text(cl),
            "" if len(cl) == 1 else " (MIXED: boots on different clocks are not comparable)"))
        if any(c.startswith("hpet") or ", then " in c for c in cl):
            L.append("")
            L.append("Warning: boots on the HPET read the clock by an emulated MMIO read (every party: "
                     "QEMU, the guest's kvmclock, fio in the outer VM), the bed that could not tell "
                     "backends apart; --append tsc=reliable keeps the TSC.")
    pg = boot_counts(r, "paging")
    if pg:
        L.append("")
        L.append("Outer KVM's paging of the nested guest: %s%s" % (
            counts_text(pg),
            "" if len([c for c in pg if c != "?"]) <= 1 else
            " (DIFFERENT: shadow paging costs the nested guest an exit per page-table fill; "
            "boots on different pagings are not comparable)"))
    L.append("")
    L.append("Median [min-max] over the repetitions. CPU/IO: the backend's threads in the outer VM "
             "(us per guest I/O); irq/IO: the guest's interrupts of the disk's virtio device per I/O; "
             "req/kick and compl/upd: vhost_blk's queue counters (compl/upd: completions per "
             "signal of the used ring, what one guest interrupt can carry at most).")
    L.append("")
    L.append("| backend | job | IOPS | MiB/s | p50 us | p99 us | irq/IO | CPU us/IO | QEMU us/IO | req/kick | compl/upd |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in r["backends"]:
        for j in r["jobs"]:
            s = r["summary"].get(n, {}).get(j, {})
            if not s:
                L.append("| %s | %s | no data | | | | | | | | |" % (n, j))
                continue
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, j, fmt(s.get("iops")), fmt(s.get("mibps"), 1), fmt(s.get("p50_us")), fmt(s.get("p99_us")),
                fmt(s.get("irq_per_io"), 3), fmt(s.get("cpu_us_per_io"), 1), fmt(s.get("qemu_cpu_us_per_io"), 1),
                fmt(s.get("req_per_kick"), 2), fmt(s.get("compl_per_update"), 2)))
    L.append("")
    vbs = vblk_names(r)
    cols = ["requests", "kicks", "passes", "completions", "updates", "rekicks", "dup_heads", "polls", "poll_hits"]
    if any(r["summary"].get(v, {}).get(j, {}).get("vq_kicks") for v in vbs for j in r["jobs"]):
        L.append("vhost-blk queue counters over each job (both queues; medians): kicks/IO, then "
                 "VHOST_BLK_GET_VRING_STATS deltas (updates: signals of the used ring, the launcher's "
                 "'used-ring updates'; rekicks: passes without a kick; "
                 "dup_heads: heads posted while in flight):")
        L.append("")
        L.append("| backend | job | kicks/IO | " + " | ".join(cols) + " |")
        L.append("|---|---|---|" + "---|" * len(cols))
        for v in vbs:
            for j in r["jobs"]:
                s = r["summary"].get(v, {}).get(j, {})
                if not s.get("vq_kicks"):
                    continue
                L.append("| %s | %s | %s | %s |" % (v, j, fmt(s.get("kicks_per_io"), 3),
                                                   " | ".join(fmt(s.get("vq_" + c)) for c in cols)))
        L.append("")
    L.extend(kvm_lines(r))
    L.extend(kvm_hist_lines(r))
    L.append("IOPS ratios (medians):")
    L.append("")
    refs = [b for b in ("qsd", "virtio-blk", "vhost-scsi", "native") if b in r["backends"]]
    pairs = [(v, b) for v in vbs for b in refs]
    if not pairs and len(vbs) > 1:
        # Only vhost-blk variants: each against the first.
        pairs = [(v, vbs[0]) for v in vbs[1:]]
    if pairs:
        L.extend(ratio_table(r, pairs, "iops"))
    else:
        L.append("(no other backend measured)")
    L.append("")
    L.extend(host_lines(r, pairs))
    for v in vbs:
        s = r["idle"].get(v)
        L.append("idle (guest asleep): %s queue threads %s %% of one CPU" % (v, fmt(s, 2)))
    L.append("")
    for v in vbs:
        L.extend(verdicts(r, v))
    L.append("")
    rows = spread(r)
    if len({rep for rep, _, _ in rows}) > 1:
        L.append("Each boot's IOPS over its backend's median, in the order the boots ran "
                 "(the bed's spread: a job far from 1.00 ran in a slow or a fast spell):")
        L.append("")
        L.extend(boot_table(rows, r["jobs"], lambda row, j: "%.2f" % row[j] if row.get(j) is not None else "-",
                            ("outer clock", lambda row: row.get("clock") or "?")))
        if r.get("host") and r["host"]["pace"]:
            L.append("The machine's pace during each job, over the run's median (and its steal "
                     "when above 1 %):")
            L.append("")
            L.extend(boot_table(rows, r["jobs"], lambda row, j: pace_cell(row.get("host_" + j))))
    nok = sum(1 for x in r["reps"].values() for y in x.values() if y)
    L.append("boots: %d repetition(s) measured, %d failed boot(s)" % (nok, len(r["failed"])))
    for rep, name, retry, d in r["failed"]:
        why = r["failure_reasons"].get((rep, name, retry + 1), "")
        L.append("FAILED boot: repetition %d, %s%s (%s)%s" % (
            rep, name, ", attempt %d" % (retry + 1) if retry else "", d, ": " + why if why else ""))
    for name, x in sorted(r["reps"].items()):
        for rep, ok in sorted(x.items()):
            if not ok:
                L.append("MISSING: repetition %d of %s has no successful boot" % (rep, name))
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--json")
    ap.add_argument("--md")
    a = ap.parse_args(argv)
    r = collect(a.out)
    md = render(r)
    with open(a.md or os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    js = {k: r[k] for k in ("jobs", "backends", "summary", "raw", "idle", "failed", "boots", "host")}
    js["reps"] = {n: {str(k): v for k, v in x.items()} for n, x in r["reps"].items()}
    js["verdicts"] = [t for v in vblk_names(r) for t in verdicts(r, v)]
    with open(a.json or os.path.join(a.out, "results.json"), "w") as f:
        json.dump(js, f, indent=1, sort_keys=True)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
