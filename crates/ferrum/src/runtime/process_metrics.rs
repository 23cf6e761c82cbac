//! `process_*` metrics read from `/proc/self` at scrape time (Linux).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Resident memory, CPU time, open file descriptors and start time of this process.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    start_time: f64,
}

impl ProcessCollector {
    /// A collector for this process, started now.
    pub(crate) fn new() -> Self {
        let start_time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        Self { start_time }
    }
}

/// (resident bytes, CPU seconds): `VmRSS` from `/proc/self/status`, and the time on CPU in
/// nanoseconds from `/proc/self/schedstat` (no clock-tick or page-size constants needed).
fn stat() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse::<f64>().ok()?;
    let schedstat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let cpu_ns = schedstat.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((kib * 1024.0, cpu_ns / 1e9))
}

/// Writes one metric with its descriptor.
fn emit(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        if let Some((rss, cpu)) = stat() {
            emit(e, "process_resident_memory_bytes", "Resident memory size in bytes", &ConstGauge::new(rss))?;
            emit(e, "process_cpu_seconds", "User and system CPU time spent in seconds", &ConstCounter::new(cpu))?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            emit(e, "process_open_fds", "Number of open file descriptors", &ConstGauge::new(fds.count() as i64))?;
        }
        let start = ConstGauge::new(self.start_time);
        emit(e, "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds", &start)
    }
}
