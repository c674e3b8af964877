//! Prometheus text exposition, hand-rolled: a few counters and one histogram do not need a crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the commit-latency buckets, in seconds; group commit waits for an fdatasync.
pub const COMMIT_SECONDS_BUCKETS: [f64; 10] =
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → count; templates keep the label set bounded.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    payments_committed: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_SECONDS_BUCKETS.len()],
    commit_count: AtomicU64,
    commit_sum_us: AtomicU64,
}

impl Metrics {
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    pub fn count_payment(&self) {
        self.payments_committed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_commit(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in COMMIT_SECONDS_BUCKETS.iter().zip(&self.commit_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        self.commit_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ecny_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE ecny_http_requests_total counter\n");
        for ((method, route, status), count) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "ecny_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP ecny_payments_committed_total Payments answered with a durable transfer (a replay answers its first transfer again).\n");
        out.push_str("# TYPE ecny_payments_committed_total counter\n");
        let _ = writeln!(
            out,
            "ecny_payments_committed_total {}",
            self.payments_committed.load(Ordering::Relaxed)
        );
        out.push_str("# HELP ecny_commit_seconds Time from submission to durable result.\n");
        out.push_str("# TYPE ecny_commit_seconds histogram\n");
        for (bound, bucket) in COMMIT_SECONDS_BUCKETS.iter().zip(&self.commit_buckets) {
            let _ = writeln!(
                out,
                "ecny_commit_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.commit_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "ecny_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.commit_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "ecny_commit_seconds_sum {sum}");
        let _ = writeln!(out, "ecny_commit_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe_commit(Duration::from_millis(3));
        metrics.observe_commit(Duration::from_secs(2));
        let text = metrics.render();
        assert!(text.contains("ecny_commit_seconds_bucket{le=\"0.002\"} 0"));
        assert!(text.contains("ecny_commit_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("ecny_commit_seconds_bucket{le=\"1\"} 1"));
        assert!(text.contains("ecny_commit_seconds_bucket{le=\"+Inf\"} 2"));
    }
}
