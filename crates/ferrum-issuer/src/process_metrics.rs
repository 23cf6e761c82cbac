//! `process_*` metrics read from `/proc/self` at scrape time (Linux).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Resident memory, CPU time, open file descriptors and start time of this process.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time: f64,
}

impl ProcessCollector {
    /// A collector for this process, started now.
    pub fn new() -> Self {
        let start_time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        Self { start_time }
    }
}

/// (resident bytes, CPU seconds) from `/proc/self/stat`.
fn stat() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15,
    // rss (pages) field 24 (1-based, counting the pid as field 1).
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let cpu = (field(14)? + field(15)?) / ticks.max(1) as f64;
    let rss = field(24)? * page.max(1) as f64;
    Some((rss, cpu))
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
