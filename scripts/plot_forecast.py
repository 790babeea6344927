#!/usr/bin/env python3
"""Plot a forecast fan over a day beside what happened.

    scripts/plot_forecast.py TITLE FORECAST.csv ACTUAL.csv RUNS.csv OUT.svg

FORECAST.csv: sim_time, forecast, lo_80, hi_80, lo_95, hi_95 (sim_forecast's
    columns, as of some time); ACTUAL.csv: timestamp, value (the history
    around it, from before that time to the forecast's end); RUNS.csv:
    server_id, scenario, start, end, as for scripts/plot_backfill.py.

Plain SVG, no plotting library (the colours, legend and time parsing are
plot_backfill.py's).
"""
import csv
import sys
from datetime import datetime, timezone

from plot_backfill import COLOURS, legend, ts

W, H, LEFT, RIGHT, TOP, BOTTOM = 1000, 320, 60, 20, 50, 70


def main(title, fc_path, actual_path, runs_path, out_path):
    fc = [(ts(r[0]), *map(float, r[1:6])) for r in csv.reader(open(fc_path))]
    actual = [(ts(r[0]), float(r[1])) for r in csv.reader(open(actual_path))]
    runs = [(r[1], ts(r[2]), ts(r[3])) for r in csv.reader(open(runs_path))]
    t0, t1 = actual[0][0], max(fc[-1][0], actual[-1][0])
    origin = fc[0][0]
    lo = max(0.0, min(min(v for _, v in actual), min(r[4] for r in fc)) - 3)
    hi = min(100.0, max(max(v for _, v in actual), max(r[5] for r in fc)) + 3)
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT)
    y = lambda v: TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15">{title}</text>']
    shown = set()
    for scen, a, b in runs:
        if b < t0 or a > t1:
            continue
        shown.add(scen)
        a, b = max(a, t0), min(b, t1)
        out.append(f'<rect x="{x(a):.1f}" y="{TOP}" width="{max(1.0, x(b) - x(a)):.1f}" '
                   f'height="{H - TOP - BOTTOM}" fill="{COLOURS.get(scen, "#999")}" opacity="0.25"/>')
    # the fans: 95 % then 80 %, as polygons
    for k, (l, u), colour in ((0, (4, 5), "#c6dbef"), (1, (2, 3), "#6baed6")):
        pts = [f"{x(r[0]):.1f},{y(r[l]):.1f}" for r in fc] + [f"{x(r[0]):.1f},{y(r[u]):.1f}" for r in reversed(fc)]
        out.append(f'<polygon points="{" ".join(pts)}" fill="{colour}" opacity="0.8"/>')
    out.append('<polyline fill="none" stroke="#08519c" stroke-width="1.5" points="' +
               " ".join(f"{x(r[0]):.1f},{y(r[1]):.1f}" for r in fc) + '"/>')
    out.append('<polyline fill="none" stroke="#222" stroke-width="0.8" points="' +
               " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in actual) + '"/>')
    out.append(f'<line x1="{x(origin):.1f}" x2="{x(origin):.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
               f'stroke="#555" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x(origin) + 4:.1f}" y="{TOP + 12}">as of</text>')
    for v in range(int(lo // 10 + 1) * 10, int(hi) + 1, 10):
        out.append(f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
                   f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
    hour = 3600
    for t in range(int(t0 // (6 * hour) + 1) * 6 * hour, int(t1) + 1, 6 * hour):
        label = datetime.fromtimestamp(t, timezone.utc).strftime("%d %H:%M")
        out.append(f'<text x="{x(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{label}</text>')
    out += legend(shown, LEFT, H - 30)
    lx = LEFT + 150 * len(shown)
    for label, colour, kind in (("actual", "#222", "line"), ("forecast", "#08519c", "line"),
                                ("80 % interval", "#6baed6", "box"), ("95 % interval", "#c6dbef", "box")):
        if kind == "line":
            out.append(f'<line x1="{lx}" x2="{lx + 14}" y1="{H - 24}" y2="{H - 24}" stroke="{colour}" stroke-width="2"/>')
        else:
            out.append(f'<rect x="{lx}" y="{H - 30}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 18}" y="{H - 19}">{label}</text>')
        lx += 130
    out.append('</svg>')
    open(out_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
