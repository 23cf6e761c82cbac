//! Starting, logging and stopping child processes.
//!
//! A [`Supervisor`] starts processes with their stdout and stderr in one log file each, and stops
//! them by PID in reverse start order (SIGTERM, then SIGKILL after a grace period) when it is
//! dropped, also while a test panics; then it prints the tail of every log to stderr.
//!
//! Every child leads its own process group, and the signals go to that group, so whatever a
//! child started (a `sh -c` wrapper's command) stops with it. In the default (attached) mode
//! every child also gets `PR_SET_PDEATHSIG` with SIGKILL, so the kernel kills it if the test
//! process dies without running destructors (Ctrl-C, SIGKILL). (SIGKILL, not SIGTERM: a
//! kube-apiserver whose etcd went away at the same moment hangs in its graceful shutdown.)
//! Grandchildren are not covered by that signal. Linux ties that signal to the *thread* that
//! spawned the child: spawn from a thread that lives as long as the child should (a test's
//! thread, a runtime worker, the shared control plane's own thread), not from a short-lived
//! `spawn_blocking` thread. In detached mode (for `controlplane up`) there is no death signal,
//! so children outlive the command that started them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Whether started processes belong to this process or live on their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpawnMode {
    /// Children die with this process (death signal); the default.
    #[default]
    Attached,
    /// Children survive this process; see [`Supervisor::detach`].
    Detached,
}

/// Owns a set of child processes and their log files.
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Mutex<State>>,
    log_dir: PathBuf,
    mode: SpawnMode,
    grace: Duration,
}

/// A process started by a [`Supervisor`]. Dropping it stops the process (unless the supervisor
/// was detached); its log stays available to [`Supervisor::log_tails`].
#[derive(Debug)]
pub struct ProcessHandle {
    shared: Arc<Mutex<State>>,
    id: u64,
    name: String,
    pid: u32,
    log: PathBuf,
    /// Where the process's own output starts in the log (after our header line).
    output_start: u64,
    grace: Duration,
}

/// The last lines of one process's log.
#[derive(Clone, Debug)]
pub struct LogTail {
    /// The name the process was started under.
    pub name: String,
    /// Its PID, if known (not for logs found in a directory).
    pub pid: Option<u32>,
    /// Its log file.
    pub path: PathBuf,
    /// The last lines, joined with newlines.
    pub tail: String,
}

/// A process as recorded in a state file: name, PID and log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The name the process was started under.
    pub name: String,
    /// Its PID.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    next_id: u64,
    detached: bool,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    name: String,
    pid: u32,
    log: PathBuf,
    /// `None` once stopped (or handed over by [`Supervisor::detach`]).
    child: Option<Child>,
    /// How it ended, once we know.
    status: Option<ExitStatus>,
}

impl Entry {
    /// Stops the child if it is ours and running, and records its status.
    fn stop(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            self.status = terminate_child(&mut child, grace);
        }
    }
}

impl Supervisor {
    /// A supervisor that writes logs into `log_dir` (created if needed).
    pub fn new(log_dir: impl Into<PathBuf>, mode: SpawnMode) -> Result<Self> {
        let log_dir = log_dir.into();
        std::fs::create_dir_all(&log_dir).map_err(Error::io(format!("creating {}", log_dir.display())))?;
        Ok(Supervisor { shared: Arc::default(), log_dir, mode, grace: DEFAULT_GRACE })
    }

