//! `ferrum-bench run`: the whole benchmark, repetition by repetition, scenario by scenario,
//! contender by contender.
//!
//! Two scenarios. *arrival*: the contender runs and the driver creates and approves the
//! requests; timed from the first create to the last request Ready. *backlog*: the contender
//! is started once (its issuer becomes Ready) and stopped, the driver creates and approves the
//! requests, then the contender starts again; timed from that start to the last request Ready
//! (time to drain). Each run has its own namespace and contender process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ferrum::CertificateRequest;
use ferrum_testenv::{ControlPlane, ControlPlaneOptions};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams};

use crate::contender::{self, Contender, Settings};
use crate::driver::Driver;
use crate::report::{self, Latencies, Summary};
use crate::{apicalls, foreign, pki, procstat, stats};

/// The scenarios to run (`--scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioChoice {
    /// Requests arrive while the contender runs.
    Arrival,
    /// Requests wait for a stopped contender, which then starts and drains them.
    Backlog,
    /// Both, arrival first in every repetition.
    Both,
}

/// One scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// See [`ScenarioChoice::Arrival`].
    Arrival,
    /// See [`ScenarioChoice::Backlog`].
    Backlog,
}

impl Scenario {
    /// The label in tables and CSVs.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Arrival => "arrival",
            Scenario::Backlog => "backlog",
        }
    }
}

impl ScenarioChoice {
    fn scenarios(self) -> Vec<Scenario> {
        match self {
            ScenarioChoice::Arrival => vec![Scenario::Arrival],
            ScenarioChoice::Backlog => vec![Scenario::Backlog],
            ScenarioChoice::Both => vec![Scenario::Arrival, Scenario::Backlog],
        }
    }
}

/// etcd's backend quota with a foreign load or more than [`LARGE_COUNT`] requests: 8 GiB (the
/// default is 2 GiB), so that the requests of several runs fit until kube-apiserver compacts
/// the deleted ones. A limit only: it changes nothing else.
const LARGE_ETCD_QUOTA: u64 = 8 << 30;

/// From this many requests per run on, etcd gets [`LARGE_ETCD_QUOTA`].
const LARGE_COUNT: usize = 10_000;

/// Flags of `ferrum-bench run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// CertificateRequests per contender and run.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Which scenarios: `arrival` (requests created while the contender runs), `backlog`
    /// (created while it is stopped; time to drain from its start) or `both`.
    #[arg(long, value_enum, default_value = "both")]
    scenario: ScenarioChoice,
    /// How often to run every scenario and contender. The contenders run in the order of
    /// `--contenders` in odd repetitions and in reverse order in even ones; the table shows
    /// medians and ranges.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Worker concurrency of every contender that has a knob (Ferrum `--concurrency`,
    /// cm-runner `--workers`, the floor's writers).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Creates + approvals the driver keeps in flight (also for the foreign load).
    #[arg(long, default_value_t = 16)]
    client_concurrency: usize,
    /// The CA's key, for every contender: `p256` or `rsa2048`.
    #[arg(long, value_enum, default_value = "p256")]
    ca_key: pki::CaKey,
    /// Contenders, in the order of odd repetitions.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ferrum,cert-manager,sample,floor")]
    contenders: Vec<Contender>,
    /// Give up on a contender this long after its first create (arrival) or its start
    /// (backlog); the backlog's creates get as long again (default: 60 s + 200 ms per request).
    #[arg(long, value_parser = crate::parse_duration)]
    timeout: Option<Duration>,
    /// How long after all are Ready to read the idle RSS.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    idle_wait: Duration,
    /// Foreign load: this many requests addressed to another issuer (`example.com`,
    /// `OtherIssuer`, never issued), created in each run's namespace before anything else.
    #[arg(long, default_value_t = 0)]
    foreign: usize,
    /// The size of each foreign request's CSR (PEM bytes, padded with an extension; at most
    /// 36,500, the cap of cert-manager and Ferrum).
    #[arg(long, default_value_t = 30_000)]
    foreign_csr_bytes: usize,
    /// Approve the foreign requests too (by default they stay unapproved).
    #[arg(long)]
    foreign_approved: bool,
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
    /// Keep the requests of each run instead of deleting them before the next one.
    #[arg(long)]
    keep_requests: bool,
}

