//! The foreign load: requests addressed to another issuer (`example.com`/`OtherIssuer`), each
//! with a large CSR, created in a contender's namespace before it runs. No one ever issues
//! them; they are there to see what a contender's memory does with a crowded namespace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrum::{CertificateRequest, CertificateRequestSpec, IssuerReference};
use futures::StreamExt;
use kube::api::{Api, PostParams};

/// The prefix of the foreign requests' names.
pub const PREFIX: &str = "foreign-";

/// The issuer the foreign requests name: nobody serves it.
pub fn issuer_ref() -> IssuerReference {
    IssuerReference { name: "other".into(), kind: Some("OtherIssuer".into()), group: Some("example.com".into()) }
}

/// What to create.
pub struct Load {
    /// How many requests.
    pub count: usize,
    /// The CSR every one of them carries (PEM).
    pub csr: Vec<u8>,
    /// Whether to approve them too (a second write of each).
    pub approved: bool,
}

/// Creates (and approves, if asked) `load.count` requests in `namespace`, `concurrency` in
/// flight, each tried up to three times. Fails if any is missing at the end or at `deadline`.
pub async fn create(
    client: kube::Client,
    namespace: &str,
    load: &Load,
    concurrency: usize,
    deadline: Instant,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let api: Api<CertificateRequest> = Api::namespaced(client, namespace);
    let done = AtomicUsize::new(0);
    let every = (load.count / 10).max(1000);
    let failures = futures::stream::iter(0..load.count)
        .map(|i| {
            let (api, done) = (&api, &done);
            async move {
                let result = create_one(api, i, load).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % every == 0 {
                    eprintln!("bench: foreign load: {n}/{} in {:.0}s", load.count, started.elapsed().as_secs_f64());
                }
                result
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|result| futures::future::ready(result.err()))
        .collect::<Vec<_>>();
    let failures = tokio::time::timeout_at(deadline.into(), failures)
        .await
        .with_context(|| format!("the foreign load was not created by the deadline ({} done)", done.into_inner()))?;
    if let Some(first) = failures.first() {
        anyhow::bail!("{} foreign requests could not be created; the first error: {first:#}", failures.len());
    }
    Ok(started.elapsed())
}

/// One foreign request, three attempts (an `AlreadyExists` after a failed attempt is success).
async fn create_one(api: &Api<CertificateRequest>, i: usize, load: &Load) -> anyhow::Result<()> {
    let name = format!("{PREFIX}{i:05}");
    let spec = CertificateRequestSpec { request: load.csr.clone(), issuer_ref: issuer_ref(), ..Default::default() };
    let object = CertificateRequest::new(&name, spec);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match api.create(&PostParams::default(), &object).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt > 1 => Ok(()),
            Err(e) => Err(anyhow::Error::from(e).context(format!("creating {name}"))),
        };
        let result = match result {
            Ok(()) if load.approved => crate::driver::approve(api, &name).await,
            other => other,
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(%name, error = %format!("{e:#}"), "foreign request: retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
