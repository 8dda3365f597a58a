#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""vhost-blk benchmark: plan (fio job files) and report (JSON, Markdown, PNG).

    bench.py plan   --mode quick|full --out DIR [--runtime S] [--reps N]
    bench.py report --logs DIR --out DIR [--command STR] [--doc FILE]
    bench.py check  --logs DIR
    bench.py remaining --logs DIR

`plan` writes DIR/bench.conf (sourced by outer/bench.sh in the outer VM)
and one directory per phase (a phase = one boot of the nested guest on one
backing device) holding the guest's fio job files, one per repetition, and
the fio job files of the native runs.  `report` reads what the run left in
the logs directory (fio JSON from the guest and the outer VM, the CPU
snapshots in cpu.tsv) and writes results.json, results.md and results.png;
`check` exits 1 unless every planned slot produced I/O; `remaining` prints
the slots and phases not saved yet (logs/saved.txt: "PHASE REP" for every
repetition whose guest results reached the host), for a run resumed after
the outer VM died.

Only the standard library is needed, except for the chart (matplotlib,
Debian package python3-matplotlib; skipped with a note when missing).
"""
import argparse
import json
import os
import re
import statistics
import sys

# --------------------------------------------------------------------------
# What is measured.

# Backends, in the order of the tables.  "slot" is the guest PCI slot of
# the device (how the guest finds which /dev node is which).
BACKENDS = {
    "vblk":    dict(label="vhost-blk (launcher, defaults: 2 queues)", short="vhost-blk", slot=0x10, nq=2),
    "vblkq1":  dict(label="vhost-blk, launcher --num-queues 1", short="vhost-blk q1", slot=0x11, nq=1),
    "vblkmp1": dict(label="vhost-blk, module num_queues=1 (launcher defaults)", short="vhost-blk mp1", slot=0x10, nq=1),
    "vbn":     dict(label="QEMU virtio-blk, IOThread, aio=native", short="virtio-blk native", slot=0x12, nq=2),
    "vbu":     dict(label="QEMU virtio-blk, IOThread, aio=io_uring", short="virtio-blk io_uring", slot=0x13, nq=2),
    "qsd":     dict(label="qemu-storage-daemon vhost-user-blk", short="qsd vhost-user", slot=0x14, nq=2),
    "scsi":    dict(label="vhost-scsi (LIO iblock)", short="vhost-scsi", slot=0x15, nq=2),
    "native":  dict(label="fio on the device in the outer VM (native)", short="native", slot=None, nq=None),
}
REFERENCE = "vbn"      # (2) in the issue: every backend is compared to it
NATIVE = "native"      # (6)
OURS = ("vblk", "vblkq1", "vblkmp1")

# fio jobs.  "metric" is what the tables show first.
JOBS = {
    "qd1":    dict(label="4k randread QD1", rw="randread", bs="4k", iodepth=1, numjobs=1, metric="iops"),
    "rr32":   dict(label="4k randread QD32", rw="randread", bs="4k", iodepth=32, numjobs=1, metric="iops"),
    "rw32":   dict(label="4k randwrite QD32", rw="randwrite", bs="4k", iodepth=32, numjobs=1, metric="iops"),
    "seq64k": dict(label="64k seq read QD16", rw="read", bs="64k", iodepth=16, numjobs=1, metric="bw"),
    "mq":     dict(label="4k randread 2 jobs x QD16 (2 vCPUs, 2 queues)", rw="randread", bs="4k",
                   iodepth=16, numjobs=2, metric="iops"),
}

DEVICES = {
    "nullb-mb0": "null_blk memory_backed=0",
    "nullb-mb1": "null_blk memory_backed=1",
    "brd": "brd (RAM disk)",
}

ALL_GUEST = ["vblk", "vblkq1", "vbn", "vbu", "qsd", "scsi", "native"]


def phases(mode, reps):
    """The phases of a run: one guest boot each."""
    if mode == "quick":
        return [dict(id=1, dev="brd", modparam="", backends=ALL_GUEST,
                     jobs=["qd1", "rr32", "mq"], reps=reps or 1),
                dict(id=2, dev="brd", modparam="", profile=True,
                     backends=["vblk", "vbn"], jobs=["rr32"], reps=1)]
    r = reps or 3
    out = []
    for i, dev in enumerate(["nullb-mb0", "nullb-mb1", "brd"], 1):
        out.append(dict(id=i, dev=dev, modparam="", backends=ALL_GUEST,
                        jobs=list(JOBS), reps=r))
    # The module's knob: num_queues caps the queues the launcher may ask
    # for; it can only change at module load, so it gets its own boot.
    out.append(dict(id=4, dev="brd", modparam="num_queues=1",
                    backends=["vblkmp1", "vbn", "native"],
                    jobs=["qd1", "rr32", "mq"], reps=r))
    # The profile: the outer VM samples every CPU (perf record -e
    # cpu-clock, no PMU under TCG) while the guest runs QD1 and QD32 on
    # the four guest backends; the report splits the samples of each job
    # by thread and function.  Its own boot, so that perf's overhead stays
    # out of the phases above.
    out.append(dict(id=5, dev="nullb-mb0", modparam="", profile=True,
                    backends=["vblk", "vbn", "qsd", "scsi"],
                    jobs=["qd1", "rr32"], reps=1))
    return out


# --------------------------------------------------------------------------
# plan

def job_options(job, runtime, filename):
    j = JOBS[job]
    o = [f"filename={filename}", f"rw={j['rw']}", f"bs={j['bs']}",
         f"iodepth={j['iodepth']}", "time_based=1", f"runtime={runtime}",
         "size=256M"]
    if j["rw"].startswith("rand"):
        o += ["norandommap=1", "randrepeat=0"]
    if j["numjobs"] > 1:
        o += [f"numjobs={j['numjobs']}", "cpus_allowed=0-1",
              "cpus_allowed_policy=split"]
    return o


GLOBAL = """[global]
ioengine=libaio
direct=1
thread=1
group_reporting=1
lat_percentiles=1
percentile_list=50:99:99.9
"""

# A gate: a one-I/O job on the null engine whose exec_prerun runs the
# guest's mark.sh, i.e. tells the outer VM where the guest is (it
# snapshots the CPU times) and waits for its answer.  stonewall keeps it
# strictly between the measured jobs; its own numbers are dropped.
GATE = """[{name}]
ioengine=null
size=4k
bs=4k
rw=read
exec_prerun=/bin/sh /payload/mark.sh {args}
stonewall
"""


def plan(args):
    out = args.out
    os.makedirs(out, exist_ok=True)
    ph = phases(args.mode, args.reps)
    conf = [f"MODE={args.mode}", f"RUNTIME={args.runtime}",
            f"NPHASES={len(ph)}"]
    slots = 0
    for p in ph:
        pid = p["id"]
        d = os.path.join(out, f"phase{pid}")
        os.makedirs(d, exist_ok=True)
        conf += [f"PHASE_DEV[{pid}]={p['dev']}",
                 f"PHASE_MODPARAM[{pid}]='{p['modparam']}'",
                 f"PHASE_BACKENDS[{pid}]='{' '.join(p['backends'])}'",
                 f"PHASE_JOBS[{pid}]='{' '.join(p['jobs'])}'",
                 f"PHASE_UNITS[{pid}]={p['reps'] * len(p['jobs'])}",
                 f"PHASE_PROFILE[{pid}]={1 if p.get('profile') else 0}"]
        guest = [b for b in p["backends"] if b != NATIVE]
        with open(os.path.join(d, "guest.conf"), "w") as f:
            f.write(f"PHASE={pid}\nUNITS={p['reps'] * len(p['jobs'])}\n")
            f.write("DISKS='" + " ".join(
                f"{b}:{BACKENDS[b]['slot']:02x}:{'scsi' if b == 'scsi' else 'blk'}"
                for b in guest) + "'\n")
        # One fio file per unit: one job of one repetition on every backend,
        # u<N>.fio, N = (rep - 1) * jobs + job + 1.  The guest saves its
        # results unit by unit: a nested guest that dies loses one unit.
        p["units"] = []
        for r in range(1, p["reps"] + 1):
            # Interleave: every job runs on every backend before the next
            # job; the order of the backends rotates with the repetition so
            # that no backend always comes first or after the native run.
            k = (r - 1) % len(p["backends"])
            order = p["backends"][k:] + p["backends"][:k]
            for job in p["jobs"]:
                p["units"].append([r, job])
                txt = [GLOBAL]
                # Events queue up until the next gate: "end A start B" is
                # one gate, and a native slot's event rides on the gate
                # before the next guest job.
                pending = []
                for b in order:
                    sid = f"{pid}.{r}.{job}.{b}"
                    slots += 1
                    if b == NATIVE:
                        pending += ["native", sid]
                        continue
                    pending += ["start", sid]
                    txt.append(GATE.format(name=f"g-{len(txt)}", args=" ".join(pending)))
                    txt.append(f"[{sid}]\n" + "\n".join(
                        job_options(job, args.runtime, "${DEV_" + b + "}")) + "\nstonewall\n")
                    pending = ["end", sid]
                if pending:
                    txt.append(GATE.format(name=f"g-{len(txt)}", args=" ".join(pending)))
                with open(os.path.join(d, f"u{len(p['units'])}.fio"), "w") as f:
                    f.write("\n".join(txt))
        if NATIVE in p["backends"]:
            for job in p["jobs"]:
                with open(os.path.join(d, f"native-{job}.fio"), "w") as f:
                    f.write(GLOBAL + f"\n[{job}.native]\n" +
                            "\n".join(job_options(job, args.runtime, "${NATIVE_DEV}")) +
                            "\nexec_prerun=bash /tmp/bench/snap.sh start ${SNAP_ID}"
                            "\nexec_postrun=bash /tmp/bench/snap.sh end ${SNAP_ID}\n")
    conf.append(f"SLOTS={slots}")
    with open(os.path.join(out, "bench.conf"), "w") as f:
        f.write("# generated by bench.py plan\ndeclare -A PHASE_DEV PHASE_MODPARAM "
                "PHASE_BACKENDS PHASE_JOBS PHASE_UNITS PHASE_PROFILE\n" + "\n".join(conf) + "\n")
    with open(os.path.join(out, "plan.json"), "w") as f:
        json.dump(dict(mode=args.mode, runtime=args.runtime, phases=ph), f, indent=1)
    print(slots)


# --------------------------------------------------------------------------
# report

def load_json(path):
    """fio's JSON output; fio may print notes before the JSON itself."""
    try:
        with open(path, errors="replace") as f:
            txt = f.read()
    except OSError:
        return None
    i = txt.find("{")
    if i < 0:
        return None
    try:
        return json.loads(txt[i:])
    except ValueError:
        return None


