#!/usr/bin/env python3
"""Draws how the issuance benchmark's cost grows with N, from several of its summary CSVs.

    python3 scripts/bench_growth.py OUT.png issuance-1000.csv issuance-10000.csv issuance-50000.csv

For each contender and scenario found: time to all Ready, CPU seconds, peak and idle RSS, and
API requests per request against N (log-log; the median over repetitions where a CSV has
several). Prints the same figures as a Markdown table on stdout. Needs matplotlib.
"""

import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURES = [
    ("total_s", "time to all Ready, s"),
    ("cpu_s", "CPU s"),
    ("peak_rss_mib", "peak RSS, MiB"),
    ("idle_rss_mib", "idle RSS, MiB"),
    ("api_requests_per_cr", "API requests per CR"),
]
COLORS = {"ferrum": "#c0392b", "cert-manager-ca": "#2c7fb8", "floor": "#27ae60"}
STYLES = {"arrival": "-", "backlog": "--"}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, paths = argv[1], argv[2:]
    # (contender, scenario) -> N -> figure -> [values over repetitions]
    series = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("skipped") or row.get("ready") != row.get("count") or row.get("foreign", "0") != "0":
                    continue
                n = int(row["count"])
                cell = series.setdefault((row["contender"], row["scenario"]), {}).setdefault(n, {})
                for key, _ in FIGURES:
                    cell.setdefault(key, []).append(float(row[key]))

    print("| contender | scenario | N | runs | " + " | ".join(label for _, label in FIGURES) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in FIGURES) + " |")
    for (contender, scenario), by_n in sorted(series.items()):
        for n in sorted(by_n):
            cells = [f"{statistics.median(by_n[n][key]):.2f}" for key, _ in FIGURES]
            runs = len(by_n[n][FIGURES[0][0]])
            print(f"| {contender} | {scenario} | {n} | {runs} | " + " | ".join(cells) + " |")

    fig, axes = plt.subplots(1, len(FIGURES), figsize=(4.2 * len(FIGURES), 4))
    for ax, (key, label) in zip(axes, FIGURES):
        for (contender, scenario), by_n in sorted(series.items()):
            ns = sorted(by_n)
            ys = [statistics.median(by_n[n][key]) for n in ns]
            ax.plot(ns, ys, STYLES.get(scenario, ":"), marker="o", color=COLORS.get(contender, "#555"),
                    label=f"{contender} ({scenario})")
        ax.set_xscale("log")
        if key != "api_requests_per_cr":
            ax.set_yscale("log")
        ax.set_xlabel("N requests")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot: {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
