//! `ferrum-bench`: the issuance benchmark of issue 5.
//!
//! `ferrum-bench run` starts its own local control plane, pre-generates N P-256 CSRs and one
//! CA, and times each contender alone in a fresh namespace: Ferrum, cert-manager's built-in CA
//! issuer (through `cm-runner`) and the floor (`ferrum-bench floor`, one apply per request), in
//! two scenarios (requests arriving while the contender runs, and a backlog it drains after
//! its start), for several repetitions in alternating order, optionally beside a foreign load
//! of large requests for another issuer. It prints a table per scenario (medians, ranges,
//! ratios to Ferrum) and writes CSVs under `target/bench/`.
//!
//! Not a test: nothing here runs under `cargo test`. See `scripts/bench.sh` and
//! `docs/benchmarks.md`.

mod apicalls;
mod contender;
mod driver;
mod floor;
mod foreign;
mod pki;
mod procstat;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Parser, Debug)]
#[command(version, about = "Ferrum's issuance benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the benchmark (starts and stops its own control plane).
    Run(run::RunArgs),
    /// The floor contender: one server-side apply of a precomputed certificate per approved
    /// request. Started by `run`; runs until SIGTERM or `--max-runtime`.
    Floor(floor::FloorArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube_client=off,ferrum_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Floor(args) => runtime.block_on(floor::run(args)),
    }
}

/// Parses `90s`, `5m`, `250ms` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit in {text} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// The default output directory, `target/bench` under the workspace root.
pub(crate) fn default_out_dir() -> PathBuf {
    ferrum_testenv::binaries::repo_root().join("target/bench")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3d").is_err());
    }
}