def fio_metrics(job):
    rd, wr = job["read"], job["write"]
    io = rd["total_ios"] + wr["total_ios"]
    d = rd if rd["total_ios"] >= wr["total_ios"] else wr
    pct = d.get("lat_ns", {}).get("percentile") or d.get("clat_ns", {}).get("percentile") or {}

    def p(k):
        v = pct.get(k)
        return v / 1000.0 if v is not None else None
    return dict(ios=io, iops=rd["iops"] + wr["iops"],
                bw=(rd["bw"] + wr["bw"]) / 1024.0,   # MiB/s
                p50=p("50.000000"), p99=p("99.000000"), p999=p("99.900000"),
                mean=d.get("lat_ns", {}).get("mean", 0) / 1000.0,
                err=job.get("error", 0),
                fio_cpu=(job.get("usr_cpu", 0) + job.get("sys_cpu", 0)))


def read_cpu(path, hz):
    """cpu.tsv -> {slot id: {start: snap, end: snap}}; a snap holds the
    outer VM's busy ticks and per-thread ticks {(label, tid, comm): t}."""
    snaps = {}
    cur = None
    if not os.path.exists(path):
        return snaps
    with open(path, errors="replace") as f:
        for line in f:
            a = line.rstrip("\n").split("\t")
            if a[0] == "S" and len(a) >= 6:
                cur = dict(t=float(a[3]), busy=int(a[4]), idle=int(a[5]), th={}, child=None)
                snaps.setdefault(a[1], {})[a[2]] = cur
            elif a[0] == "T" and cur is not None and len(a) >= 5:
                cur["th"][(a[1], a[2], a[3])] = int(a[4])
            elif a[0] == "C" and cur is not None and len(a) >= 2:
                cur["child"] = int(a[1])
    return snaps


