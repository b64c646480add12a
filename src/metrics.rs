//! Request metrics: the process-wide counters and latency histograms that the
//! S3 front end and the gateway record, rendered in the Prometheus text
//! format. The admin listener ([`crate::admin`]) serves them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    store_errors: Mutex<BTreeMap<String, u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub in_flight: AtomicI64,
    /// Audit lines written, and dropped (see [`crate::audit`]).
    pub audit_written: AtomicU64,
    pub audit_dropped_queue_full: AtomicU64,
    pub audit_dropped_write_error: AtomicU64,
}

pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

impl Metrics {
    pub fn request(&self, op: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics")
            .entry((op.to_owned(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut l = self.latency.lock().expect("metrics");
        let h = l.entry(op.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn store_error(&self, code: &str) {
        *self
            .store_errors
            .lock()
            .expect("metrics")
            .entry(code.to_owned())
            .or_default() += 1;
    }

    /// Renders every metric; `keys` are (cache hits, RSA unwraps).
    pub fn render(&self, keys: (u64, u64)) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP sealgate_requests_total S3 requests by operation and HTTP status."
        );
        let _ = writeln!(o, "# TYPE sealgate_requests_total counter");
        for ((op, st), n) in self.requests.lock().expect("metrics").iter() {
            let _ = writeln!(
                o,
                "sealgate_requests_total{{op=\"{op}\",status=\"{st}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP sealgate_request_duration_seconds S3 request latency (to the end of the response headers).");
        let _ = writeln!(o, "# TYPE sealgate_request_duration_seconds histogram");
        for (op, h) in self.latency.lock().expect("metrics").iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "sealgate_request_duration_seconds_bucket{{op=\"{op}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                o,
                "sealgate_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "sealgate_request_duration_seconds_sum{{op=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "sealgate_request_duration_seconds_count{{op=\"{op}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(o, "# HELP sealgate_bytes_in_total Request body bytes received from clients (declared lengths).");
        let _ = writeln!(o, "# TYPE sealgate_bytes_in_total counter");
        let _ = writeln!(
            o,
            "sealgate_bytes_in_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP sealgate_bytes_out_total Response body bytes sent to clients (declared lengths).");
        let _ = writeln!(o, "# TYPE sealgate_bytes_out_total counter");
        let _ = writeln!(
            o,
            "sealgate_bytes_out_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sealgate_requests_in_flight S3 requests being served."
        );
        let _ = writeln!(o, "# TYPE sealgate_requests_in_flight gauge");
        let _ = writeln!(
            o,
            "sealgate_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sealgate_key_cache_hits_total Data-key lookups served from the cache."
        );
        let _ = writeln!(o, "# TYPE sealgate_key_cache_hits_total counter");
        let _ = writeln!(o, "sealgate_key_cache_hits_total {}", keys.0);
        let _ = writeln!(
            o,
            "# HELP sealgate_key_cache_misses_total Data-key lookups that needed an unwrap."
        );
        let _ = writeln!(o, "# TYPE sealgate_key_cache_misses_total counter");
        let _ = writeln!(o, "sealgate_key_cache_misses_total {}", keys.1);
        let _ = writeln!(
            o,
            "# HELP sealgate_rsa_unwraps_total RSA-OAEP unwrap operations."
        );
        let _ = writeln!(o, "# TYPE sealgate_rsa_unwraps_total counter");
        let _ = writeln!(o, "sealgate_rsa_unwraps_total {}", keys.1);
        let _ = writeln!(
            o,
            "# HELP sealgate_store_errors_total Errors from the store, by S3 code."
        );
        let _ = writeln!(o, "# TYPE sealgate_store_errors_total counter");
        for (code, n) in self.store_errors.lock().expect("metrics").iter() {
            let _ = writeln!(o, "sealgate_store_errors_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP sealgate_audit_lines_total Audit log lines written."
        );
        let _ = writeln!(o, "# TYPE sealgate_audit_lines_total counter");
        let _ = writeln!(
            o,
            "sealgate_audit_lines_total {}",
            self.audit_written.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP sealgate_audit_lines_dropped_total Audit log lines lost: the writer's queue was full (requests never wait for it), or the write failed.");
        let _ = writeln!(o, "# TYPE sealgate_audit_lines_dropped_total counter");
        for (reason, n) in [
            ("queue_full", &self.audit_dropped_queue_full),
            ("write_error", &self.audit_dropped_write_error),
        ] {
            let _ = writeln!(
                o,
                "sealgate_audit_lines_dropped_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        o
    }
}
