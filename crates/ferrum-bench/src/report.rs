//! Figures per contender, the table with ratios to Ferrum, the targets of issue 5 and the CSVs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::driver::{Record, Timing};
use crate::procstat::Sample;

/// The figures of one contender.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Contender label.
    pub contender: String,
    /// Requests created.
    pub count: usize,
    /// Requests seen Ready.
    pub ready: usize,
    /// First create to all Ready, if all were Ready in time.
    pub total: Option<Duration>,
    /// p50 of create → Ready.
    pub p50: Option<Duration>,
    /// p99 of create → Ready.
    pub p99: Option<Duration>,
    /// CPU seconds of the contender's process between the first create and all Ready.
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
    /// Builds the figures from what the driver saw and the process samples.
    pub fn new(
        contender: &str,
        records: &HashMap<String, Record>,
        timing: &Timing,
        before: Sample,
        after: Sample,
        idle: Sample,
    ) -> Self {
        let mut latencies: Vec<Duration> = records.values().filter_map(Record::latency).collect();
        latencies.sort();
        let count = records.values().filter(|r| r.created.is_some()).count();
        let n = records.len().max(1) as f64;
        let status: u32 = records.values().map(|r| r.status_changes).sum();
        let other: u32 = records.values().map(|r| r.other_changes).sum();
        Summary {
            contender: contender.into(),
            count,
            ready: records.values().filter(|r| r.ready.is_some()).count(),
            total: timing.all_ready,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            peak_rss: idle.peak_rss.max(after.peak_rss),
            idle_rss: idle.rss,
            status_writes_per_cr: (status as f64 / n - 1.0).max(0.0),
            other_writes_per_cr: other as f64 / n,
            failed_writes: timing.failed_writes,
            ..Default::default()
        }
    }

    /// A contender that could not be run.
    pub fn skipped(contender: &str, reason: String) -> Self {
        Summary { contender: contender.into(), skipped: Some(reason), ..Default::default() }
    }

    /// Requests per second from the first create to all Ready.
    pub fn throughput(&self) -> Option<f64> {
        self.total.map(|t| self.count as f64 / t.as_secs_f64())
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

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64()))
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0}", d.as_secs_f64() * 1000.0))
}

/// `value / reference`, printed as `1.23x`.
fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 && value.is_finite() { format!("{:.2}x", value / reference) } else { "-".into() }
}

/// The Markdown table: one row per contender, ratios to Ferrum in parentheses.
pub fn table(summaries: &[Summary]) -> String {
    let ferrum = summaries.iter().find(|s| s.contender == "ferrum" && s.skipped.is_none());
    let mut out = String::new();
    out.push_str(
        "| contender | ready | time to all Ready, s | CR/s | p50 ms | p99 ms | CPU s | apiserver+etcd CPU s | peak RSS MiB | idle RSS MiB | status writes/CR | other writes/CR | API requests/CR |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for s in summaries {
        if s.skipped.is_some() {
            let _ = writeln!(out, "| {} | not run (below) | | | | | | | | | | | |", s.contender);
            continue;
        }
        let r = |value: f64, reference: Option<f64>| match reference {
            Some(reference) if s.contender != "ferrum" => format!(" ({})", ratio(value, reference)),
            _ => String::new(),
        };
        let total = s.total.map(|t| t.as_secs_f64());
        let _ = writeln!(
            out,
            "| {} | {}/{} | {}{} | {} | {}{} | {}{} | {:.2}{} | {:.2} | {:.1}{} | {:.1}{} | {:.2} | {:.2} | {:.2} |",
            s.contender,
            s.ready,
            s.count,
            secs(s.total),
            total.map_or(String::new(), |t| r(t, ferrum.and_then(|f| f.total).map(|d| d.as_secs_f64()))),
            s.throughput().map_or("-".into(), |t| format!("{t:.0}")),
            ms(s.p50),
            s.p50.map_or(String::new(), |p| r(p.as_secs_f64(), ferrum.and_then(|f| f.p50).map(|d| d.as_secs_f64()))),
            ms(s.p99),
            s.p99.map_or(String::new(), |p| r(p.as_secs_f64(), ferrum.and_then(|f| f.p99).map(|d| d.as_secs_f64()))),
            s.cpu_seconds,
            r(s.cpu_seconds, ferrum.map(|f| f.cpu_seconds)),
            s.control_plane_cpu_seconds,
            mib(s.peak_rss),
            r(mib(s.peak_rss), ferrum.map(|f| mib(f.peak_rss))),
            mib(s.idle_rss),
            r(mib(s.idle_rss), ferrum.map(|f| mib(f.idle_rss))),
            s.status_writes_per_cr,
            s.other_writes_per_cr,
            s.api_requests_per_cr,
        );
    }
    out.push_str("\nRatios in parentheses are the contender's figure divided by Ferrum's.\n");
    out.push_str("API requests during the run (driver's creates and approvals excluded):\n");
    for s in summaries {
        match &s.skipped {
            Some(reason) => {
                let _ = writeln!(out, "- {} not run: {}", s.contender, reason);
            }
            None => {
                let _ = writeln!(out, "- {}: {}", s.contender, s.api_requests);
            }
        }
    }
    out
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
        _ => out.push_str("- Ferrum's time within 1.2x the floor's: not measured (a run did not complete)\n"),
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

/// Writes `<dir>/issuance-<n>.csv` (one row per contender) and `<dir>/issuance-<n>-latency.csv`
/// (one row per request). Returns the two paths.
pub fn write_csvs(
    dir: &Path,
    n: usize,
    summaries: &[Summary],
    latencies: &[(String, Vec<Duration>)],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let summary_path = dir.join(format!("issuance-{n}.csv"));
    let mut csv = String::from(
        "contender,count,ready,total_s,throughput_per_s,p50_ms,p99_ms,cpu_s,control_plane_cpu_s,peak_rss_mib,idle_rss_mib,status_writes_per_cr,other_writes_per_cr,api_requests_per_cr,failed_writes,skipped\n",
    );
    for s in summaries {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{:.3},{:.3},{:.2},{:.2},{:.3},{:.3},{:.3},{},\"{}\"",
            s.contender,
            s.count,
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
            s.skipped.as_deref().unwrap_or("").replace('"', "'"),
        );
    }
    std::fs::write(&summary_path, csv).with_context(|| format!("writing {}", summary_path.display()))?;
    let latency_path = dir.join(format!("issuance-{n}-latency.csv"));
    let mut csv = String::from("contender,latency_ms\n");
    for (contender, values) in latencies {
        for v in values {
            let _ = writeln!(csv, "{contender},{:.3}", v.as_secs_f64() * 1000.0);
        }
    }
    std::fs::write(&latency_path, csv).with_context(|| format!("writing {}", latency_path.display()))?;
    Ok((summary_path, latency_path))
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
}
