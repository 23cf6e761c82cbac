//! Figures per run, the table per scenario (medians and ranges over the repetitions, ratios of
//! medians to Ferrum), the targets of issue 5 and the CSVs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::driver::Record;
use crate::procstat::Sample;
use crate::stats::Spread;

/// The figures of one run of one contender.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Contender label.
    pub contender: String,
    /// `arrival` or `backlog`.
    pub scenario: &'static str,
    /// Which repetition, from 1 (0: a contender that was not run at all).
    pub repetition: usize,
    /// Its place in that repetition's order, from 1.
    pub position: usize,
    /// Requests created.
    pub count: usize,
    /// Requests seen Ready.
    pub ready: usize,
    /// Arrival: first create to all Ready; backlog: the contender's start to all Ready. `None`
    /// if not all were Ready in time.
    pub total: Option<Duration>,
    /// p50 of create → Ready (arrival) or start → Ready (backlog).
    pub p50: Option<Duration>,
    /// p99 of the same.
    pub p99: Option<Duration>,
    /// CPU seconds of the contender's process over the timed window.
    pub cpu_seconds: f64,
    /// CPU seconds of kube-apiserver + etcd over the same window (the driver's load included).
    pub control_plane_cpu_seconds: f64,
    /// Peak RSS of the contender's process over its life, bytes.
    pub peak_rss: u64,
    /// RSS a few seconds after all were Ready, with the requests still present, bytes.
    pub idle_rss: u64,
    /// Mean `.status` changes per request made by the contender (the driver's approval is
    /// subtracted).
    pub status_writes_per_cr: f64,
    /// Mean other (metadata/spec-only) changes per request.
    pub other_writes_per_cr: f64,
    /// kube-apiserver requests per request during the run, the driver's creates and
    /// approvals taken out (the contender's reads, writes, events, watches).
    pub api_requests_per_cr: f64,
    /// Those requests by verb and resource.
    pub api_requests: String,
    /// Failed creates or approvals.
    pub failed_writes: usize,
    /// Why there are no figures (a contender that could not be run).
    pub skipped: Option<String>,
}

impl Summary {
    /// Builds the figures from what the driver saw and the process samples. `latencies` are
    /// those of the requests seen Ready (sorted here).
    pub fn new(
        contender: &str,
        records: &HashMap<String, Record>,
        mut latencies: Vec<Duration>,
        total: Option<Duration>,
        before: Sample,
        after: Sample,
        idle: Sample,
    ) -> Self {
        latencies.sort();
        let count = records.values().filter(|r| r.created.is_some()).count();
        let n = records.len().max(1) as f64;
        let status: u32 = records.values().map(|r| r.status_changes).sum();
        let other: u32 = records.values().map(|r| r.other_changes).sum();
        Summary {
            contender: contender.into(),
            count,
            ready: records.values().filter(|r| r.ready.is_some()).count(),
            total,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            peak_rss: idle.peak_rss.max(after.peak_rss),
            idle_rss: idle.rss,
            status_writes_per_cr: (status as f64 / n - 1.0).max(0.0),
            other_writes_per_cr: other as f64 / n,
            ..Default::default()
        }
    }

    /// A contender that could not be run.
    pub fn skipped(contender: &str, reason: String) -> Self {
        Summary { contender: contender.into(), skipped: Some(reason), ..Default::default() }
    }

    /// Requests per second over the timed window.
    pub fn throughput(&self) -> Option<f64> {
        self.total.map(|t| self.count as f64 / t.as_secs_f64())
    }
}

