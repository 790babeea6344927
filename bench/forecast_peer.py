#!/usr/bin/env python3
"""bench/forecast_peer.py — the statsmodels peer of bench/forecast.sh.

Holt-Winters (statsmodels.tsa.holtwinters.ExponentialSmoothing, additive
trend and additive daily season) fitted at every origin bench/forecast.sh
asks for, timed per fit (wall clock: model construction, fit and the 24 h
forecast), one fit a process, --jobs processes at a time. Each process runs
its BLAS single-threaded, like the one backend that runs ours.

  fleet: --fleet-history CSV (server_id, epoch, cpu_usage, memory_usage,
         disk_usage, network_usage: the 30 s samples, offline ones left out)
         and --fleet-tasks CSV (server_id, metric, origin_epoch). The 30 s
         samples are averaged into 5-minute cells [o - k 300 s, o - (k-1)
         300 s) before the origin o (the daily period 2880 of the 30 s data
         takes minutes a fit; 288 a few seconds); the 14 days of
         cells before o (4032) are the training span; an empty cell is
         interpolated. Forecast step s is the cell [o + (s-1) 300 s, o + s
         300 s), so the value at o + h is compared with step h / 300 + 1.
         Forecasts are clamped to 0..100, as ours are.
  nab:   --nab-series CSV (file, epoch, value) and --nab-tasks CSV (file,
         origin_epoch): every row at or before the origin, on a 5-minute grid
         ending at the origin (a row goes to its nearest point; an empty
         point is interpolated); forecast step s is o + s 300 s.

Writes --out CSV: kind, series, metric, origin_epoch, h_seconds, forecast,
fit_seconds, status ('ok', or the exception's name: forecast empty).
Progress goes to stderr.
"""
import argparse
import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import multiprocessing as mp  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels  # noqa: E402
from statsmodels.tsa.holtwinters import ExponentialSmoothing  # noqa: E402

CELL = 300                  # seconds: the 5-minute grid
PERIOD = 86400 // CELL      # 288 cells a day
TRAIN_FLEET = 14 * 86400    # the fleet's training span, as ours ('14 days')
HORIZON = 86400             # forecasts 24 h ahead
METRICS = ("cpu_usage", "memory_usage", "disk_usage", "network_usage")

# the series, loaded before the pool forks: the workers share them
FLEET = {}                  # (server, metric) -> (epochs, values), sorted
NAB = {}                    # file -> (epochs, values), sorted
HORIZONS = ()


def fit_forecast(y, steps):
    """Holt-Winters on y, `steps` ahead; the wall-clock time of it all."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(y, trend="add", seasonal="add", seasonal_periods=PERIOD,
                                     initialization_method="estimated")
        f = np.asarray(model.fit().forecast(steps), dtype=float)
    return f, time.perf_counter() - t0


def gridded(t, v, idx, first, last):
    """Means of v by cell index idx in first..last, empty cells interpolated."""
    keep = (idx >= first) & (idx <= last)
    cells = np.arange(first, last + 1)
    s = pd.Series(v[keep]).groupby(idx[keep]).mean().reindex(cells)
    return s.interpolate(limit_direction="both").to_numpy(dtype=float), int(s.isna().sum())


def task(args):
    kind, series, metric, origin = args
    try:
        if kind == "fleet":
            t, v = FLEET[(series, metric)]
            # cell k (k < 0) = [o + k 300, o + (k+1) 300): the 14 days before o
            idx = np.floor((t - origin) / CELL).astype(np.int64)
            y, _ = gridded(t, v, idx, -TRAIN_FLEET // CELL, -1)
            f, secs = fit_forecast(y, HORIZON // CELL + 1)
            f = np.clip(f, 0.0, 100.0)
            out = [(h, f[h // CELL]) for h in HORIZONS]          # step h/300 + 1
        else:
            t, v = NAB[series]
            t, v = t[t <= origin], v[t <= origin]
            idx = np.rint((t - origin) / CELL).astype(np.int64)
            y, _ = gridded(t, v, idx, int(idx.min()), 0)
            f, secs = fit_forecast(y, HORIZON // CELL)
            out = [(h, f[h // CELL - 1]) for h in HORIZONS]      # step h/300
        if not np.all(np.isfinite([x for _, x in out])):
            return [(kind, series, metric, origin, h, "", secs, "nonfinite") for h, _ in out]
        return [(kind, series, metric, origin, h, repr(float(x)), secs, "ok") for h, x in out]
    except Exception as e:  # a failed fit is a result too: counted, not fatal
        return [(kind, series, metric, origin, h, "", "", type(e).__name__) for h in HORIZONS]


def main():
    global HORIZONS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fleet-history")
    ap.add_argument("--fleet-tasks")
    ap.add_argument("--nab-series")
    ap.add_argument("--nab-tasks")
    ap.add_argument("--horizons", default="900,3600,21600,86400", help="seconds, comma separated")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    HORIZONS = tuple(int(x) for x in a.horizons.split(","))
    assert all(h % CELL == 0 and 0 < h <= HORIZON for h in HORIZONS), "horizons: multiples of 300 s up to 24 h"

    tasks = []
    if a.fleet_history:
        h = pd.read_csv(a.fleet_history)
        for sid, g in h.groupby("server_id"):
            g = g.sort_values("epoch")
            for m in METRICS:
                ok = g[m].notna()
                FLEET[(sid, m)] = (g["epoch"][ok].to_numpy(np.float64), g[m][ok].to_numpy(np.float64))
        ft = pd.read_csv(a.fleet_tasks)
        tasks += [("fleet", r.server_id, r.metric, int(r.origin_epoch)) for r in ft.itertuples()]
    if a.nab_series:
        s = pd.read_csv(a.nab_series)
        for f, g in s.groupby("file"):
            g = g.sort_values("epoch")
            NAB[f] = (g["epoch"].to_numpy(np.float64), g["value"].to_numpy(np.float64))
            gap = np.median(np.diff(NAB[f][0]))
            if gap != CELL:
                print(f"forecast_peer.py: {f}: median gap {gap:g} s, not {CELL} s", file=sys.stderr)
        nt = pd.read_csv(a.nab_tasks)
        tasks += [("nab", r.file, "-", int(r.origin_epoch)) for r in nt.itertuples()]

    print(f"statsmodels {statsmodels.__version__}: {len(tasks)} fits, {a.jobs} processes",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    rows = []
    with mp.get_context("fork").Pool(a.jobs) as pool:
        for i, r in enumerate(pool.imap(task, tasks, chunksize=1), 1):
            rows += r
            if i % 25 == 0 or i == len(tasks):
                el = time.perf_counter() - start
                print(f"  statsmodels: {i}/{len(tasks)} fits, {el:.0f} s, about {el / i * (len(tasks) - i):.0f} s to go",
                      file=sys.stderr, flush=True)
    pd.DataFrame(rows, columns=["kind", "series", "metric", "origin_epoch", "h_seconds", "forecast",
                                "fit_seconds", "status"]).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
