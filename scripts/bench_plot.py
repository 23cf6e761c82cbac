#!/usr/bin/env python3
"""Draws the issuance benchmark's PNG from ferrum-bench's CSVs.

    python3 scripts/bench_plot.py target/bench/issuance-1000.csv target/bench/issuance-1000.png

Reads the summary CSV and its sibling `<name>-latency.csv`. Top: the create->Ready latency
distribution of each contender (empirical CDF, log time axis) and a box plot. Bottom: bars of
time to all Ready, CPU seconds, peak RSS and idle RSS. Needs matplotlib (pip install matplotlib).
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "ferrum": "#c0392b",
    "cert-manager-ca": "#2c7fb8",
    "sample-external-issuer": "#7f8c8d",
    "floor": "#27ae60",
}


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    summary_path, png_path = Path(argv[1]), Path(argv[2])
    latency_path = summary_path.with_name(summary_path.stem + "-latency.csv")
    summary = [r for r in read_rows(summary_path) if not r["skipped"] and r["total_s"]]
    latencies = {}
    for row in read_rows(latency_path):
        latencies.setdefault(row["contender"], []).append(float(row["latency_ms"]))
    names = [r["contender"] for r in summary]
    count = summary[0]["count"] if summary else "?"

    fig = plt.figure(figsize=(13, 8.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 4)
    fig.suptitle(f"Ferrum issuance benchmark: {count} CertificateRequests per contender")

    cdf = fig.add_subplot(grid[0, :2])
    for name in names:
        values = sorted(latencies.get(name, []))
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            cdf.step(values, ys, where="post", label=name, color=COLORS.get(name))
    cdf.set_xscale("log")
    cdf.set_xlabel("create -> Ready latency (ms, log)")
    cdf.set_ylabel("fraction of requests")
    cdf.set_title("Latency distribution (CDF)")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(loc="lower right")

    box = fig.add_subplot(grid[0, 2:])
    data = [latencies.get(n, [0.0]) for n in names]
    parts = box.boxplot(data, whis=(1, 99), showfliers=False, patch_artist=True)
    box.set_xticks(range(1, len(names) + 1), names)
    for patch, name in zip(parts["boxes"], names):
        patch.set_facecolor(COLORS.get(name, "#999999"))
        patch.set_alpha(0.6)
    box.set_ylabel("latency (ms)")
    box.set_title("Latency: box = p25..p75, whiskers = p1..p99")
    box.grid(True, axis="y", alpha=0.3)

    bars = [
        ("total_s", "time to all Ready (s)"),
        ("cpu_s", "issuer CPU (s)"),
        ("peak_rss_mib", "peak RSS (MiB)"),
        ("idle_rss_mib", "idle RSS (MiB)"),
    ]
    for i, (column, title) in enumerate(bars):
        ax = fig.add_subplot(grid[1, i])
        values = [float(r[column] or 0) for r in summary]
        rects = ax.bar(names, values, color=[COLORS.get(n, "#999999") for n in names])
        ax.bar_label(rects, fmt="%.2f" if max(values, default=0) < 10 else "%.0f", fontsize=8)
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)

    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    print(f"PNG: {png_path}")


if __name__ == "__main__":
    main(sys.argv)