/// The figures of the table: column title, whether to print a ratio to Ferrum, decimals, and
/// the figure of one run.
type Figure = (&'static str, bool, usize, fn(&Summary) -> Option<f64>);

const FIGURES: [Figure; 12] = [
    ("time to all Ready, s", true, 2, |s| s.total.map(|t| t.as_secs_f64())),
    ("CR/s", false, 0, Summary::throughput),
    ("p50 ms", true, 0, |s| s.p50.map(|d| d.as_secs_f64() * 1000.0)),
    ("p99 ms", true, 0, |s| s.p99.map(|d| d.as_secs_f64() * 1000.0)),
    ("CPU s", true, 2, |s| Some(s.cpu_seconds)),
    ("apiserver+etcd CPU s", false, 2, |s| Some(s.control_plane_cpu_seconds)),
    ("peak RSS MiB", true, 1, |s| Some(mib(s.peak_rss))),
    ("idle RSS MiB", true, 1, |s| Some(mib(s.idle_rss))),
    ("status writes/CR", false, 2, |s| Some(s.status_writes_per_cr)),
    ("other writes/CR", false, 2, |s| Some(s.other_writes_per_cr)),
    ("API requests/CR", false, 2, |s| Some(s.api_requests_per_cr)),
    ("failed writes", false, 0, |s| Some(s.failed_writes as f64)),
];

/// The runs of one contender in one scenario that produced figures.
fn runs_of<'a>(runs: &'a [Summary], scenario: &str, contender: &str) -> Vec<&'a Summary> {
    runs.iter().filter(|s| s.scenario == scenario && s.contender == contender && s.skipped.is_none()).collect()
}

/// `median [min–max]` (just the median when all runs agree or there is one).
fn cell(spread: Option<Spread>, decimals: usize) -> String {
    match spread {
        None => "-".into(),
        Some(s) if s.count == 1 || s.min == s.max => format!("{:.*}", decimals, s.median),
        Some(s) => format!("{:.*} [{:.*}–{:.*}]", decimals, s.median, decimals, s.min, decimals, s.max),
    }
}
/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `value / reference`, printed as `1.23x`.
fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 && value.is_finite() { format!("{:.2}x", value / reference) } else { "-".into() }
}

/// The Markdown table of one scenario: one row per contender (in `contenders` order), each
/// figure as the median over the repetitions with its range in brackets, ratios of medians to
/// Ferrum's in parentheses.
pub fn table(runs: &[Summary], scenario: &str, contenders: &[&str]) -> String {
    let ferrum = runs_of(runs, scenario, "ferrum");
    let ferrum_median = |f: &Figure| Spread::of(ferrum.iter().filter_map(|s| f.3(s))).map(|s| s.median);
    let mut out = String::from("| contender | runs | ready (min) |");
    for f in &FIGURES {
        let _ = write!(out, " {} |", f.0);
    }
    out.push_str("\n| --- | --- | --- |");
    out.push_str(&" --- |".repeat(FIGURES.len()));
    out.push('\n');
    for &contender in contenders {
        let all: Vec<&Summary> = runs.iter().filter(|s| s.scenario == scenario && s.contender == contender).collect();
        let done = runs_of(runs, scenario, contender);
        if done.is_empty() {
            let _ = writeln!(out, "| {contender} | not run (below) |{}", " |".repeat(FIGURES.len() + 1));
            continue;
        }
        let complete = done.iter().filter(|s| s.total.is_some()).count();
        let ready = done.iter().map(|s| s.ready).min().unwrap_or(0);
        let count = done.iter().map(|s| s.count).max().unwrap_or(0);
        let _ = write!(out, "| {contender} | {complete}/{} | {ready}/{count} |", all.len());
        for f in &FIGURES {
            let spread = Spread::of(done.iter().filter_map(|s| f.3(s)));
            let ratio = match (f.1, contender != "ferrum", spread, ferrum_median(f)) {
                (true, true, Some(s), Some(reference)) => format!(" ({})", ratio(s.median, reference)),
                _ => String::new(),
            };
            let _ = write!(out, " {}{ratio} |", cell(spread, f.2));
        }
        out.push('\n');
    }
    out.push_str(
        "\nCells: median over the repetitions [min–max]; in parentheses the median divided by \
         Ferrum's median. runs: repetitions in which every request was Ready in time / \
         repetitions run.\n",
    );
    out.push_str("API requests during the run (driver's creates and approvals excluded), first repetition:\n");
    for &contender in contenders {
        let all: Vec<&Summary> = runs.iter().filter(|s| s.scenario == scenario && s.contender == contender).collect();
        match all.iter().find(|s| s.skipped.is_none()) {
            Some(s) => {
                let _ = writeln!(out, "- {contender} (repetition {}): {}", s.repetition, s.api_requests);
            }
            None => {
                let reason = all.first().and_then(|s| s.skipped.as_deref()).unwrap_or("no run");
                let _ = writeln!(out, "- {contender} not run: {reason}");
            }
        }
    }
    for s in runs.iter().filter(|s| s.scenario == scenario && s.repetition > 0) {
        if let Some(reason) = &s.skipped {
            let _ = writeln!(out, "- {} repetition {} failed: {reason}", s.contender, s.repetition);
        }
    }
    out
}

