//! The load generator behind `warden loadgen`: drives a [`Target`] with a set concurrency,
//! for a total count or a duration, optionally at a fixed rate, and reports a ghz-style
//! summary (count, rate, average, fastest, slowest, percentiles, error distribution).
//!
//! It knows no protocol: `grpc::client` provides the targets.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Sends one request; an error is a short stable name (a gRPC code).
pub trait Target: Send + 'static {
    /// Sends request number `seq` (callers cycle through their requests by it).
    fn call(&mut self, seq: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// How much load, for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Requests in flight at once (one worker each).
    pub concurrency: usize,
    /// Stop after this many requests...
    pub total: Option<u64>,
    /// ...or after this long (whichever comes first; one of them must be set).
    pub duration: Option<Duration>,
    /// Requests per second over all workers; `None` sends as fast as answers come.
    pub rate: Option<f64>,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub count: u64,
    pub ok: u64,
    /// Errors by name.
    pub errors: BTreeMap<String, u64>,
    pub total_seconds: f64,
    pub rps: f64,
    /// Latencies in microseconds.
    pub average_us: f64,
    pub fastest_us: f64,
    pub slowest_us: f64,
    /// `(percentile, microseconds)`: 10, 25, 50, 75, 90, 95, 99, 99.9.
    pub percentiles_us: Vec<(f64, f64)>,
}

const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

#[expect(
    clippy::expect_used,
    reason = "the bounds are constants hdrhistogram accepts (1 ns to 60 s, 3 digits)"
)]
fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    // A latency beyond 60 s widens the histogram rather than being lost.
    h.auto(true);
    h
}

