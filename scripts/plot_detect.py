#!/usr/bin/env python3
"""Plot a backfilled day: a metric of a few servers and, under each, the
detector's anomaly_score, incidents shaded.

    scripts/plot_detect.py SERIES.csv RUNS.csv THRESHOLD OUT.svg

SERIES.csv: server_id, metric name, timestamp, value, anomaly_score, from
    \\copy (SELECT server_id, 'cpu_usage', "timestamp", cpu_usage, anomaly_score
            FROM server_metrics_history WHERE server_id = ... AND "timestamp" >= ...
            ORDER BY 1, 3) TO 'series.csv' CSV
RUNS.csv: server_id, scenario, start, end (timestamptz), as for
    scripts/plot_backfill.py.

Plain SVG, no plotting library (the colours, legend and time parsing are
plot_backfill.py's).
"""
import csv
import sys
from datetime import datetime

from plot_backfill import COLOURS, legend, ts

W, METRIC_H, SCORE_H, LEFT, RIGHT, TOP, GAP = 1000, 120, 50, 70, 20, 40, 44


def main(series_path, runs_path, threshold, out_path):
    threshold = float(threshold)
    series, metric = {}, {}
    for row in csv.reader(open(series_path)):
        metric[row[0]] = row[1]
        series.setdefault(row[0], []).append((ts(row[2]), float(row[3]), float(row[4] or 0)))
    runs = [(r[0], r[1], ts(r[2]), ts(r[3])) for r in csv.reader(open(runs_path))]
    servers = list(dict.fromkeys(r for r in series))
    t0 = min(p[0] for s in series.values() for p in s)
    t1 = max(p[0] for s in series.values() for p in s)
    panel = METRIC_H + 8 + SCORE_H
    height = TOP + len(servers) * (panel + GAP) + 40
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15">A backfilled day: the metric (30 s samples), '
           f'and under it the anomaly_score; scenario runs shaded, the threshold {threshold} dashed</text>']
    for k, sid in enumerate(servers):
        top = TOP + k * (panel + GAP)
        stop = top + METRIC_H + 8
        lo = min(v for _, v, _ in series[sid])
        hi = max(v for _, v, _ in series[sid])
        lo, hi = max(0.0, lo - 5), min(100.0, hi + 5)
        y = lambda v: top + METRIC_H - (v - lo) / (hi - lo) * METRIC_H
        ys = lambda s: stop + SCORE_H - s * SCORE_H
        for t_, h in ((top, METRIC_H), (stop, SCORE_H)):
            out.append(f'<rect x="{LEFT}" y="{t_}" width="{W - LEFT - RIGHT}" height="{h}" fill="none" stroke="#bbb"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(hi) + 10}" text-anchor="end">{hi:.0f}</text>'
                   f'<text x="{LEFT - 8}" y="{y(lo)}" text-anchor="end">{lo:.0f}</text>'
                   f'<text x="{LEFT - 8}" y="{ys(1) + 10}" text-anchor="end">1</text>'
                   f'<text x="{LEFT - 8}" y="{ys(0)}" text-anchor="end">0</text>')
        for r_sid, scen, a, b in runs:
            if r_sid != sid or b < t0 or a > t1:
                continue
            xa, xb = x(max(a, t0)), x(min(b, t1))
            out.append(f'<rect x="{xa:.1f}" y="{top}" width="{max(xb - xa, 1.5):.1f}" height="{panel}" '
                       f'fill="{COLOURS.get(scen, "#999")}" opacity="0.35"><title>{scen}</title></rect>')
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in series[sid])
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1f3b73" stroke-width="0.8"/>')
        pts = " ".join(f"{x(t):.1f},{ys(s):.1f}" for t, _, s in series[sid])
        out.append(f'<polyline points="{pts}" fill="none" stroke="#c0392b" stroke-width="0.8"/>')
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{ys(threshold):.1f}" y2="{ys(threshold):.1f}" '
                   f'stroke="#c0392b" stroke-dasharray="4 3" stroke-width="0.7"/>')
        out.append(f'<text x="{LEFT}" y="{top - 6}" font-weight="bold">{sid}: {metric[sid]}</text>'
                   f'<text x="{W - RIGHT}" y="{stop + SCORE_H + 14}" text-anchor="end" fill="#c0392b">anomaly_score</text>')
    bottom = TOP + len(servers) * (panel + GAP) - GAP + 30
    for h in range(0, 25, 3):
        t = t0 + h * 3600
        if t <= t1:
            out.append(f'<text x="{x(t):.1f}" y="{bottom - 12}" text-anchor="middle">'
                       f'{datetime.utcfromtimestamp(t).strftime("%H:%M")}</text>')
    out += legend({r[1] for r in runs if r[0] in series and r[3] >= t0 and r[2] <= t1}, LEFT, bottom)
    out.append("</svg>")
    open(out_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
