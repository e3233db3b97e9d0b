#!/usr/bin/env python3
"""bench/migrate_report.py — the report of bench/migrate.sh and
bench/migrate-redis.sh (one format, so the two compare line by line).

Arguments are key=value:
  rows      TSV of workload samples: phase op ops_s p99_ms max_ms errors
            (phase: base, move, after)
  out       file to write the report to as well (optional)
  what      first words of the headline ("1000000 keys x 1000 B moved ...")
  t0 t1     start and end of the move (seconds since the epoch)
  bytes     bytes moved (the source's count where it has one)
  keys      keys moved; slots: slots moved
  pause     longest per-slot write pause the servers measured, ms (optional)
  pausenote text after the pause (optional)
  note      a line of its own after them (optional)
  tck       clock ticks per second
  base0 base1 cpu0 cpu1   "name=ticks ..." snapshots (baseline, move)
  tb0 tb1   start and end of the baseline
"""
import collections
import statistics
import sys

a = dict(x.split("=", 1) for x in sys.argv[1:])
t0, t1 = float(a["t0"]), float(a["t1"])
secs = t1 - t0
mb = int(a["bytes"]) / 1e6
keys, slots = int(a["keys"]), int(a["slots"])
tck = float(a["tck"])


def snap(s):
    return dict(kv.split("=") for kv in s.split())


def cpus(c0, c1, secs):
    c0, c1 = snap(c0), snap(c1)
    return ", ".join(f"{k} {(int(c1[k]) - int(c0[k])) / tck / secs:.2f}" for k in c0 if k in c1)


v = collections.defaultdict(list)
for line in open(a["rows"]):
    ph, op, ops, p99, mx, err = line.rstrip("\n").split("\t")
    v[(ph, op)].append((float(ops or 0), float(p99 or 0), float(mx or 0), int(err or 0)))
out = [f"{a['what']}: {secs:.1f} s, {mb:.0f} MB, {mb/secs:.1f} MB/s, {keys/secs:.0f} keys/s, {slots/secs:.0f} slots/s"]
if a.get("pause"):
    out.append(f"longest per-slot write pause at cutover: {float(a['pause']):.1f} ms{a.get('pausenote', '')}")
if a.get("note"):
    out.append(a["note"])
out.append("CPU during the move (cores, incl. serving the workload; idle: the machine's): " + cpus(a["cpu0"], a["cpu1"], secs))
bsecs = float(a["tb1"]) - float(a["tb0"])
if bsecs >= 1:  # no baseline: MOVE_ONLY
    out.append("CPU during the baseline: " + cpus(a["base0"], a["base1"], bsecs))
out += ["",
        "| workload (-P 1) | baseline ops/s | during move ops/s | ratio | after move ops/s | baseline p99 ms | during move p99 ms (median / worst sample) | slowest request during move ms | after p99 ms | errors during move |",
        "|---|---|---|---|---|---|---|---|---|---|"]
ratios = []
lost = 0.0  # workload requests not served because of the move: (before - during) x its time
for op in ("get", "set"):
    b, m, af = v[("base", op)], v[("move", op)], v[("after", op)]
    if not b or not m:
        continue
    bo, mo = statistics.mean(x[0] for x in b), statistics.mean(x[0] for x in m)
    ao = statistics.mean(x[0] for x in af) if af else 0
    ap = statistics.median(x[1] for x in af) if af else 0
    bp = statistics.median(x[1] for x in b)
    mp, mw = statistics.median(x[1] for x in m), max(x[1] for x in m)
    ratios.append(mo / bo)
    lost += max(bo - mo, 0) * secs
    out.append(f"| {op.upper()} | {bo:.0f} | {mo:.0f} | {mo/bo:.2f} | {ao:.0f} | {bp:.2f} | {mp:.2f} / {mw:.2f} | "
               f"{max(x[2] for x in m):.1f} | {ap:.2f} | {sum(x[3] for x in m)} |")
out.append("")
if ratios:
    # Comparable across systems that trade speed for workload differently
    # (bench/migrate-redis.sh moves far slower but costs less per second).
    out.append(f"workload requests lost to the move: {lost/1e3:.0f} thousand ({lost/1e3/(mb/1e3):.0f} thousand per GB moved)")


def ok(c):
    return "met" if c else "NOT met"


t = [f">= 100 MB/s: {ok(mb/secs >= 100)} ({mb/secs:.1f})",
     f"workload >= 80% of baseline: {ok(ratios and min(ratios) >= 0.8)} ({', '.join(f'{r:.2f}' for r in ratios)})"]
if a.get("pause"):
    t.append(f"write pause <= 50 ms: {ok(float(a['pause']) <= 50)} ({float(a['pause']):.1f} ms)")
out.append("targets: " + "; ".join(t))
print("\n".join(out))
if a.get("out"):
    open(a["out"], "w").write("\n".join(out) + "\n")