struct Tally {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

/// How often the pacer releases the requests that have come due. tokio's timer has a
/// resolution of one millisecond, so pacing with it would start a millisecond's worth of
/// requests at once (14 at 14,000 rps), and the last of each burst would wait for the
/// others: a latency the generator makes, not the server.
const PACER_TICK: Duration = Duration::from_micros(100);

/// Releases request permits at the plan's rate, from a thread of its own that sleeps with
/// the operating system's fine-grained timer: request `seq` is released at
/// `started + seq / rate`, for the first `cap` requests.
struct Pacer {
    permits: Arc<tokio::sync::Semaphore>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    fn start(started: std::time::Instant, rate: f64, cap: u64) -> std::io::Result<Self> {
        let permits = Arc::new(tokio::sync::Semaphore::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("warden-load-pacer".into())
            .spawn({
                let permits = permits.clone();
                let stop = stop.clone();
                move || {
                    let mut released = 0u64;
                    while released < cap && !stop.load(Ordering::Relaxed) {
                        let elapsed = started.elapsed().as_secs_f64();
                        // Requests 0..=floor(elapsed * rate) are due.
                        let due = ((elapsed * rate).floor() as u64).saturating_add(1).min(cap);
                        if due > released {
                            let n = usize::try_from(due - released).unwrap_or(usize::MAX);
                            permits.add_permits(n.min(tokio::sync::Semaphore::MAX_PERMITS));
                            released = due;
                        }
                        std::thread::sleep(PACER_TICK);
                    }
                }
            })?;
        Ok(Self {
            permits,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the plan: `callers` supplies one caller per worker (worker index in).
///
/// With a rate, request `seq` is sent at `seq / rate` after the start (by the pacer), and
/// a duration bounds how many are sent: those due before it ends.
///
/// Fails only when the pacer's thread cannot be started.
pub async fn run<C: Target>(
    plan: Plan,
    mut callers: impl FnMut(usize) -> C,
) -> std::io::Result<Report> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);
    let rate = plan.rate.filter(|r| r.is_finite() && *r > 0.0);
    // With a rate, the number of requests is known in advance: those due before the
    // deadline, and at most the total.
    let total = match (rate, plan.duration) {
        (Some(r), Some(d)) => {
            let due = (d.as_secs_f64() * r).ceil() as u64;
            Some(plan.total.map_or(due, |t| t.min(due)))
        }
        _ => plan.total,
    };
    let pacer = match rate {
        Some(r) => Some(Pacer::start(
            started.into_std(),
            r,
            total.unwrap_or(u64::MAX),
        )?),
        None => None,
    };
    let permits = pacer.as_ref().map(|p| p.permits.clone());
    let mut workers = Vec::with_capacity(plan.concurrency.max(1));
    for w in 0..plan.concurrency.max(1) {
        let mut caller = callers(w);
        let next = next.clone();
        let permits = permits.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally {
                latency: new_histogram(),
                errors: BTreeMap::new(),
            };
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if total.is_some_and(|t| seq >= t) {
                    break;
                }
                if let Some(permits) = &permits {
                    // The pacer releases exactly `total` permits, one per request.
                    match permits.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                } else if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let sent = Instant::now();
                let result = caller.call(seq).await;
                let nanos = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = tally.latency.record(nanos.max(1));
                if let Err(code) = result {
                    *tally.errors.entry(code).or_default() += 1;
                }
            }
            tally
        }));
    }
    let mut latency = new_histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for w in workers {
        if let Ok(t) = w.await {
            let _ = latency.add(&t.latency);
            for (k, v) in t.errors {
                *errors.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = latency.len();
    let failed: u64 = errors.values().sum();
    let us = |ns: f64| ns / 1000.0;
    drop(pacer);
    Ok(Report {
        count,
        ok: count.saturating_sub(failed),
        errors,
        total_seconds: elapsed,
        rps: if elapsed > 0.0 {
            count as f64 / elapsed
        } else {
            0.0
        },
        average_us: us(latency.mean()),
        fastest_us: us(latency.min() as f64),
        slowest_us: us(latency.max() as f64),
        percentiles_us: PERCENTILES
            .iter()
            .map(|p| (*p, us(latency.value_at_percentile(*p) as f64)))
            .collect(),
    })
}

impl Report {
    /// A ghz-style text summary.
    pub fn summary(&self, title: &str) -> String {
        use std::fmt::Write;
        let ms = |us: f64| format!("{:.3} ms", us / 1000.0);
        let mut s = String::new();
        let _ = writeln!(s, "{title}");
        let _ = writeln!(s, "Summary:");
        let _ = writeln!(s, "  Count:        {}", self.count);
        let _ = writeln!(s, "  Total:        {:.2} s", self.total_seconds);
        let _ = writeln!(s, "  Slowest:      {}", ms(self.slowest_us));
        let _ = writeln!(s, "  Fastest:      {}", ms(self.fastest_us));
        let _ = writeln!(s, "  Average:      {}", ms(self.average_us));
        let _ = writeln!(s, "  Requests/sec: {:.2}", self.rps);
        let _ = writeln!(s, "\nLatency distribution:");
        for (p, v) in &self.percentiles_us {
            let _ = writeln!(s, "  {p} % in {}", ms(*v));
        }
        let _ = writeln!(s, "\nStatus code distribution:");
        let _ = writeln!(s, "  [OK]   {} responses", self.ok);
        for (code, n) in &self.errors {
            let _ = writeln!(s, "  [{code}]   {n} responses");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every tenth request, answers the rest at once.
    struct EveryTenth;

    impl Target for EveryTenth {
        async fn call(&mut self, seq: u64) -> Result<(), String> {
            tokio::task::yield_now().await;
            if seq % 10 == 9 {
                Err("Unavailable".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_total_is_sent_exactly_and_errors_are_counted() {
        let plan = Plan {
            concurrency: 7,
            total: Some(1000),
            duration: None,
            rate: None,
        };
        let report = run(plan, |_| EveryTenth).await.unwrap();
        assert_eq!(report.count, 1000);
        assert_eq!(report.errors.get("Unavailable"), Some(&100));
        assert_eq!(report.ok, 900);
        assert!(report.fastest_us <= report.slowest_us);
        let text = report.summary("test");
        assert!(text.contains("[Unavailable]   100 responses"), "{text}");
    }

    /// Records when each request was sent, relative to a start.
    struct Stamps(
        Arc<std::sync::Mutex<Vec<(u64, Duration)>>>,
        std::time::Instant,
    );

    impl Target for Stamps {
        async fn call(&mut self, seq: u64) -> Result<(), String> {
            let at = self.1.elapsed();
            self.0.lock().unwrap().push((seq, at));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_rate_paces_requests() {
        // 500 ms at 200/s: exactly the 100 requests due before the end, none of them
        // before its time (request n at n × 5 ms).
        let plan = Plan {
            concurrency: 4,
            total: None,
            duration: Some(Duration::from_millis(500)),
            rate: Some(200.0),
        };
        let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = std::time::Instant::now();
        let report = run(plan, |_| Stamps(stamps.clone(), start)).await.unwrap();
        assert_eq!(report.count, 100);
        let mut stamps = stamps.lock().unwrap().clone();
        stamps.sort();
        assert_eq!(stamps.len(), 100);
        for (i, (seq, at)) in stamps.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert!(
                *at >= Duration::from_millis(5 * i as u64),
                "request {seq} sent at {at:?}, before its time"
            );
        }
    }

    #[tokio::test]
    async fn a_rate_with_a_total_sends_the_total() {
        let plan = Plan {
            concurrency: 3,
            total: Some(30),
            duration: Some(Duration::from_secs(60)),
            rate: Some(1000.0),
        };
        let report = run(plan, |_| EveryTenth).await.unwrap();
        assert_eq!(report.count, 30);
        assert_eq!(report.errors.get("Unavailable"), Some(&3));
    }
}