def backend_thread(backend, label, comm):
    """Is this thread (outer VM) on the backend's own I/O path?"""
    if backend in OURS:
        return label in ("launcher", "kthread")
    if backend in ("vbn", "vbu"):
        return label == "qemu" and (comm == "IO io" + backend or comm.startswith("iou-"))
    if backend == "qsd":
        return label == "qsd"
    if backend == "scsi":
        return label == "qemu" and comm.startswith("vhost-")
    if backend == NATIVE:
        return label == "fio"
    return False


def cpu_of(snap, hz, backend):
    """CPU seconds spent in one slot: the backend's own threads (io), the
    guest's vCPU threads (vcpu), every other tracked thread (other: QEMU's
    main loop, 9p, idle backends) and the whole outer VM (total)."""
    s, e = snap.get("start"), snap.get("end")
    if not s or not e:
        return None
    vcpu = io = other = 0
    busy_threads = []
    for k, t1 in e["th"].items():
        d = t1 - s["th"].get(k, 0)
        if d <= 0:
            continue
        label, _, comm = k
        if label == "qemu" and comm.startswith("CPU ") and comm.endswith("/KVM"):
            vcpu += d
            continue
        if backend_thread(backend, label, comm):
            io += d
        else:
            other += d
        busy_threads.append((d, f"{label}:{comm}"))
    busy_threads.sort(reverse=True)
    io_threads = sum(1 for d, n in busy_threads if backend_thread(backend, *n.split(":", 1)))
    return dict(t0=s["t"], wall=e["t"] - s["t"], tids={k[1]: k[2] for k in e["th"]},
                vcpu=vcpu / hz, io=io / hz, other=other / hz,
                total=(e["busy"] - s["busy"]) / hz,
                threads=io_threads,
                top=[f"{n} {d / hz:.2f}s" for d, n in busy_threads[:4]])


# --------------------------------------------------------------------------
# profile (phases with profile=True: perf record -a -e cpu-clock in the
# outer VM; cut per job at its CPU snapshots)

def thread_kind(backend, comm):
    """backend / vcpu / idle / other, from a perf sample's thread name."""
    if comm.startswith("CPU ") and comm.endswith("/KVM"):
        return "vcpu"
    if comm == "swapper" or comm.startswith("swapper/"):
        return "idle"
    if backend in OURS and (comm.startswith("vblk") or comm.startswith("vhost-blk-lau")):
        return "backend"
    if backend in ("vbn", "vbu") and (comm == "IO io" + backend or comm.startswith("iou-")):
        return "backend"
    if backend == "qsd" and comm.startswith("qemu-storage"):
        return "backend"
    if backend == "scsi" and comm.startswith("vhost-"):
        return "backend"
    return "other"


def area(dso, sym):
    """A coarse name for where a sample is: the module or program, and for
    the core kernel a few subsystems, by symbol name."""
    d = dso.strip("[]")
    if d == "nested guest":
        return "in the nested guest (" + sym + ")"
    if d.endswith(".kallsyms") or d == "kernel":
        sy = sym.split()[-1] if sym else ""
        for pre, name in (("svm_", "kvm_amd"), ("kvm_", "kvm"), ("vcpu_", "kvm"),
                          ("blk_", "block"), ("bio_", "block"), ("submit_bio", "block"),
                          ("null_", "null_blk"), ("brd_", "brd"),
                          ("schedule", "sched"), ("__schedule", "sched"), ("try_to_wake_up", "sched"),
                          ("finish_task_switch", "sched"), ("pick_next", "sched"), ("enqueue_", "sched"),
                          ("dequeue_", "sched"), ("update_", "sched"), ("ttwu", "sched"),
                          ("_raw_spin", "locks"), ("native_queued_spin", "locks"),
                          ("default_idle", "idle"), ("pv_native_safe_halt", "idle"),
                          ("cpuidle", "idle"), ("do_idle", "idle"),
                          ("read_hpet", "clock (HPET)"), ("ktime_get", "clock (HPET)"),
                          ("io_", "io_uring/aio"), ("aio_", "io_uring/aio"),
                          ("eventfd", "eventfd"), ("__x64_sys", "syscalls"), ("entry_SYSCALL", "syscalls"),
                          ("syscall_", "syscalls"), ("do_syscall", "syscalls"),
                          ("copy_", "copy"), ("memcpy", "copy"), ("memset", "copy"),
                          ("get_user_pages", "gup"), ("pin_user_pages", "gup"), ("gup_", "gup"),
                          ("__get_user_pages", "gup"), ("follow_page", "gup"),
                          ("irq", "irq"), ("__sysvec", "irq"), ("sysvec", "irq"), ("asm_sysvec", "irq"),
                          ("hrtimer", "timers"), ("tick_", "timers")):
            if sy.startswith(pre) or sy.lstrip("_").startswith(pre.lstrip("_")):
                return "kernel: " + name
        return "kernel: other"
    base = d.split("/")[-1]
    if base.startswith("qemu-system") or base.startswith("qemu-storage"):
        return "user: " + base
    if dso.startswith("[JIT]"):
        return "user: JIT code"
    if dso.startswith("[") and dso.endswith("]") and d not in ("unknown", "vdso", "heap", "stack"):
        return "module: " + d
    return "user: " + base