/// What every run shares.
struct Bench<'a> {
    cp: &'a ControlPlane,
    ca: &'a pki::Ca,
    csrs: &'a [Vec<u8>],
    foreign: Option<&'a foreign::Load>,
    settings: &'a Settings<'a>,
    args: &'a RunArgs,
    timeout: Duration,
}

/// Runs every repetition, scenario and contender, and reports.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    let n = args.count;
    let timeout = args.timeout.unwrap_or(Duration::from_secs(60) + Duration::from_millis(200) * n as u32);
    let step = Instant::now();
    let ca = pki::make_ca_with(args.ca_key)?;
    let csrs = pki::make_csrs(n)?;
    eprintln!("bench: {n} P-256 CSRs and a {:?} CA generated in {:.1}s", args.ca_key, step.elapsed().as_secs_f64());
    let foreign_load = match args.foreign {
        0 => None,
        count => {
            let csr = pki::padded_csr("foreign.bench.example", args.foreign_csr_bytes)?;
            eprintln!(
                "bench: foreign load: {count} requests per run, CSR of {} bytes, {}",
                csr.len(),
                if args.foreign_approved { "approved" } else { "unapproved" }
            );
            Some(foreign::Load { count, csr, approved: args.foreign_approved })
        }
    };

    let step = Instant::now();
    let mut options = ControlPlaneOptions::default();
    if foreign_load.is_some() || n > LARGE_COUNT {
        options.extra_etcd_args.push(format!("--quota-backend-bytes={LARGE_ETCD_QUOTA}"));
    }
    if foreign_load.is_some() {
        // The deleted foreign requests compacted soon enough for their space to be reused.
        options.extra_apiserver_args.push("--etcd-compaction-interval=1m".into());
    }
    let cp = ControlPlane::start(options).await.context("starting the control plane")?;
    eprintln!("bench: control plane up in {:.1}s ({})", step.elapsed().as_secs_f64(), cp.dir().display());

    let settings = Settings {
        ferrum_bin: &args.ferrum_bin,
        concurrency: args.concurrency,
        ferrum_log_level: &args.ferrum_log_level,
        sample: args.sample_bin.as_deref().zip(args.sample_crds.as_deref()),
        start_timeout: Duration::from_secs(60) + Duration::from_millis(2) * (n + args.foreign) as u32,
    };
    let bench = Bench {
        cp: &cp,
        ca: &ca,
        csrs: &csrs,
        foreign: foreign_load.as_ref(),
        settings: &settings,
        args: &args,
        timeout,
    };
    let scenarios = args.scenario.scenarios();
    let mut contenders: Vec<Contender> = Vec::new();
    for &c in &args.contenders {
        if !contenders.contains(&c) {
            contenders.push(c);
        }
    }
    let labels: Vec<&str> = contenders.iter().map(|c| c.label()).collect();
    let mut runs: Vec<Summary> = Vec::new();
    let mut available = Vec::new();
    for &c in &contenders {
        match contender::unavailable(c, &settings) {
            Some(reason) => {
                for s in &scenarios {
                    runs.push(Summary { scenario: s.label(), ..Summary::skipped(c.label(), reason.clone()) });
                }
            }
            None => available.push(c),
        }
    }
    let stem = match args.foreign {
        0 => format!("issuance-{n}"),
        k => format!("issuance-{n}-foreign-{k}"),
    };
    let mut latencies: Vec<Latencies> = Vec::new();
    let mut csv_paths = None;
    for repetition in 1..=args.repetitions {
        let order = stats::order_for(&available, repetition);
        for &scenario in &scenarios {
            for (i, &c) in order.iter().enumerate() {
                let position = i + 1;
                eprintln!(
                    "bench: {} repetition {repetition}/{}, {position}/{}: {} ...",
                    scenario.label(),
                    args.repetitions,
                    order.len(),
                    c.label()
                );
                let mut summary = match measure(&bench, c, scenario).await {
                    Ok((summary, values)) => {
                        eprintln!(
                            "bench: {}: {}/{} Ready in {}, peak RSS {:.1} MiB, idle RSS {:.1} MiB",
                            c.label(),
                            summary.ready,
                            summary.count,
                            summary.total.map_or("(timed out)".into(), |t| format!("{:.2}s", t.as_secs_f64())),
                            summary.peak_rss as f64 / (1 << 20) as f64,
                            summary.idle_rss as f64 / (1 << 20) as f64,
                        );
                        latencies.push(Latencies {
                            scenario: scenario.label(),
                            repetition,
                            contender: c.label().into(),
                            values,
                        });
                        summary
                    }
                    Err(e) => {
                        eprintln!("bench: {} not measured: {e:#}", c.label());
                        Summary::skipped(c.label(), format!("{e:#}"))
                    }
                };
                summary.scenario = scenario.label();
                summary.repetition = repetition;
                summary.position = position;
                runs.push(summary);
                // After every run, so that a long run that fails late keeps what it measured.
                csv_paths = Some(report::write_csvs(&args.out_dir, &stem, args.foreign, &runs, &latencies)?);
            }
        }
    }

    println!(
        "\nIssuance benchmark: {n} CertificateRequests per run, concurrency {}, {} repetition(s)",
        args.concurrency, args.repetitions
    );
    if let Some(load) = &foreign_load {
        println!(
            "Foreign load: {} {} requests to example.com/OtherIssuer with {}-byte CSRs in every run's namespace",
            load.count,
            if load.approved { "approved" } else { "unapproved" },
            load.csr.len()
        );
    }
    for &scenario in &scenarios {
        let what = match scenario {
            Scenario::Arrival => "requests created while the contender runs; time from the first create",
            Scenario::Backlog => "requests created while the contender is stopped; time (and p50/p99) from its start",
        };
        println!("\n## {} ({what})\n", scenario.label());
        println!("{}", report::table(&runs, scenario.label(), &labels));
        println!(
            "Targets (issue 5), from the medians:\n{}",
            report::targets(&report::medians(&runs, scenario.label(), &labels))
        );
    }
    if csv_paths.is_none() {
        csv_paths = Some(report::write_csvs(&args.out_dir, &stem, args.foreign, &runs, &latencies)?);
    }
    if let Some((summary_csv, latency_csv)) = csv_paths {
        println!("CSV: {}\nCSV: {}", summary_csv.display(), latency_csv.display());
    }
    Ok(())
}

