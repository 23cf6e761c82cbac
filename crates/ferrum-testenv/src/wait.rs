//! Polling until something holds.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Calls `probe` every `interval` until it returns `Ok(Some(value))`, or fails with
/// [`Error::Timeout`] after `timeout`. `Ok(None)` and `Err(_)` both mean "not yet"; the last
/// error or note is kept for the timeout message. `Err(Fatal)` ends the wait at once.
pub(crate) async fn poll<T, F, Fut>(what: &str, timeout: Duration, interval: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Probe>>,
{
    let start = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(Probe::NotYet(note)) => last = note,
            Err(Probe::Fatal(e)) => return Err(e),
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: timeout, last });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Why a probe has no answer yet.
pub(crate) enum Probe {
    /// Try again; the text says what was seen.
    NotYet(String),
    /// Stop waiting with this error.
    Fatal(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_value_and_times_out_with_the_last_note() {
        let mut n = 0;
        let v = poll("n to reach 3", Duration::from_secs(5), Duration::ZERO, || {
            n += 1;
            let n = n;
            async move { Ok::<_, Probe>((n >= 3).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);

        let err = poll::<(), _, _>("never", Duration::from_millis(30), Duration::from_millis(5), || async {
            Err(Probe::NotYet("still no".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("still no"), "{err}");
    }
}