def guest_samples(perf, data, ks):
    """[(time s, cpumode, comm, period ns)] of the samples taken in guest
    mode (PERF_RECORD_MISC_GUEST_KERNEL/USER), from `perf report -D`."""
    import re
    import subprocess
    try:
        r = subprocess.run([perf, "report", "-D", "-i", data, "--kallsyms", ks],
                           capture_output=True, text=True, timeout=300, errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return []
    out, cur = [], None
    pat = re.compile(r"^\d+ (\d+) 0x[0-9a-f]+ \[0x[0-9a-f]+\]: PERF_RECORD_SAMPLE\(IP, 0x([0-9a-f]+)\):"
                     r" \d+/\d+: \S+ period: (\d+)")
    for ln in r.stdout.splitlines():
        m = pat.match(ln)
        if m:
            mode = int(m.group(2), 16) & 7
            cur = [int(m.group(1)) / 1e9, mode, "?", int(m.group(3))] if mode in (4, 5) else None
            if cur:
                out.append(cur)
        elif cur and ln.startswith(" ... thread: "):
            cur[2] = ln[len(" ... thread: "):].rsplit(":", 1)[0]
            cur = None
    return out


def perf_slices(logs, pl, res):
    """{slot id: profile} for the slots of profile phases."""
    import shutil
    import subprocess
    out = {}
    perf = shutil.which("perf")
    for p in pl["phases"]:
        if not p.get("profile"):
            continue
        d = os.path.join(logs, f"phase{p['id']}")
        data, ks = os.path.join(d, "perf.data"), os.path.join(d, "kallsyms.txt")
        if not perf or not os.path.exists(data):
            out[("note", p["id"])] = ("no profile: " + ("perf is not installed (linux-perf)"
                                      if not perf else "the run left no perf.data"))
            continue
        period = 2000000
        try:
            with open(os.path.join(d, "profile.conf")) as f:
                period = int(f.read().split("=")[1])
        except (OSError, ValueError, IndexError):
            pass
        guest = guest_samples(perf, data, ks)
        for e in res:
            if e["phase"] != p["id"] or not e.get("cpu") or not e.get("fio"):
                continue
            cpu = e["cpu"]
            t0, t1 = cpu["t0"], cpu["t0"] + cpu["wall"]
            cmd = [perf, "report", "-i", data, "--kallsyms", ks, "--time", f"{t0:.3f},{t1:.3f}",
                   "--sort", "pid,dso,sym", "--stdio", "--no-children", "-F",
                   "period,pid,dso,sym", "-t", "\t", "--percent-limit", "0", "-q"]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as ex:
                out[e["id"]] = dict(error=str(ex))
                continue
            rows = []
            # The vCPU threads' samples taken while they ran the nested
            # guest: perf report leaves them out (they belong to a guest
            # machine it knows nothing of); the raw dump has them.
            for t, mode, comm, per in guest:
                if t0 <= t <= t1:
                    rows.append((per, comm, "[nested guest]",
                                 "guest kernel" if mode == 4 else "guest user"))
            for ln in r.stdout.splitlines():
                a = [x.strip() for x in ln.split("\t")]
                if len(a) < 4 or not a[0].isdigit():
                    continue
                n, comm, dso, sym = int(a[0]), a[1], a[2], a[3]
                # "TID:COMM"; perf misses the names of kernel threads born
                # during the recording: take the snapshot's.
                tid, _, comm = comm.partition(":")
                comm = cpu.get("tids", {}).get(tid.strip(), comm)
                sym = sym.replace("[k] ", "").replace("[.] ", "").strip()
                if sym.startswith("0x"):
                    sym = "?"     # stripped binary (Debian's QEMU): no symbol
                rows.append((n, comm, dso, sym))
            ios = e["fio"]["ios"]
            us = 1e-3 / ios      # the period column is CPU time in ns
            by_kind, by_area, by_sym = {}, {}, {}
            for n, comm, dso, sym in rows:
                k = thread_kind(e["backend"], comm)
                by_kind[k] = by_kind.get(k, 0) + n * us
                if k == "idle":
                    continue
                a = area(dso, sym)
                by_area[(k, a)] = by_area.get((k, a), 0) + n * us
                key = (k, sym or "?", dso.strip("[]").split("/")[-1])
                by_sym[key] = by_sym.get(key, 0) + n * us
            out[e["id"]] = dict(samples=len(rows), cpu_s=sum(r[0] for r in rows) / 1e9,
                                period=period, ios=ios,
                                by_kind=by_kind,
                                by_area=sorted(([k, a, v] for (k, a), v in by_area.items()),
                                               key=lambda x: -x[2]),
                                top=sorted(([k, sy, dso, v] for (k, sy, dso), v in by_sym.items()),
                                           key=lambda x: -x[3])[:40],
                                error=(r.stderr.strip().splitlines()[-1:] if not rows else None))
    return out


def profile_md(pl, res, prof):
    L = []
    for p in pl["phases"]:
        if not p.get("profile"):
            continue
        pid = p["id"]
        L.append(f"### Profile (phase {pid}): where the CPU time goes per I/O, {phase_title(p)}\n")
        if ("note", pid) in prof:
            L.append(prof[("note", pid)] + "\n")
            continue
        per = next((v["period"] for k, v in prof.items() if isinstance(v, dict) and "period" in v), "?")
        L.append(f"`perf record -a -e cpu-clock -c {per}` in the outer VM during the jobs of "
                 "this phase (its own guest boot: perf's cost stays out of the tables above), "
                 "cut per job at the job's CPU snapshots. µs of outer-VM CPU per guest I/O, "
                 "by thread (backend / vCPU / other) and by area (module, program or kernel "
                 "subsystem by symbol name); idle is not counted.\n")
        for job in p["jobs"]:
            L.append(f"**{JOBS[job]['label']}**\n")
            L.append("| backend | IOPS (under perf) | µs/IO: backend | vCPU | other | busy total | "
                     "top areas (thread: area µs/IO) |")
            L.append("|---|---|---|---|---|---|---|")
            for b in p["backends"]:
                e = next((x for x in res if x["phase"] == pid and x["job"] == job
                          and x["backend"] == b and x["rep"] == 1), None)
                pr = prof.get(e["id"]) if e else None
                if not pr or "by_kind" not in pr:
                    L.append(f"| {BACKENDS[b]['short']} | – | – | – | – | – | "
                             f"{(pr or {}).get('error') or 'no samples'} |")
                    continue
                k = pr["by_kind"]
                busy = sum(v for kk, v in k.items() if kk != "idle")
                top = "; ".join(f"{kk}: {a} {fmt(v)}" for kk, a, v in pr["by_area"][:6])
                L.append(f"| {BACKENDS[b]['short']} | {fmt(e['fio']['iops'], 'k')} | "
                         f"{fmt(k.get('backend', 0))} | {fmt(k.get('vcpu', 0))} | "
                         f"{fmt(k.get('other', 0))} | {fmt(busy)} | {top} |")
            L.append("")
            # The backends' own threads, function by function.
            L.append("<details><summary>Top functions of the backend threads "
                     f"({JOBS[job]['label']}, µs/IO)</summary>\n")
            for b in p["backends"]:
                e = next((x for x in res if x["phase"] == pid and x["job"] == job
                          and x["backend"] == b and x["rep"] == 1), None)
                pr = prof.get(e["id"]) if e else None
                if not pr or "top" not in pr:
                    continue
                fs = [f"{sy} ({dso}) {fmt(v)}" for kk, sy, dso, v in pr["top"] if kk == "backend"][:8]
                vs = [f"{sy} ({dso}) {fmt(v)}" for kk, sy, dso, v in pr["top"] if kk == "vcpu"][:4]
                L.append(f"- {BACKENDS[b]['short']}: backend: " + (", ".join(fs) or "–") +
                         "; vCPU: " + (", ".join(vs) or "–"))
            L.append("\n</details>\n")
    return "\n".join(L)


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if unit == "k":
        return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_range(vals, unit=""):
    v = [x for x in vals if x is not None]
    if not v:
        return "–"
    if len(v) == 1:
        return fmt(v[0], unit)
    return f"{fmt(med(v), unit)} [{fmt(min(v), unit)}–{fmt(max(v), unit)}]"


def read_saved(logs):
    """{(phase, unit)} saved, or None for a run from before saved.txt."""
    try:
        with open(os.path.join(logs, "saved.txt")) as f:
            return {tuple(int(x) for x in ln.split()[:2]) for ln in f if len(ln.split()) >= 2}
    except OSError:
        return None


def remaining(args):
    with open(os.path.join(args.logs, "plan.json")) as f:
        pl = json.load(f)
    saved = read_saved(args.logs) or set()
    slots = phases_left = 0
    for p in pl["phases"]:
        n = len(p["units"])
        left = [u for u in range(1, n + 1) if (p["id"], u) not in saved]
        if left:
            phases_left += 1
            # The guest starts at the first unsaved unit.
            slots += (n - min(left) + 1) * len(p["backends"])
    print(slots, phases_left)


def read_irqs(phase_dir):
    """The guest's interrupt counts (guest/mark.sh, one irq-uN.tsv per
    unit): {slot id: {"start": n, "end": n}}; empty for runs from before."""
    out = {}
    try:
        names = [n for n in os.listdir(phase_dir) if n.startswith("irq-u") and n.endswith(".tsv")]
    except OSError:
        return out
    for n in names:
        with open(os.path.join(phase_dir, n)) as f:
            for ln in f:
                w = ln.split()
                if len(w) == 3 and w[0] in ("start", "end") and w[2].isdigit():
                    out.setdefault(w[1], {})[w[0]] = int(w[2])
    return out


VQ_LINE = re.compile(r"queue (\d+) (?:running|idle): (\d+) requests from (\d+) kicks "
                     r"in (\d+) passes, (\d+) completions in (\d+) used-ring updates")


def read_vq(phase_dir):
    """vhost-blk's per-queue counters at each slot's start and end (the
    launcher's log after bench.sh's "=== snap KIND ID" marker and SIGUSR1):
    {slot id: {"start"|"end": {queue: (requests, kicks, passes, completions,
    updates)}}}; empty for runs from before."""
    out = {}
    for b in OURS:
        try:
            f = open(os.path.join(phase_dir, f"{b}.log"), errors="replace")
        except OSError:
            continue
        cur = None
        with f:
            for ln in f:
                if ln.startswith("=== snap "):
                    w = ln.split()
                    cur = out.setdefault(w[3], {}).setdefault(w[2], {}) if len(w) == 4 else None
                    continue
                m = VQ_LINE.search(ln)
                if m and cur is not None:
                    cur[int(m.group(1))] = tuple(int(x) for x in m.groups()[1:])
    return out


def vq_delta(v):
    """One slot's queue counters: requests per kick, completions per used-ring
    update, and the busiest queue's share of the requests; None without both
    snapshots or without requests."""
    if not v or "start" not in v or "end" not in v:
        return None
    d = {}
    for q, e in v["end"].items():
        st = v["start"].get(q, (0, 0, 0, 0, 0))
        d[q] = [a - b for a, b in zip(e, st)]
    req = sum(x[0] for x in d.values())
    if req <= 0:
        return None
    kicks = sum(x[1] for x in d.values())
    upd = sum(x[4] for x in d.values())
    return dict(req_per_kick=req / kicks if kicks else None,
                compl_per_update=sum(x[3] for x in d.values()) / upd if upd else None,
                busiest_share=max(x[0] for x in d.values()) / req,
                queues_used=sum(1 for x in d.values() if x[0] > 0))


def collect(logs):
    with open(os.path.join(logs, "plan.json")) as f:
        pl = json.load(f)
    saved = read_saved(logs)
    hz = 100
    try:
        with open(os.path.join(logs, "clk_tck")) as f:
            hz = int(f.read().strip())
    except (OSError, ValueError):
        pass
    cpu = read_cpu(os.path.join(logs, "cpu.tsv"), hz)
    res = []        # one entry per slot
    for p in pl["phases"]:
        pid = p["id"]
        irq = read_irqs(os.path.join(logs, f"phase{pid}"))
        vq = read_vq(os.path.join(logs, f"phase{pid}"))
        guest = {}
        for u in range(1, len(p["units"]) + 1):
            js = load_json(os.path.join(logs, f"phase{pid}", f"guest-u{u}.json"))
            for j in (js or {}).get("jobs", []):
                guest[j["jobname"]] = j
        for r in range(1, p["reps"] + 1):
            for job in p["jobs"]:
                # A unit the guest did not finish is not used, even if some
                # of its slots left results.
                u = p["units"].index([r, job]) + 1
                ok = saved is None or (pid, u) in saved
                for b in p["backends"]:
                    sid = f"{pid}.{r}.{job}.{b}"
                    if b == NATIVE:
                        js = load_json(os.path.join(logs, f"phase{pid}", f"native-{job}-r{r}.json"))
                        j = (js or {}).get("jobs", [None])[0]
                    else:
                        j = guest.get(sid)
                    m = fio_metrics(j) if (j and ok) else None
                    c = cpu_of(cpu.get(sid, {}), hz, b) if ok else None
                    e = dict(id=sid, phase=pid, dev=p["dev"], modparam=p["modparam"],
                             rep=r, job=job, backend=b, fio=m, cpu=c)
                    if m and c and m["ios"]:
                        e["us_per_io"] = {k: c[k] * 1e6 / m["ios"] for k in ("io", "vcpu", "other", "total")}
                    i = irq.get(sid, {})
                    if m and m["ios"] and "start" in i and "end" in i:
                        e["irqs_per_io"] = (i["end"] - i["start"]) / m["ios"]
                    if m and b in OURS:
                        e["vq"] = vq_delta(vq.get(sid))
                    res.append(e)
    return pl, res


def summarize(pl, res):
    """Medians, ranges and ratios per (phase, job, backend)."""
    summ = {}
    for e in res:
        k = (e["phase"], e["job"], e["backend"])
        summ.setdefault(k, []).append(e)
    out = {}
    for (pid, job, b), es in summ.items():
        f = [e["fio"] for e in es if e["fio"]]
        u = [e.get("us_per_io") for e in es if e.get("us_per_io")]
        c = [e["cpu"] for e in es if e["cpu"]]
        out[(pid, job, b)] = dict(
            n=len(f),
            iops=[x["iops"] for x in f], bw=[x["bw"] for x in f],
            p50=[x["p50"] for x in f], p99=[x["p99"] for x in f],
            io_us=[x["io"] for x in u], vcpu_us=[x["vcpu"] for x in u],
            other_us=[x["other"] for x in u],
            total_us=[x["total"] for x in u],
            irqs=[e["irqs_per_io"] for e in es if e.get("irqs_per_io") is not None],
            vq=[e["vq"] for e in es if e.get("vq")],
            threads=[x["threads"] for x in c],
            top=(c[len(c) // 2]["top"] if c else []))
    for (pid, job, b), s in out.items():
        metric = JOBS[job]["metric"]
        mine = med(s[metric])
        for ref, name in ((REFERENCE, "vs_ref"), (NATIVE, "vs_native")):
            r = out.get((pid, job, ref))
            rv = med(r[metric]) if r else None
            s[name] = (mine / rv) if (mine is not None and rv) else None
        r = out.get((pid, job, REFERENCE))
        for lat in ("p50", "p99"):
            rv = med(r[lat]) if r else None
            mv = med(s[lat])
            s[lat + "_vs_ref"] = (mv / rv) if (mv is not None and rv) else None
    return out


def phase_title(p):
    t = DEVICES[p["dev"]]
    if p["modparam"]:
        t += f", vhost_blk module {p['modparam']}"
    return t


def markdown(pl, summ, meta):
    L = []
    for p in pl["phases"]:
        pid = p["id"]
        if p.get("profile"):
            continue
        done = max([v["n"] for k, v in summ.items() if k[0] == pid] or [0])
        L.append(f"### Phase {pid}: {phase_title(p)}, {done} of {p['reps']} repetition(s)\n")
        if not done:
            L.append("No results: the run ended before this phase.\n")
            continue
        # Table 1: absolute numbers, median [min–max].
        hdr = ["backend"]
        for job in p["jobs"]:
            if job == "qd1":
                hdr += ["QD1 kIOPS", "QD1 p50 µs", "QD1 p99 µs"]
            else:
                hdr.append(f"{job} " + ("MiB/s" if JOBS[job]["metric"] == "bw" else "kIOPS"))
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for b in p["backends"]:
            row = [BACKENDS[b]["short"]]
            for job in p["jobs"]:
                s = summ.get((pid, job, b))
                if not s:
                    row += ["–"] * (3 if job == "qd1" else 1)
                    continue
                if job == "qd1":
                    row += [fmt_range([x / 1000 for x in s["iops"]]),
                            fmt_range(s["p50"]), fmt_range(s["p99"])]
                elif JOBS[job]["metric"] == "bw":
                    row.append(fmt_range(s["bw"]))
                else:
                    row.append(fmt_range([x / 1000 for x in s["iops"]]))
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        # Table 2: ratios (medians) against (2) and native.
        hdr = ["backend"] + [f"{job} ×vb / ×nat" for job in p["jobs"]] + ["QD1 p50 ×vb"]
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for b in p["backends"]:
            row = [BACKENDS[b]["short"]]
            for job in p["jobs"]:
                s = summ.get((pid, job, b))
                row.append(f"{fmt(s['vs_ref'])} / {fmt(s['vs_native'])}" if s else "–")
            s = summ.get((pid, "qd1", b))
            row.append(fmt(s["p50_vs_ref"]) if s and "qd1" in p["jobs"] else "–")
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        # Table 3: CPU per I/O, split by thread.
        ref = "rr32" if "rr32" in p["jobs"] else p["jobs"][0]
        hdr = (["backend"] + [f"{job}: backend / vCPU / other" for job in p["jobs"]] +
               [f"{ref}: whole VM", f"{ref}: backend threads busy"])
        L.append("CPU µs per I/O (median), split by thread:\n")
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for b in p["backends"]:
            row = [BACKENDS[b]["short"]]
            for job in p["jobs"]:
                s = summ.get((pid, job, b))
                row.append(f"{fmt(med(s['io_us']))} / {fmt(med(s['vcpu_us']))} / "
                           f"{fmt(med(s['other_us']))}" if s else "–")
            s = summ.get((pid, ref, b))
            if s:
                row.append(fmt(med(s["total_us"])))
                t = med(s["threads"])
                row.append(f"{t:.0f}" if t is not None else "–")
            else:
                row += ["–"] * 2
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        # Table 4: the guest's completion interrupts per I/O.
        if any(s.get("irqs") for k, s in summ.items() if k[0] == pid):
            L.append("Guest completion interrupts per I/O (median; 1.0 = one interrupt "
                     "for every request, lower = completions batched or suppressed):\n")
            hdr = ["backend"] + list(p["jobs"])
            L.append("| " + " | ".join(hdr) + " |")
            L.append("|" + "---|" * len(hdr))
            for b in p["backends"]:
                if b == NATIVE:
                    continue
                row = [BACKENDS[b]["short"]]
                for job in p["jobs"]:
                    s = summ.get((pid, job, b))
                    v = med(s["irqs"]) if s and s.get("irqs") else None
                    row.append(f"{v:.2f}" if v is not None else "–")
                L.append("| " + " | ".join(row) + " |")
            L.append("")
        # Table 5: vhost-blk's own queue counters.
        if any(s.get("vq") for k, s in summ.items() if k[0] == pid):
            L.append("vhost-blk queue counters (VHOST_BLK_GET_VRING_STATS, medians): requests "
                     "per guest kick / completions per used-ring update / busiest queue's share "
                     "of the requests:\n")
            hdr = ["backend"] + list(p["jobs"])
            L.append("| " + " | ".join(hdr) + " |")
            L.append("|" + "---|" * len(hdr))
            for b in p["backends"]:
                if b not in OURS:
                    continue
                row = [BACKENDS[b]["short"]]
                for job in p["jobs"]:
                    s = summ.get((pid, job, b))
                    vs = s.get("vq") if s else None
                    if not vs:
                        row.append("–")
                        continue
                    rk = med([v["req_per_kick"] for v in vs if v["req_per_kick"] is not None])
                    cu = med([v["compl_per_update"] for v in vs if v["compl_per_update"] is not None])
                    sh = med([v["busiest_share"] for v in vs])
                    row.append(f"{fmt(rk)} / {fmt(cu)} / {sh * 100:.0f}%")
                L.append("| " + " | ".join(row) + " |")
            L.append("")
    return "\n".join(L)


def losses(pl, summ):
    """Where a vhost-blk configuration is slower than another guest backend."""
    out = []
    for p in pl["phases"]:
        pid = p["id"]
        if p.get("profile"):
            continue
        for ours in [b for b in p["backends"] if b in OURS]:
            for job in p["jobs"]:
                s = summ.get((pid, job, ours))
                if not s:
                    continue
                metric = JOBS[job]["metric"]
                mine = med(s[metric])
                for b in p["backends"]:
                    if b in OURS or b == NATIVE:
                        continue
                    o = summ.get((pid, job, b))
                    ov = med(o[metric]) if o else None
                    if mine is not None and ov and mine < ov:
                        # Within the spread: the best repetition of ours
                        # beats the worst of theirs.
                        noise = max(s[metric]) >= min(o[metric])
                        single = min(len(s[metric]), len(o[metric])) < 2
                        out.append(f"{phase_title(p)}: {JOBS[job]['label']}: "
                                   f"{BACKENDS[ours]['short']} {fmt(mine, 'k')} < "
                                   f"{BACKENDS[b]['short']} {fmt(ov, 'k')} "
                                   f"({'MiB/s' if metric == 'bw' else 'IOPS'}, ×{mine / ov:.2f}"
                                   + (", one sample each)" if single else
                                      ", ranges overlap)" if noise else ", ranges apart)"))
    return out


def chart(pl, summ, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: python3-matplotlib is not installed"
    ph = [p for p in pl["phases"] if not p.get("profile")]
    fig, axes = plt.subplots(len(ph), 3, figsize=(20, 4.2 * len(ph)), squeeze=False,
                             gridspec_kw=dict(width_ratios=[2.2, 1, 1]))
    for row, p in enumerate(ph):
        pid = p["id"]
        ax = axes[row][0]
        bks = p["backends"]
        w = 0.8 / len(bks)
        for i, b in enumerate(bks):
            xs, ys, lo, hi = [], [], [], []
            for j, job in enumerate(p["jobs"]):
                s = summ.get((pid, job, b))
                r = summ.get((pid, job, REFERENCE))
                metric = JOBS[job]["metric"]
                if not s or not r or not med(r[metric]):
                    continue
                ref = med(r[metric])
                v = [x / ref for x in s[metric]]
                xs.append(j + (i - len(bks) / 2 + 0.5) * w)
                ys.append(med(v))
                lo.append(med(v) - min(v))
                hi.append(max(v) - med(v))
            ax.bar(xs, ys, w, yerr=[lo, hi], capsize=2, label=BACKENDS[b]["short"])
        ax.set_xticks(range(len(p["jobs"])))
        ax.set_xticklabels([JOBS[j]["label"].replace(" (2 vCPUs, 2 queues)", "") for j in p["jobs"]],
                           fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_ylabel("IOPS (seq: MiB/s) / virtio-blk native")
        ax.set_title(f"Phase {pid}: {phase_title(p)} (median, min–max)", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        ax = axes[row][1]
        gb = [b for b in bks if (pid, "qd1", b) in summ]
        p50 = [med(summ[(pid, "qd1", b)]["p50"]) or 0 for b in gb]
        p99 = [med(summ[(pid, "qd1", b)]["p99"]) or 0 for b in gb]
        x = range(len(gb))
        ax.bar([i - 0.2 for i in x], p50, 0.4, label="p50")
        ax.bar([i + 0.2 for i in x], p99, 0.4, label="p99")
        ax.set_xticks(list(x))
        ax.set_xticklabels([BACKENDS[b]["short"] for b in gb], rotation=35, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("µs")
        ax.set_title("4k randread QD1 latency (median of reps)", fontsize=10)
        ax.legend(fontsize=7)
        # CPU per I/O of one job, stacked by thread.
        ax = axes[row][2]
        cj = "rr32" if "rr32" in p["jobs"] else p["jobs"][0]
        gb = [b for b in bks if (pid, cj, b) in summ]
        bottom = [0.0] * len(gb)
        for key, name in (("io_us", "backend"), ("vcpu_us", "vCPU"), ("other_us", "other")):
            v = [med(summ[(pid, cj, b)][key]) or 0 for b in gb]
            ax.bar(range(len(gb)), v, 0.6, bottom=bottom, label=name)
            bottom = [x + y for x, y in zip(bottom, v)]
        ax.set_xticks(list(range(len(gb))))
        ax.set_xticklabels([BACKENDS[b]["short"] for b in gb], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("µs of outer-VM CPU per I/O")
        ax.set_title(f"CPU per I/O, {JOBS[cj]['label']} (median)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return None


def read_meta(logs):
    meta = {}
    for name in ("meta-host.txt", "meta-outer.txt"):
        try:
            with open(os.path.join(logs, name)) as f:
                for line in f:
                    if "=" in line:
                        k, v = line.rstrip("\n").split("=", 1)
                        meta[k] = v
        except OSError:
            pass
    return meta


def report(args):
    pl, res = collect(args.logs)
    summ = summarize(pl, res)
    meta = read_meta(args.logs)
    prof = perf_slices(args.logs, pl, res)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dict(plan=pl, meta=meta, command=args.command, slots=res,
                       profile={str(k): v for k, v in prof.items()},
                       summary=[dict(phase=k[0], job=k[1], backend=k[2], **v)
                                for k, v in sorted(summ.items())]), f, indent=1)
    note = chart(pl, summ, os.path.join(args.out, "results.png"))
    md = []
    md.append(f"Command: `{args.command}`\n")
    md.append("Machine: " + ", ".join(f"{k} {meta[k]}" for k in (
        "host_cpu", "host_nproc", "host_kernel", "host_qemu") if k in meta) + "  ")
    md.append("Outer VM: " + ", ".join(f"{k} {meta[k]}" for k in (
        "outer_kernel", "outer_nproc", "outer_mem", "outer_qemu") if k in meta) + "  ")
    md.append("Guest: " + ", ".join(f"{k} {meta[k]}" for k in ("guest_kernel", "guest_cpu", "guest_smp", "guest_mem")
                                    if k in meta) + "  ")
    vm_s = None
    try:
        import re
        with open(os.path.join(args.logs, "..", "run-vm.log"), errors="replace") as f:
            vm_s = sum(int(x) for x in re.findall(r"run-vm\.sh: .*(?:finished in|after) (\d+)s", f.read()))
    except OSError:
        pass
    md.append(f"Runtime per fio job {pl['runtime']} s; run took {meta.get('wall', '?')}"
              + (f", of which the outer VM ran {vm_s // 60} min {vm_s % 60} s (the rest: "
                 "building, waiting for the test bed's VM lock, the report)" if vm_s else "")
              + ".  \n")
    if meta.get("module_src"):
        md.append(f"vhost_blk.ko built from: {meta['module_src']}.\n")
    md.append("Jobs: " + "; ".join(f"**{k}** {v['label']}" for k, v in JOBS.items()) + ". "
              "Cells: median [min–max] over the repetitions. ×vb: median against virtio-blk "
              "native (IOThread, aio=native); ×nat: against fio on the device in the outer VM. "
              "CPU: µs of outer-VM CPU per I/O (backend = the backend's own threads; vCPU = "
              "the guest's vCPU threads; other = the rest of QEMU and the daemons; whole VM = "
              "all CPUs from /proc/stat). vhost-blk has no polling knobs yet; QEMU's IOThread "
              "polls adaptively by default.\n")
    md.append(markdown(pl, summ, meta))
    pm = profile_md(pl, res, prof)
    if pm:
        md.append(pm)
    # The outer VM's clocksource must not change during the run (a switch
    # after boot: the kernel's watchdog gave up on the TSC).
    try:
        with open(os.path.join(args.logs, "..", "vm", "console.log"), errors="replace") as f:
            con = f.read()
        import re
        late = [float(t) for t in re.findall(r"\[\s*([0-9.]+)\] clocksource: Switched to clocksource", con)
                if float(t) > 20]
        if late or "Marking TSC unstable" in con:
            md.append("**Warning: the outer VM's clocksource left the TSC during this run; "
                      "the numbers after the switch are not comparable with the ones before.**\n")
    except OSError:
        pass
    try:
        with open(os.path.join(args.logs, "outer-deaths.txt")) as f:
            deaths = f.read().split("\n")
        md.append("Outer VM deaths (the outer VM was booted again and the run continued from "
                  "the first repetition not yet saved; the results merge all boots): " +
                  "; ".join(x for x in deaths if x) + "\n")
    except OSError:
        pass
    try:
        with open(os.path.join(args.logs, "guest-deaths.txt")) as f:
            deaths = f.read().split("\n")
        md.append("Nested guest deaths (the phase was booted again from the first repetition "
                  "not yet saved): " + "; ".join(x for x in deaths if x) + "\n")
    except OSError:
        pass
    lo = losses(pl, summ)
    md.append("#### Where vhost-blk loses\n")
    md.append("\n".join(f"- {x}" for x in lo) if lo else "- nowhere in this run")
    md.append("")
    if note:
        md.append(f"({note})\n")
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    if args.doc:
        # The chart goes next to the document, linked from the results.
        png = os.path.join(args.out, "results.png")
        if os.path.exists(png):
            import shutil
            name = os.path.splitext(os.path.basename(args.doc))[0] + "-latest.png"
            shutil.copyfile(png, os.path.join(os.path.dirname(args.doc), name))
            text += f"\n![median and min–max of every job, relative to virtio-blk native]({name})\n"
        update_doc(args.doc, text)
    print(text)


BEGIN = "<!-- bench-results-begin (written by tools/testing/bench/run-bench.sh --update-doc) -->"
END = "<!-- bench-results-end -->"


def update_doc(doc, text):
    with open(doc) as f:
        cur = f.read()
    a, b = cur.find(BEGIN), cur.find(END)
    if a < 0 or b < a:
        raise SystemExit(f"{doc}: markers not found")
    new = cur[:a + len(BEGIN)] + "\n" + text + cur[b:]
    with open(doc, "w") as f:
        f.write(new)


def check(args):
    pl, res = collect(args.logs)
    bad = []
    for e in res:
        m = e["fio"]
        if not m:
            bad.append(f"{e['id']}: no fio result")
        elif m["err"]:
            bad.append(f"{e['id']}: fio error {m['err']}")
        elif not m["ios"] or m["iops"] <= 0:
            bad.append(f"{e['id']}: no I/O")
        elif not e["cpu"]:
            bad.append(f"{e['id']}: no CPU snapshot")
    # The guest must have seen every backend's disk (guest/run.sh).
    for p in pl["phases"]:
        path = os.path.join(args.logs, f"phase{p['id']}", "disks.txt")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            bad.append(f"phase {p['id']}: no disks.txt from the guest")
            continue
        for b in p["backends"]:
            if b == NATIVE:
                continue
            ln = [x for x in lines if x.startswith(b + " ")]
            if not ln or "NO DISK" in ln[0]:
                bad.append(f"phase {p['id']}: the guest has no disk for {b}")
            else:
                print(f"bench check: phase {p['id']}: {ln[0]}")
    for x in bad:
        print("bench check: " + x, file=sys.stderr)
    print(f"bench check: {len(res) - len(bad)} of {len(res)} slots served I/O")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    a = sp.add_parser("plan")
    a.add_argument("--mode", choices=["quick", "full"], required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--runtime", type=int, default=None)
    a.add_argument("--reps", type=int, default=None)
    a = sp.add_parser("report")
    a.add_argument("--logs", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--command", default="")
    a.add_argument("--doc", default=None)
    a = sp.add_parser("check")
    a.add_argument("--logs", required=True)
    a = sp.add_parser("remaining")
    a.add_argument("--logs", required=True)
    args = ap.parse_args()
    if args.cmd == "plan":
        if args.runtime is None:
            args.runtime = 2 if args.mode == "quick" else 3
        plan(args)
    elif args.cmd == "report":
        report(args)
    elif args.cmd == "remaining":
        remaining(args)
    else:
        sys.exit(check(args))


if __name__ == "__main__":
    main()
