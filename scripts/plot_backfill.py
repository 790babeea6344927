#!/usr/bin/env python3
"""Plot a backfilled month: hourly CPU of a few servers, their incidents shaded.

    scripts/plot_backfill.py SERIES.csv RUNS.csv OUT.svg

SERIES.csv: server_id, hour (timestamptz), cpu (hourly mean), from
    \\copy (SELECT server_id, date_trunc('hour', "timestamp"), avg(cpu_usage)
            FROM server_metrics_history WHERE server_id IN (...) GROUP BY 1, 2 ORDER BY 1, 2)
          TO 'series.csv' CSV
RUNS.csv: server_id, scenario, start, end (timestamptz), from
    \\copy (SELECT server_id, scenario_name, min(started_at), max(COALESCE(ended_at, started_at))
            FROM sim_incident_labels WHERE server_id IN (...) GROUP BY server_id, run_id, scenario_name)
          TO 'runs.csv' CSV

Plain SVG, no plotting library: the README's figure is regenerated with
nothing but python3.
"""
import csv
import sys
from datetime import datetime

COLOURS = {
    "cpu_spike": "#e4572e", "memory_leak": "#8e44ad", "disk_full": "#f39c12",
    "network_saturation": "#2e86de", "slow_database": "#c0392b", "cache_failure": "#16a085",
    "server_down": "#2c3e50", "upstream_slowdown": "#95a5a6",
}
W, PANEL_H, LEFT, RIGHT, TOP, GAP = 1000, 150, 70, 20, 40, 40


def ts(text):
    text = text.strip()
    if text[-3] in "+-" and text[-6] != ":":
        text += ":00"
    return datetime.fromisoformat(text).timestamp()


def legend(shown, left, top):
    """SVG of the legend: a swatch and the name of each scenario in shown."""
    out, lx = [], left
    for scen, colour in COLOURS.items():
        if scen in shown:
            out.append(f'<rect x="{lx}" y="{top}" width="12" height="12" fill="{colour}" opacity="0.5"/>'
                       f'<text x="{lx + 16}" y="{top + 11}">{scen}</text>')
            lx += 150
    return out


def main(series_path, runs_path, out_path):
    series = {}
    for row in csv.reader(open(series_path)):
        series.setdefault(row[0], []).append((ts(row[1]), float(row[2])))
    runs = [(r[0], r[1], ts(r[2]), ts(r[3])) for r in csv.reader(open(runs_path))]
    servers = sorted(series)
    t0 = min(p[0] for s in series.values() for p in s)
    t1 = max(p[0] for s in series.values() for p in s)
    height = TOP + len(servers) * (PANEL_H + GAP) + 40
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15">A backfilled month: hourly CPU %, '
           f'scenario runs shaded (sim_backfill, sim_incident_labels)</text>']
    for k, sid in enumerate(servers):
        top = TOP + k * (PANEL_H + GAP)
        y = lambda v: top + PANEL_H - v / 100.0 * PANEL_H
        out.append(f'<rect x="{LEFT}" y="{top}" width="{W - LEFT - RIGHT}" height="{PANEL_H}" '
                   f'fill="none" stroke="#bbb"/>')
        for tick in (0, 50, 100):
            out.append(f'<text x="{LEFT - 8}" y="{y(tick) + 4}" text-anchor="end">{tick}</text>')
        for r_sid, scen, a, b in runs:
            if r_sid != sid:
                continue
            xa, xb = x(max(a, t0)), x(min(b, t1))
            out.append(f'<rect x="{xa:.1f}" y="{top}" width="{max(xb - xa, 1.5):.1f}" '
                       f'height="{PANEL_H}" fill="{COLOURS.get(scen, "#999")}" opacity="0.35">'
                       f'<title>{scen}</title></rect>')
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series[sid])
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1f3b73" stroke-width="1"/>')
        out.append(f'<text x="{LEFT}" y="{top - 6}" font-weight="bold">{sid}</text>')
    day = 86400
    first_day = (int(t0) // day + 1) * day
    bottom = TOP + len(servers) * (PANEL_H + GAP) - GAP + 16
    for d in range(first_day, int(t1) + 1, 7 * day):
        out.append(f'<text x="{x(d):.1f}" y="{bottom}" text-anchor="middle">'
                   f'{datetime.utcfromtimestamp(d).strftime("%b %d")}</text>')
    out += legend({r[1] for r in runs}, LEFT, bottom + 10)
    out.append("</svg>")
    open(out_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