    /// Sets how long a process may take to exit after SIGTERM.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The directory holding the log files.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Starts `cmd` as `name`, with stdin closed and stdout+stderr appended to
    /// `<log dir>/<name>.log` (a numbered name if taken). The first log line is the command.
    pub fn spawn(&self, name: &str, mut cmd: Command) -> Result<ProcessHandle> {
        let log = self.unused_log_path(name);
        let mut file = File::options()
            .create_new(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("creating {}", log.display())))?;
        let header = format!("$ {cmd:?}\n");
        {
            use std::io::Write;
            // Best effort: the header only helps a reader of the log.
            let _ = file.write_all(header.as_bytes());
        }
        let stderr = file.try_clone().map_err(Error::io(format!("duplicating {}", log.display())))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(stderr));
        match self.mode {
            SpawnMode::Attached => {
                let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
                // SAFETY: the closure runs between fork and exec and only calls prctl(2),
                // getppid(2) and _exit(2), which are async-signal-safe; it allocates nothing
                // except on the error path, where std expects an io::Error.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // The parent died before prctl took effect: do not run orphaned.
                        if libc::getppid() != parent {
                            libc::_exit(1);
                        }
                        Ok(())
                    });
                }
            }
            SpawnMode::Detached => {}
        }
        // Its own group, so that stopping it reaches its children too.
        cmd.process_group(0);
        let child = cmd.spawn().map_err(Error::io(format!("starting {name} ({cmd:?})")))?;
        let pid = child.id();
        let mut state = lock(&self.shared);
        let id = state.next_id;
        state.next_id += 1;
        state.entries.push(Entry {
            id,
            name: name.to_string(),
            pid,
            log: log.clone(),
            child: Some(child),
            status: None,
        });
        Ok(ProcessHandle {
            shared: Arc::clone(&self.shared),
            id,
            name: name.to_string(),
            pid,
            log,
            output_start: header.len() as u64,
            grace: self.grace,
        })
    }

    /// The last `lines` lines of every log, in start order (stopped processes included).
    pub fn log_tails(&self, lines: usize) -> Vec<LogTail> {
        lock(&self.shared)
            .entries
            .iter()
            .map(|e| LogTail {
                name: e.name.clone(),
                pid: Some(e.pid),
                path: e.log.clone(),
                tail: tail_of_file(&e.log, lines),
            })
            .collect()
    }

    /// The processes started so far, in start order.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        lock(&self.shared)
            .entries
            .iter()
            .map(|e| ProcessInfo { name: e.name.clone(), pid: e.pid, log: e.log.clone() })
            .collect()
    }

    /// Stops every running process, in reverse start order.
    pub fn stop_all(&self) {
        let mut state = lock(&self.shared);
        for entry in state.entries.iter_mut().rev() {
            entry.stop(self.grace);
        }
    }

    /// Lets every process run on after this supervisor and its handles are dropped, and
    /// returns them in start order. Only meaningful in [`SpawnMode::Detached`]: attached
    /// children still die with this process.
    pub fn detach(&self) -> Vec<ProcessInfo> {
        let mut state = lock(&self.shared);
        state.detached = true;
        for entry in &mut state.entries {
            // Dropping a std Child neither kills nor waits; init reaps it once we exit.
            entry.child = None;
        }
        drop(state);
        self.processes()
    }

    fn unused_log_path(&self, name: &str) -> PathBuf {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let mut path = self.log_dir.join(format!("{safe}.log"));
        let mut n = 2;
        while path.exists() {
            path = self.log_dir.join(format!("{safe}-{n}.log"));
            n += 1;
        }
        path
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if lock(&self.shared).detached {
            return;
        }
        if std::thread::panicking() {
            eprint!("{}", format_tails(&self.log_tails(TAIL_ON_PANIC)));
        }
        self.stop_all();
    }
}

/// How many lines of each log are printed when a test panics.
pub const TAIL_ON_PANIC: usize = 40;