/// One run of one contender in one scenario, in a fresh namespace.
async fn measure(bench: &Bench<'_>, c: Contender, scenario: Scenario) -> anyhow::Result<(Summary, Vec<Duration>)> {
    let (cp, csrs, args, settings) = (bench.cp, bench.csrs, bench.args, bench.settings);
    let namespace = cp.fresh_namespace(&format!("bench-{}-{}", scenario.label(), c.label())).await?;
    let client = cp.client()?;
    if let Some(load) = bench.foreign {
        let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(50) * load.count as u32;
        let took = foreign::create(client.clone(), &namespace, load, args.client_concurrency, deadline).await?;
        eprintln!("bench: foreign load of {} requests created in {:.1}s", load.count, took.as_secs_f64());
    }
    let prepared = contender::prepare(c, cp, &namespace, bench.ca, settings).await?;
    let control_plane = procstat::children_named(&["kube-apiserver", "etcd"]);
    let issue = async |driver: &Driver| {
        let deadline = Instant::now() + bench.timeout;
        driver.create_and_approve(csrs, &prepared.issuer_ref, args.client_concurrency, deadline).await
    };
    // What the timed window starts from, and the process measured.
    let (driver, process, from, before, calls_before, control_plane_before, failed_writes) = match scenario {
        Scenario::Arrival => {
            let process = contender::launch(&prepared, cp, &namespace, settings).await?;
            contender::wait_ready(&prepared, cp, &namespace, &process, settings).await?;
            let driver = Driver::start(client.clone(), &namespace).await?;
            let calls_before = apicalls::read(&client).await?;
            let control_plane_before = procstat::cpu_seconds(&control_plane);
            let before = procstat::sample(process.pid())?;
            let from = driver.now();
            let failed_writes = issue(&driver).await;
            (driver, process, from, before, calls_before, control_plane_before, failed_writes)
        }
        Scenario::Backlog => {
            // Started once so that its issuer is Ready, as before a restart; then stopped.
            let first = contender::launch(&prepared, cp, &namespace, settings).await?;
            contender::wait_ready(&prepared, cp, &namespace, &first, settings).await?;
            first.stop();
            drop(first);
            let driver = Driver::start(client.clone(), &namespace).await?;
            let failed_writes = issue(&driver).await;
            let calls_before = apicalls::read(&client).await?;
            let control_plane_before = procstat::cpu_seconds(&control_plane);
            let from = driver.now();
            let process = contender::launch(&prepared, cp, &namespace, settings).await?;
            // A new process: all its CPU time is in the window.
            (driver, process, from, procstat::Sample::default(), calls_before, control_plane_before, failed_writes)
        }
    };
    let deadline = Instant::now() + bench.timeout.saturating_sub(driver.now().saturating_sub(from));
    let all_ready = driver.wait_all_ready(deadline, || contender::check_alive(&process)).await?;
    let after = procstat::sample(process.pid())?;
    let control_plane_cpu = procstat::cpu_seconds(&control_plane) - control_plane_before;
    tokio::time::sleep(args.idle_wait).await;
    let idle = procstat::sample(process.pid())?;
    let mut calls = apicalls::delta(&calls_before, &apicalls::read(&client).await?);
    if scenario == Scenario::Arrival {
        // The driver's own requests: one create and one approval per request.
        for key in [("POST", "certificaterequests"), ("APPLY", "certificaterequests/status")] {
            if let Some(v) = calls.get_mut(&(key.0.to_owned(), key.1.to_owned())) {
                *v -= csrs.len() as f64;
            }
        }
    }
    calls.retain(|(_, resource), v| *v > 0.0 && !resource.is_empty());
    let records = driver.finish();
    process.stop();
    if !args.keep_requests {
        delete_requests(&client, &namespace, csrs.len(), bench.foreign.map_or(0, |l| l.count), args.client_concurrency)
            .await;
    }
    let total =
        all_ready.then(|| records.values().filter_map(|r| r.ready).max()).flatten().map(|t| t.saturating_sub(from));
    let latencies: Vec<Duration> = match scenario {
        Scenario::Arrival => records.values().filter_map(crate::driver::Record::latency).collect(),
        Scenario::Backlog => records.values().filter_map(|r| r.ready_after(from)).collect(),
    };
    let mut summary = Summary::new(c.label(), &records, latencies.clone(), total, before, after, idle);
    summary.failed_writes = failed_writes;
    summary.api_requests_per_cr = calls.values().sum::<f64>() / csrs.len().max(1) as f64;
    summary.api_requests = apicalls::describe(&calls);
    summary.control_plane_cpu_seconds = control_plane_cpu;
    let mut latencies = latencies;
    latencies.sort();
    Ok((summary, latencies))
}

/// Deletes the run's requests one by one (a collection delete would send them all back in one
/// response: hundreds of MB with a foreign load), then whatever is left with a collection
/// delete. Errors are printed, not returned: the figures are taken already.
async fn delete_requests(client: &kube::Client, namespace: &str, own: usize, foreign: usize, concurrency: usize) {
    let api: Api<CertificateRequest> = Api::namespaced(client.clone(), namespace);
    let names = (0..own).map(pki::request_name).chain((0..foreign).map(|i| format!("{}{i:05}", foreign::PREFIX)));
    let failed = futures::stream::iter(names)
        .map(|name| {
            let api = &api;
            async move {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => true,
                    Err(kube::Error::Api(status)) if status.code == 404 => true,
                    Err(_) => false,
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|ok| futures::future::ready(!ok))
        .count()
        .await;
    let left = api.list_metadata(&ListParams::default().limit(1)).await.is_ok_and(|l| !l.items.is_empty());
    if (failed > 0 || left)
        && let Err(e) = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await
    {
        eprintln!("bench: deleting the requests of {namespace}: {e}");
    }
}