/// One summary per contender whose figures are the medians of its runs in `scenario` (for
/// [`targets`]); the time is `None` unless every run completed.
pub fn medians(runs: &[Summary], scenario: &str, contenders: &[&str]) -> Vec<Summary> {
    contenders
        .iter()
        .filter_map(|&contender| {
            let done = runs_of(runs, scenario, contender);
            if done.is_empty() {
                return None;
            }
            let median =
                |f: fn(&Summary) -> Option<f64>| Spread::of(done.iter().filter_map(|s| f(s))).map(|s| s.median);
            let complete = done.iter().all(|s| s.total.is_some());
            Some(Summary {
                contender: contender.into(),
                scenario: done[0].scenario,
                total: median(|s| s.total.map(|t| t.as_secs_f64())).filter(|_| complete).map(Duration::from_secs_f64),
                peak_rss: median(|s| Some(s.peak_rss as f64)).unwrap_or(0.0) as u64,
                ..Default::default()
            })
        })
        .collect()
}

/// The lines for the targets of issue 5 (reported, never asserted).
pub fn targets(summaries: &[Summary]) -> String {
    let find = |name: &str| summaries.iter().find(|s| s.contender == name && s.skipped.is_none());
    let (ferrum, floor, sample) = (find("ferrum"), find("floor"), find("sample-external-issuer"));
    let mut out = String::new();
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    match (ferrum.and_then(|f| f.total), floor.and_then(|f| f.total)) {
        (Some(f), Some(fl)) => {
            let x = f.as_secs_f64() / fl.as_secs_f64();
            let _ = writeln!(out, "- Ferrum's time within 1.2x the floor's: {x:.2}x -> {}", verdict(x <= 1.2));
        }
        _ => out.push_str(
            "- Ferrum's time within 1.2x the floor's: not measured (Ferrum or the floor not run, or a run did not complete)\n",
        ),
    }
    match (ferrum.and_then(|f| f.total), sample.and_then(|s| s.total)) {
        (Some(f), Some(s)) => {
            let x = s.as_secs_f64() / f.as_secs_f64();
            let _ = writeln!(
                out,
                "- Ferrum at least 2x faster than sample-external-issuer: {x:.2}x -> {}",
                verdict(x >= 2.0)
            );
        }
        _ => {
            out.push_str("- Ferrum at least 2x faster than sample-external-issuer: not measured (contender not run)\n")
        }
    }
    match (ferrum, sample) {
        (Some(f), Some(s)) if s.peak_rss > 0 => {
            let x = f.peak_rss as f64 / s.peak_rss as f64;
            let _ = writeln!(
                out,
                "- Ferrum's peak RSS at most 1/3 of sample-external-issuer's: {x:.2} -> {}",
                verdict(x <= 1.0 / 3.0)
            );
        }
        _ => out.push_str(
            "- Ferrum's peak RSS at most 1/3 of sample-external-issuer's: not measured (contender not run)\n",
        ),
    }
    if let (Some(f), Some(c)) = (ferrum.and_then(|f| f.total), find("cert-manager-ca").and_then(|c| c.total)) {
        let _ = writeln!(
            out,
            "- (for reference) cert-manager's CA issuer took {:.2}x Ferrum's time",
            c.as_secs_f64() / f.as_secs_f64()
        );
    }
    out
}

