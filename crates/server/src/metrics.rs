//! Prometheus text exposition, written by hand: a few counters, gauges and
//! fixed-bucket histograms do not need a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A histogram with fixed upper bounds, in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus +Inf at the end.
    counts: Vec<AtomicU64>,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, secs: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cum}");
        }
        let brace = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            brace(labels),
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{} {cum}", brace(labels));
    }
}

/// Server-wide counters (the engine's own live in `BatchStats`).
#[derive(Debug)]
pub struct Metrics {
    /// (endpoint, status) → count.
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    pub request_seconds: Histogram,
    pub ttft_seconds: Histogram,
    pub open_connections: AtomicU64,
    pub rejected_busy: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(Vec::new()),
            request_seconds: Histogram::new(LATENCY_BOUNDS),
            ttft_seconds: Histogram::new(LATENCY_BOUNDS),
            open_connections: AtomicU64::new(0),
            rejected_busy: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn count_request(&self, endpoint: &'static str, status: u16) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        match r.iter_mut().find(|(k, _)| *k == (endpoint, status)) {
            Some((_, n)) => *n += 1,
            None => r.push(((endpoint, status), 1)),
        }
    }

    /// Writes the server's own metrics.
    pub fn write(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP llmos_requests_total HTTP requests by endpoint and status."
        );
        let _ = writeln!(out, "# TYPE llmos_requests_total counter");
        let mut r = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        r.sort();
        for ((ep, st), n) in r {
            let _ = writeln!(
                out,
                "llmos_requests_total{{endpoint=\"{ep}\",status=\"{st}\"}} {n}"
            );
        }
        self.request_seconds.write(
            out,
            "llmos_request_duration_seconds",
            "Time from request to the last byte of the answer (generation requests).",
            "",
        );
        self.ttft_seconds.write(
            out,
            "llmos_time_to_first_token_seconds",
            "Time from request to the first generated text.",
            "",
        );
        gauge(
            out,
            "llmos_open_connections",
            "TCP connections open now.",
            self.open_connections.load(Ordering::Relaxed),
        );
        counter(
            out,
            "llmos_rejected_busy_total",
            "Requests answered 429 because the queue was full.",
            self.rejected_busy.load(Ordering::Relaxed),
        );
    }
}

pub fn gauge(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

pub fn counter(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut s = String::new();
        h.write(&mut s, "x", "help", "");
        assert!(s.contains("x_bucket{le=\"0.1\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"1\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count 3\n"), "{s}");
    }
}
