//! CPU time and memory of a process, from `/proc` (Linux only).

use anyhow::Context;

/// A reading of one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// utime + stime, in seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("/proc/{pid}/status"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(Sample {
        cpu_seconds: ticks as f64 / ticks_per_second(),
        peak_rss: status_kib(&status, "VmHWM:").unwrap_or(0) * 1024,
        rss: status_kib(&status, "VmRSS:").unwrap_or(0) * 1024,
    })
}

/// The PIDs of this process's children whose command name (`comm`) is one of `names`: the
/// control plane's etcd and kube-apiserver.
pub fn children_named(names: &[&str]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { return false };
            let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            ppid == Some(me) && names.contains(&&stat[open + 1..close])
        })
        .collect()
}

/// Summed CPU seconds of `pids` (those that can be read).
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&pid| sample(pid).ok()).map(|s| s.cpu_seconds).sum()
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A `Key:   123 kB` line of `/proc/<pid>/status`, in KiB.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| line.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 if unknown).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(status_kib("Name:\tx\nVmHWM:\t  2048 kB\n", "VmHWM:"), Some(2048));
        let me = sample(std::process::id()).unwrap();
        assert!(me.peak_rss >= me.rss && me.rss > 0);
    }
}
