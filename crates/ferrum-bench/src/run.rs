//! `ferrum-bench run`: the whole benchmark, contender by contender.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ferrum::CertificateRequest;
use ferrum_testenv::{ControlPlane, ControlPlaneOptions};
use kube::api::{Api, DeleteParams, ListParams};

use crate::contender::{self, Contender, Settings};
use crate::driver::Driver;
use crate::report::{self, Summary};
use crate::{apicalls, pki, procstat};

/// Flags of `ferrum-bench run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// CertificateRequests per contender.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Worker concurrency of every contender that has a knob (Ferrum `--concurrency`,
    /// cm-runner `--workers`, the floor's writers).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Creates + approvals the driver keeps in flight.
    #[arg(long, default_value_t = 16)]
    client_concurrency: usize,
    /// Contenders, run in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ferrum,cert-manager,sample,floor")]
    contenders: Vec<Contender>,
    /// Give up on a contender this long after its first create (default: 60 s + 200 ms per
    /// request).
    #[arg(long, value_parser = crate::parse_duration)]
    timeout: Option<Duration>,
    /// How long after all are Ready to read the idle RSS.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    idle_wait: Duration,
    /// Where the CSVs go.
    #[arg(long, default_value_os_t = crate::default_out_dir())]
    out_dir: PathBuf,
    /// The `ferrum-issuer` binary.
    #[arg(long, default_value_os_t = contender::default_ferrum_bin())]
    ferrum_bin: PathBuf,
    /// Ferrum's `--log-level` (its default, `info`, as deployed).
    #[arg(long, default_value = "info")]
    ferrum_log_level: String,
    /// A sample-external-issuer binary you built yourself (the Go module proxy does not serve
    /// the module, and this repository holds no recipe to build it). Without it the `sample`
    /// contender is reported as not run.
    #[arg(long)]
    sample_bin: Option<PathBuf>,
    /// The folder with sample-external-issuer's CRDs (`config/crd/bases` of its source).
    #[arg(long)]
    sample_crds: Option<PathBuf>,
    /// Keep the requests of each contender instead of deleting them before the next one.
    #[arg(long)]
    keep_requests: bool,
}

/// Runs every contender in turn and reports.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let n = args.count;
    let timeout = args.timeout.unwrap_or(Duration::from_secs(60) + Duration::from_millis(200) * n as u32);
    let step = Instant::now();
    let ca = pki::make_ca()?;
    let csrs = pki::make_csrs(n)?;
    eprintln!("bench: {n} P-256 CSRs and a CA generated in {:.1}s", step.elapsed().as_secs_f64());

    let step = Instant::now();
    let cp = ControlPlane::start(ControlPlaneOptions::default()).await.context("starting the control plane")?;
    eprintln!("bench: control plane up in {:.1}s ({})", step.elapsed().as_secs_f64(), cp.dir().display());

    let settings = Settings {
        ferrum_bin: &args.ferrum_bin,
        concurrency: args.concurrency,
        ferrum_log_level: &args.ferrum_log_level,
        sample: args.sample_bin.as_deref().zip(args.sample_crds.as_deref()),
    };
    let mut summaries = Vec::new();
    let mut latencies = Vec::new();
    for &c in &args.contenders {
        eprintln!("bench: {} ...", c.label());
        match measure(c, &cp, &ca, &csrs, &settings, &args, timeout).await {
            Ok((summary, lat)) => {
                eprintln!(
                    "bench: {}: {}/{} Ready in {}",
                    c.label(),
                    summary.ready,
                    summary.count,
                    summary.total.map_or("(timed out)".into(), |t| format!("{:.2}s", t.as_secs_f64()))
                );
                latencies.push((c.label().to_owned(), lat));
                summaries.push(summary);
            }
            Err(e) => {
                eprintln!("bench: {} not measured: {e:#}", c.label());
                summaries.push(Summary::skipped(c.label(), format!("{e:#}")));
            }
        }
    }

    println!("\nIssuance benchmark: {n} CertificateRequests per contender, concurrency {}\n", args.concurrency);
    println!("{}", report::table(&summaries));
    println!("Targets (issue 5):\n{}", report::targets(&summaries));
    let (summary_csv, latency_csv) = report::write_csvs(&args.out_dir, n, &summaries, &latencies)?;
    println!("CSV: {}\nCSV: {}", summary_csv.display(), latency_csv.display());
    Ok(())
}

/// One contender: start it in a fresh namespace, issue, sample, stop it.
async fn measure(
    contender: Contender,
    cp: &ControlPlane,
    ca: &pki::Ca,
    csrs: &[Vec<u8>],
    settings: &Settings<'_>,
    args: &RunArgs,
    timeout: Duration,
) -> anyhow::Result<(Summary, Vec<Duration>)> {
    let namespace = cp.fresh_namespace(&format!("bench-{}", contender.label())).await?;
    let running = contender::start(contender, cp, &namespace, ca, settings).await?;
    let pid = running.process.pid();
    let driver = Driver::start(cp.client()?, &namespace).await?;
    let client = cp.client()?;
    let calls_before = apicalls::read(&client).await?;
    let control_plane = procstat::children_named(&["kube-apiserver", "etcd"]);
    let control_plane_before = procstat::cpu_seconds(&control_plane);
    let before = procstat::sample(pid)?;
    let timing = driver.issue(csrs, &running.issuer_ref, args.client_concurrency, timeout).await?;
    let after = procstat::sample(pid)?;
    let control_plane_cpu = procstat::cpu_seconds(&control_plane) - control_plane_before;
    tokio::time::sleep(args.idle_wait).await;
    let idle = procstat::sample(pid)?;
    let mut calls = apicalls::delta(&calls_before, &apicalls::read(&client).await?);
    // The driver's own requests: one create and one approval per request.
    for key in [("POST", "certificaterequests"), ("APPLY", "certificaterequests/status")] {
        if let Some(v) = calls.get_mut(&(key.0.to_owned(), key.1.to_owned())) {
            *v -= csrs.len() as f64;
        }
    }
    calls.retain(|(_, resource), v| *v > 0.0 && !resource.is_empty());
    let records = driver.finish();
    running.process.stop();
    if !args.keep_requests {
        let api: Api<CertificateRequest> = Api::namespaced(cp.client()?, &namespace);
        if let Err(e) = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await {
            eprintln!("bench: deleting the requests of {namespace}: {e}");
        }
    }
    let mut summary = Summary::new(contender.label(), &records, &timing, before, after, idle);
    summary.api_requests_per_cr = calls.values().sum::<f64>() / csrs.len().max(1) as f64;
    summary.api_requests = apicalls::describe(&calls);
    summary.control_plane_cpu_seconds = control_plane_cpu;
    let mut latencies: Vec<Duration> = records.values().filter_map(crate::driver::Record::latency).collect();
    latencies.sort();
    Ok((summary, latencies))
}
