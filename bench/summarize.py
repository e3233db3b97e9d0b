#!/usr/bin/env python3
"""Summarize compare.sh raw rows (TSV) into the per-scenario table.

usage: summarize.py RAW.tsv [OUTFILE.md] [META]

RAW columns: round scenario server tool ops_s p50_ms p99_ms cpu_us_op bg_pct
("NA" where a run failed). Prints one line per scenario, medians across rounds:
  scenario shoal_ops_s redis_ops_s ratio shoal_p99 redis_p99 shoal_cpu_us_op redis_cpu_us_op
ratio is the median of the per-round shoal/redis ratios (each pair ran back to
back, so slow drift in background load cancels out). Can be re-run on a
saved OUTFILE.tsv.
"""
import csv
import statistics
import sys

raw = sys.argv[1]
outfile = sys.argv[2] if len(sys.argv) > 2 else ''
meta = sys.argv[3] if len(sys.argv) > 3 else ''
rows = list(csv.DictReader(open(raw), delimiter='\t'))
rounds = len({r['round'] for r in rows})
order, data = [], {}
for r in rows:
    if r['scenario'] not in data:
        order.append(r['scenario'])
        data[r['scenario']] = {}
    data[r['scenario']].setdefault(r['server'], {})[r['round']] = r


def num(r, f):
    return None if r is None or r.get(f) in (None, 'NA', '') else float(r[f])


def med(sc, srv, f):
    v = [x for x in (num(r, f) for r in data[sc].get(srv, {}).values()) if x is not None]
    if not v:
        return None, ''
    return statistics.median(v), ('*' if len(v) < rounds else '')


def paired(sc, f):
    """median, min, max of the per-round shoal/redis ratios of field f"""
    v = []
    for rd, s in data[sc].get('shoal', {}).items():
        a, b = num(s, f), num(data[sc].get('redis', {}).get(rd), f)
        if a is not None and b:
            v.append(a / b)
    if not v:
        return None, None, None
    return statistics.median(v), min(v), max(v)


def fmt(x, spec, mark=''):
    return 'ERR' if x is None else format(x, spec) + mark


hdr = ['scenario', 'shoal_ops_s', 'redis_ops_s', 'ratio', 'shoal_p99', 'redis_p99',
       'shoal_cpu_us_op', 'redis_cpu_us_op']
lines, md, bgs = [], [], []
for sc in order:
    so, sm = med(sc, 'shoal', 'ops_s')
    ro, rm = med(sc, 'redis', 'ops_s')
    s99, s99m = med(sc, 'shoal', 'p99_ms')
    r99, r99m = med(sc, 'redis', 'p99_ms')
    s50, _ = med(sc, 'shoal', 'p50_ms')
    r50, _ = med(sc, 'redis', 'p50_ms')
    scpu, scm = med(sc, 'shoal', 'cpu_us_op')
    rcpu, rcm = med(sc, 'redis', 'cpu_us_op')
    ratio, rlo, rhi = paired(sc, 'ops_s')
    cratio, _, _ = paired(sc, 'cpu_us_op')
    bg = [x for srv in data[sc].values() for r in srv.values()
          for x in [num(r, 'bg_pct')] if x is not None]
    bgs += [(x, sc) for x in bg]
    lines.append([sc, fmt(so, '.0f', sm), fmt(ro, '.0f', rm), fmt(ratio, '.2f'),
                  fmt(s99, '.3f', s99m), fmt(r99, '.3f', r99m),
                  fmt(scpu, '.2f', scm), fmt(rcpu, '.2f', rcm)])
    md.append([sc, fmt(so, '.0f', sm), fmt(ro, '.0f', rm), '**' + fmt(ratio, '.2f') + '**',
               'ERR' if rlo is None else '%.2f–%.2f' % (rlo, rhi),
               fmt(s50, '.3f'), fmt(r50, '.3f'), fmt(s99, '.3f'), fmt(r99, '.3f'),
               fmt(scpu, '.2f'), fmt(rcpu, '.2f'), fmt(cratio, '.2f'),
               fmt(max(bg) if bg else None, '.0f')])

w = [max(len(x) for x in col) for col in zip(hdr, *lines)]
for l in [hdr] + lines:
    print('  '.join(x.ljust(w[i]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(l)))
bgline = 'no data'
if bgs:
    mx = max(bgs)
    bgline = 'median %.0f%%, max %.0f%% (%s) of one core' % (
        statistics.median(x for x, _ in bgs), mx[0], mx[1])
if meta:
    print('# ' + meta)
print('# background CPU (other processes) during runs: ' + bgline)
if bgs and statistics.median(x for x, _ in bgs) > 30:
    print('# WARNING: other processes were busy during the runs: ratios are noisier than usual; '
          'compare with a redis-vs-redis run made at the same time (SHOAL_CMD=redis-server ...)')

if outfile:
    with open(outfile, 'w') as f:
        f.write('# Shoal vs redis-server\n\n`%s`\n\nBackground CPU during runs: %s.\n\n' % (meta, bgline))
        f.write('Medians of %d interleaved rounds. ratio = median of the per-round shoal/redis ops/s ratios '
                '(higher is better for shoal), range = min–max of those ratios; latency in ms (client side); '
                'cpu = server CPU µs per request (lower is better; cpu ratio = shoal/redis); '
                'bg %% = max CPU (%% of one core) used by other processes during the runs: noise. '
                '`*` = median over fewer rounds (some failed), ERR = failed in every round.\n\n' % rounds)
        h = ['scenario', 'shoal ops/s', 'redis ops/s', 'ratio', 'range', 'shoal p50', 'redis p50',
             'shoal p99', 'redis p99', 'shoal cpu µs/op', 'redis cpu µs/op', 'cpu ratio', 'bg %']
        f.write('| ' + ' | '.join(h) + ' |\n|' + '---|' * len(h) + '\n')
        for l in md:
            f.write('| ' + ' | '.join(l) + ' |\n')
