#!/usr/bin/env python3
"""Draws the issuance benchmark's PNG from ferrum-bench's CSVs.

    python3 scripts/bench_plot.py target/bench/issuance-1000.csv target/bench/issuance-1000.png

Reads the summary CSV (one row per run: scenario, repetition, contender, figures) and its
sibling `<name>-latency.csv` (one row per request and run). Top: per scenario, the latency
distribution of each contender over all its repetitions (empirical CDF, log time axis; arrival:
create -> Ready, backlog: contender start -> Ready). Bottom: per figure (time to all Ready, CPU
seconds, peak RSS, idle RSS) one bar per contender and scenario at the median over the
repetitions, with the min..max range as an error bar. Needs matplotlib (pip install matplotlib).
"""

import csv
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

COLORS = {
    "ferrum": "#c0392b",
    "cert-manager-ca": "#2c7fb8",
    "sample-external-issuer": "#7f8c8d",
    "floor": "#27ae60",
}
HATCHES = {"arrival": "", "backlog": "//"}
LATENCY_FROM = {"arrival": "create -> Ready", "backlog": "contender start -> Ready"}


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ordered(values):
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    summary_path, png_path = Path(argv[1]), Path(argv[2])
    latency_path = summary_path.with_name(summary_path.stem + "-latency.csv")
    runs = [r for r in read_rows(summary_path) if not r["skipped"]]
    latencies = {}
    for row in read_rows(latency_path):
        key = (row["scenario"], row["contender"])
        latencies.setdefault(key, []).append(float(row["latency_ms"]))
    scenarios = ordered(r["scenario"] for r in runs) or ["arrival"]
    names = ordered(r["contender"] for r in runs)
    count = runs[0]["count"] if runs else "?"
    reps = max((int(r["repetition"]) for r in runs), default=0)
    foreign = runs[0].get("foreign", "0") if runs else "0"

    fig = plt.figure(figsize=(13, 8.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 4)
    title = f"Ferrum issuance benchmark: {count} CertificateRequests per run, {reps} repetition(s)"
    if foreign not in ("", "0"):
        title += f", {foreign} foreign requests present"
    fig.suptitle(title)

    width = 4 // len(scenarios)
    for i, scenario in enumerate(scenarios):
        cdf = fig.add_subplot(grid[0, i * width : (i + 1) * width])
        for name in names:
            values = sorted(latencies.get((scenario, name), []))
            if values:
                ys = [(k + 1) / len(values) for k in range(len(values))]
                cdf.step(values, ys, where="post", label=name, color=COLORS.get(name))
        cdf.set_xscale("log")
        cdf.set_xlabel(f"{LATENCY_FROM.get(scenario, 'latency')} (ms, log)")
        cdf.set_ylabel("fraction of requests")
        cdf.set_title(f"{scenario}: latency distribution (CDF, all repetitions)")
        cdf.grid(True, which="both", alpha=0.3)
        cdf.legend(loc="lower right")

    bars = [
        ("total_s", "time to all Ready (s)"),
        ("cpu_s", "issuer CPU (s)"),
        ("peak_rss_mib", "peak RSS (MiB)"),
        ("idle_rss_mib", "idle RSS (MiB)"),
    ]
    bar_width = 0.8 / len(scenarios)
    for i, (column, title) in enumerate(bars):
        ax = fig.add_subplot(grid[1, i])
        top = 0.0
        for j, scenario in enumerate(scenarios):
            xs, medians, low, high, colors = [], [], [], [], []
            for k, name in enumerate(names):
                values = [float(r[column]) for r in runs if r["scenario"] == scenario and r["contender"] == name and r[column]]
                if not values:
                    continue
                median = statistics.median(values)
                xs.append(k + (j - (len(scenarios) - 1) / 2) * bar_width)
                medians.append(median)
                low.append(median - min(values))
                high.append(max(values) - median)
                colors.append(COLORS.get(name, "#999999"))
                top = max(top, max(values))
            rects = ax.bar(
                xs, medians, bar_width, yerr=[low, high], capsize=3, color=colors,
                hatch=HATCHES.get(scenario, ""), edgecolor="black", linewidth=0.5,
            )
            ax.bar_label(rects, fmt="%.2f" if top < 10 else "%.0f", fontsize=7)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"{title}, median [min..max]")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        if len(scenarios) > 1:
            handles = [Patch(facecolor="white", edgecolor="black", hatch=HATCHES.get(s, ""), label=s) for s in scenarios]
            ax.legend(handles=handles, fontsize=7)

    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    print(f"PNG: {png_path}")


if __name__ == "__main__":
    main(sys.argv)