/// Writes `<dir>/<stem>.csv` (one row per run) and `<dir>/<stem>-latency.csv` (one row per
/// request and run). Returns the two paths.
pub fn write_csvs(
    dir: &Path,
    stem: &str,
    foreign: usize,
    runs: &[Summary],
    latencies: &[Latencies],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let summary_path = dir.join(format!("{stem}.csv"));
    let mut csv = String::from(
        "scenario,repetition,position,contender,count,foreign,ready,total_s,throughput_per_s,p50_ms,p99_ms,cpu_s,control_plane_cpu_s,peak_rss_mib,idle_rss_mib,status_writes_per_cr,other_writes_per_cr,api_requests_per_cr,failed_writes,skipped\n",
    );
    for s in runs {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.2},{:.2},{:.3},{:.3},{:.3},{},\"{}\"",
            s.scenario,
            s.repetition,
            s.position,
            s.contender,
            s.count,
            foreign,
            s.ready,
            opt(s.total.map(|t| t.as_secs_f64())),
            opt(s.throughput()),
            opt(s.p50.map(|d| d.as_secs_f64() * 1000.0)),
            opt(s.p99.map(|d| d.as_secs_f64() * 1000.0)),
            s.cpu_seconds,
            s.control_plane_cpu_seconds,
            mib(s.peak_rss),
            mib(s.idle_rss),
            s.status_writes_per_cr,
            s.other_writes_per_cr,
            s.api_requests_per_cr,
            s.failed_writes,
            s.skipped.as_deref().unwrap_or("").replace('"', "'").replace('\n', " "),
        );
    }
    std::fs::write(&summary_path, csv).with_context(|| format!("writing {}", summary_path.display()))?;
    let latency_path = dir.join(format!("{stem}-latency.csv"));
    let mut csv = String::from("scenario,repetition,contender,latency_ms\n");
    for run in latencies {
        for v in &run.values {
            let _ =
                writeln!(csv, "{},{},{},{:.3}", run.scenario, run.repetition, run.contender, v.as_secs_f64() * 1000.0);
        }
    }
    std::fs::write(&latency_path, csv).with_context(|| format!("writing {}", latency_path.display()))?;
    Ok((summary_path, latency_path))
}

/// The per-request latencies of one run, sorted.
pub struct Latencies {
    /// `arrival` or `backlog`.
    pub scenario: &'static str,
    /// From 1.
    pub repetition: usize,
    /// Contender label.
    pub contender: String,
    /// Create → Ready (arrival) or start → Ready (backlog).
    pub values: Vec<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn run(contender: &str, repetition: usize, total_s: f64, peak_mib: u64) -> Summary {
        Summary {
            contender: contender.into(),
            scenario: "backlog",
            repetition,
            position: 1,
            count: 10,
            ready: 10,
            total: Some(Duration::from_secs_f64(total_s)),
            peak_rss: peak_mib << 20,
            ..Default::default()
        }
    }

    #[test]
    fn table_of_medians_ranges_and_ratios() {
        let runs = vec![
            run("ferrum", 1, 2.0, 10),
            run("ferrum", 2, 4.0, 10),
            run("ferrum", 3, 3.0, 10),
            run("floor", 1, 1.5, 5),
            Summary { scenario: "backlog", repetition: 2, ..Summary::skipped("floor", "boom".into()) },
            Summary { scenario: "backlog", ..Summary::skipped("sample-external-issuer", "no binary".into()) },
        ];
        let table = table(&runs, "backlog", &["ferrum", "floor", "sample-external-issuer"]);
        assert!(table.contains("| ferrum | 3/3 | 10/10 | 3.00 [2.00–4.00] |"), "{table}");
        assert!(table.contains("| floor | 1/2 | 10/10 | 1.50 (0.50x) |"), "{table}");
        assert!(table.contains("| 5.0 (0.50x) |"), "{table}");
        assert!(table.contains("| sample-external-issuer | not run (below) |"), "{table}");
        assert!(table.contains("- floor repetition 2 failed: boom"), "{table}");
        assert!(table.contains("- sample-external-issuer not run: no binary"), "{table}");
        let medians = medians(&runs, "backlog", &["ferrum", "floor"]);
        assert_eq!(medians[0].total, Some(Duration::from_secs(3)));
        assert_eq!(medians[1].peak_rss, 5 << 20);
    }
}