impl ProcessHandle {
    /// The name the process was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log, lines)
    }

    /// Its exit status if it has exited or was stopped, `None` while it runs (or after
    /// [`Supervisor::detach`]).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut state = lock(&self.shared);
        let entry = state.entries.iter_mut().find(|e| e.id == self.id)?;
        if entry.status.is_none() {
            entry.status = entry.child.as_mut()?.try_wait().ok().flatten();
        }
        entry.status
    }

    /// Waits until a line of its log contains `needle`. Fails if the process exits first or
    /// `timeout` passes.
    pub async fn wait_for_log_line(&self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut offset = self.output_start;
        let mut carry = String::new();
        loop {
            if read_new_text(&self.log, &mut offset, &mut carry).lines().any(|l| l.contains(needle)) {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                return Err(Error::Exited { name: self.name.clone(), status, tail: self.log_tail(TAIL_ON_PANIC) });
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("{needle:?} in the log of {}", self.name),
                    after: timeout,
                    last: self.log_tail(5),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process now (SIGTERM, then SIGKILL after the grace period). Idempotent.
    pub fn stop(&self) {
        let mut state = lock(&self.shared);
        if state.detached {
            return;
        }
        if let Some(entry) = state.entries.iter_mut().find(|e| e.id == self.id) {
            entry.stop(self.grace);
        }
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Formats log tails for a human: a header per process, then its lines.
pub fn format_tails(tails: &[LogTail]) -> String {
    let mut out = String::new();
    for t in tails {
        let pid = t.pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
        out.push_str(&format!("==== {}{pid} — last lines of {} ====\n{}\n", t.name, t.path.display(), t.tail));
    }
    out
}

/// Stops a process that is not our child (for `controlplane down`): SIGTERM, wait up to
/// `grace` for it to go, then SIGKILL. If it leads its own process group (as everything a
/// [`Supervisor`] starts does), the whole group is signalled. Returns whether it had to be
/// killed.
pub fn terminate_pid(pid: u32, grace: Duration) -> bool {
    if !is_running(pid) {
        return false;
    }
    let Some(target) = signal_target(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(target, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_running(pid) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(target, libc::SIGKILL) };
    true
}

/// Whether a process with this PID exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// SIGTERM to the child's group, wait up to `grace`, SIGKILL to the group, reap. Returns the
/// exit status if it could be read.
fn terminate_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    // Not reaped yet, so the PID (and the group it leads) still names our child.
    let target = signal_target(child.id());
    let signal = |sig| {
        if let Some(target) = target {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(target, sig) };
        }
    };
    if let Ok(Some(status)) = child.try_wait() {
        // The leader is gone; its group may not be.
        signal(libc::SIGKILL);
        return Some(status);
    }
    signal(libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            signal(libc::SIGKILL);
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(libc::SIGKILL);
    // Errors here mean it is already gone; wait() then still reaps it.
    let _ = child.kill();
    child.wait().ok()
}

/// What to pass to kill(2) to reach `pid`: its process group (negative) when it leads one
/// that is not ours, else the process alone.
fn signal_target(pid: u32) -> Option<libc::pid_t> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: getpgid(2) and getpgrp(2) have no memory-safety preconditions.
    let (group, ours) = unsafe { (libc::getpgid(pid), libc::getpgrp()) };
    Some(if group == pid && group != ours { -pid } else { pid })
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the state consistent (we never hold it across a
    // fallible step that leaves an entry half-updated), so poisoning is ignored.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last `lines` lines of a file, reading at most its last 256 KiB.
pub(crate) fn tail_of_file(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 256 * 1024;
    let Ok(mut file) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(WINDOW);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return format!("(cannot read {})", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Reads what was appended to `path` since `offset`, returning the complete new lines (plus
/// `carry`, the unfinished last line of the previous call).
fn read_new_text(path: &Path, offset: &mut u64, carry: &mut String) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    *offset += bytes.len() as u64;
    let mut text = std::mem::take(carry);
    text.push_str(&String::from_utf8_lossy(&bytes));
    match text.rfind('\n') {
        Some(end) => {
            *carry = text[end + 1..].to_string();
            text.truncate(end + 1);
            text
        }
        None => {
            *carry = text;
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[tokio::test]
    async fn logs_and_stops_in_reverse_order() {
        let dir = tempfile::tempdir().unwrap();
        let order = dir.path().join("order");
        let sup = Supervisor::new(dir.path().join("logs"), SpawnMode::Attached).unwrap();
        let script = |n: &str| {
            format!(
                "trap 'echo {n} >> {o}; exit 0' TERM; echo hello from {n}; echo ready >&2; \
                 while :; do sleep 0.05; done",
                o = order.display()
            )
        };
        let first = sup.spawn("first", sh(&script("first"))).unwrap();
        let second = sup.spawn("second", sh(&script("second"))).unwrap();
        first.wait_for_log_line("ready", Duration::from_secs(5)).await.unwrap();
        second.wait_for_log_line("ready", Duration::from_secs(5)).await.unwrap();
        let tails = sup.log_tails(1);
        assert_eq!(tails.len(), 2);
        assert_eq!(tails[0].tail, "ready");
        assert!(tail_of_file(&tails[0].path, 10).contains("hello from first"));
        sup.stop_all();
        assert_eq!(std::fs::read_to_string(&order).unwrap(), "second\nfirst\n");
        assert!(first.exit_status().is_some_and(|s| s.success()));
        drop((first, second));
    }

    #[tokio::test]
    async fn handle_drop_stops_and_sigkill_after_grace() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(dir.path(), SpawnMode::Attached).unwrap().with_grace(Duration::from_millis(200));
        let stubborn = sup.spawn("stubborn", sh("trap '' TERM; echo up; while :; do sleep 0.05; done")).unwrap();
        stubborn.wait_for_log_line("up", Duration::from_secs(5)).await.unwrap();
        let pid = stubborn.pid();
        let started = Instant::now();
        drop(stubborn);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(!is_running(pid));
    }

    #[tokio::test]
    async fn stopping_reaches_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(dir.path(), SpawnMode::Attached).unwrap();
        let wrapper = sup.spawn("wrapper", sh("sleep 1000 & echo grandchild $!; wait")).unwrap();
        wrapper.wait_for_log_line("grandchild", Duration::from_secs(5)).await.unwrap();
        let log = std::fs::read_to_string(wrapper.log_path()).unwrap();
        let grandchild: u32 = log.lines().find_map(|l| l.strip_prefix("grandchild ")).unwrap().trim().parse().unwrap();
        assert!(is_running(grandchild));
        wrapper.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_running(grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!is_running(grandchild), "the grandchild outlived the stop");
    }

    #[tokio::test]
    async fn exit_before_ready_reports_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(dir.path(), SpawnMode::Attached).unwrap();
        let p = sup.spawn("broken", sh("echo bad flag >&2; exit 3")).unwrap();
        let err = p.wait_for_log_line("never", Duration::from_secs(5)).await.unwrap_err().to_string();
        assert!(err.contains("bad flag"), "{err}");
    }

    #[test]
    fn log_names_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(dir.path(), SpawnMode::Attached).unwrap();
        let a = sup.spawn("same name", sh("true")).unwrap();
        let b = sup.spawn("same name", sh("true")).unwrap();
        assert_ne!(a.log_path(), b.log_path());
        assert!(a.log_path().ends_with("same_name.log"));
    }
}
