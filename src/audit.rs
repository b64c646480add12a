//! The audit log: one JSON line per S3 request (when, who, from where, which
//! operation on which object, the outcome, bytes in and out, how long), to a
//! file or to stderr, apart from the diagnostic log. Every field is defined in
//! `docs/AUDIT.md`.
//!
//! What never goes in it: secrets (secret keys, signatures, presigned URL
//! queries), object content, and header values other than the access key id
//! (parsed out of the `Authorization` header or the presigned query only when
//! the signature could not be verified). Logging does not weaken the
//! encryption: it answers "who read this object", not "what was in it".
//!
//! Requests never wait for the disk. The front end hands each finished line
//! to a bounded queue ([`AuditLog::submit`] never blocks); one writer thread
//! writes the queue out in batches. When the queue is full the line is
//! dropped and counted: in a warning of the diagnostic log (at most one per
//! [`WARN_EVERY`]), in `/metrics`
//! (`sealgate_audit_lines_dropped_total{reason="queue_full"}`), and in the
//! audit log itself, whose next batch starts with a line saying how many
//! lines were lost. Lines lost to a failed write (a full disk) are counted the
//! same way under `reason="write_error"`.
//!
//! Rotation: the writer reopens the file by name on [`AuditLog::reopen`],
//! which `sealgate serve` calls on SIGHUP (logrotate's `postrotate`, or
//! `mv audit.log audit.log.1 && kill -HUP PID`). A new file is created with
//! mode 0600.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

/// Least time between two warnings about dropped or unwritten lines.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Appended to this file (created with mode 0600), reopened on SIGHUP.
    File(PathBuf),
    /// Written to the process's stderr, one `write` per batch of whole lines.
    Stderr,
}

/// How often lines were written, and why some were not.
#[derive(Default)]
pub struct Stats {
    pub written: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_write_error: AtomicU64,
}

impl Stats {
    fn dropped(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed)
            + self.dropped_write_error.load(Ordering::Relaxed)
    }
}

enum Msg {
    Line(String),
    Reopen(tokio::sync::oneshot::Sender<std::io::Result<()>>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The audit log: a bounded queue to its writer thread. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    stats: Arc<Stats>,
    queue_lines: usize,
    is_file: bool,
    last_warning: Mutex<Option<Instant>>,
}

impl AuditLog {
    /// An audit log to `destination` with room for `queue_lines` waiting
    /// lines. A file is opened now (so that one that cannot be written stops
    /// the gateway at start-up), created with mode 0600.
    pub fn open(destination: &Destination, queue_lines: usize) -> std::io::Result<Self> {
        let sink = match destination {
            Destination::File(p) => Sink::File {
                file: open_append(p)?,
                path: p.clone(),
            },
            Destination::Stderr => Sink::Stderr,
        };
        Ok(Self::start(sink, queue_lines))
    }

    fn start(sink: Sink, queue_lines: usize) -> Self {
        let is_file = matches!(sink, Sink::File { .. });
        let (tx, rx) = std::sync::mpsc::sync_channel(queue_lines.max(1));
        let stats = Arc::new(Stats::default());
        let writer = Writer {
            sink,
            stats: stats.clone(),
            batch: Vec::new(),
            lines: 0,
            announced: 0,
            last_warning: None,
        };
        std::thread::Builder::new()
            .name("sealgate-audit".into())
            .spawn(move || writer.run(rx))
            .expect("spawn the audit writer thread");
        Self {
            inner: Arc::new(Inner {
                tx,
                stats,
                queue_lines,
                is_file,
                last_warning: Mutex::new(None),
            }),
        }
    }

    /// Queues one line; never blocks. A full queue drops the line (counted).
    pub fn submit(&self, record: &Record) {
        let line = match serde_json::to_string(record) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "audit record not serializable");
                return;
            }
        };
        match self.inner.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self
                    .inner
                    .stats
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                crate::metrics::global()
                    .audit_dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                self.warn_dropped(n);
            }
        }
    }

    fn warn_dropped(&self, total: u64) {
        // try_lock: a request never waits for another one's warning.
        let Ok(mut last) = self.inner.last_warning.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            dropped_total = total,
            queue_lines = self.inner.queue_lines,
            "audit log: the writer is not keeping up (slow disk or stderr); lines were dropped rather than hold requests back (audit.queue_lines)"
        );
    }

    /// Reopens the file by its name (after a rotation moved it away). On
    /// failure the writer keeps the file it had. Nothing to do for stderr.
    pub async fn reopen(&self) -> std::io::Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.control(Msg::Reopen(reply)).await;
        answer
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the audit writer has stopped")))
    }

    /// Waits until every line queued before this call is written (not
    /// synced): at shutdown, and in tests.
    pub async fn flush(&self) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.control(Msg::Flush(reply)).await;
        let _ = answer.await;
    }

    /// Sends a control message, waiting for room in the queue (off the
    /// runtime's threads: the queue may be full).
    async fn control(&self, msg: Msg) {
        let tx = self.inner.tx.clone();
        let _ = tokio::task::spawn_blocking(move || tx.send(msg)).await;
    }

    /// Whether the lines go to a file (which SIGHUP reopens).
    pub fn is_file(&self) -> bool {
        self.inner.is_file
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }
}

/// Opens `path` for appending, creating it with mode 0600. An existing file
/// keeps its mode (the operator's choice, e.g. 0640 for a log shipper).
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

enum Sink {
    File {
        path: PathBuf,
        file: std::fs::File,
    },
    Stderr,
    #[cfg(test)]
    Test(Box<dyn Write + Send>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File { file, .. } => write_whole_lines(file, bytes),
            Sink::Stderr => write_whole_lines(&mut std::io::stderr().lock(), bytes),
            #[cfg(test)]
            Sink::Test(w) => write_whole_lines(w, bytes),
        }
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File { path, file } => {
                *file = open_append(path)?;
                Ok(())
            }
            Sink::Stderr => Ok(()),
            #[cfg(test)]
            Sink::Test(_) => Ok(()),
        }
    }
}

/// `write_all`, except that a write failing after part of the bytes went
/// out ends the partial line, so that the next batch starts on a line of
/// its own.
fn write_whole_lines(w: &mut dyn Write, mut bytes: &[u8]) -> std::io::Result<()> {
    let mut wrote_any = false;
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(0) => {
                let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                return Err(end_partial_line(w, wrote_any, e));
            }
            Ok(n) => {
                bytes = &bytes[n..];
                wrote_any = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(end_partial_line(w, wrote_any, e)),
        }
    }
    w.flush()
}

fn end_partial_line(w: &mut dyn Write, wrote_any: bool, e: std::io::Error) -> std::io::Error {
    if wrote_any {
        let _ = w.write_all(b"\n");
    }
    e
}

/// The writer thread: takes what is queued, writes it in one batch, waits.
struct Writer {
    sink: Sink,
    stats: Arc<Stats>,
    batch: Vec<u8>,
    lines: u64,
    /// Dropped lines already announced in the log.
    announced: u64,
    last_warning: Option<Instant>,
}

/// A batch is written out once it is this large, even if more is queued.
const BATCH_BYTES: usize = 1 << 20;

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            self.take(msg);
            while self.batch.len() < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(msg) => self.take(msg),
                    Err(_) => break,
                }
            }
            self.write_out();
        }
        self.write_out();
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Line(l) => {
                self.batch.extend_from_slice(l.as_bytes());
                self.batch.push(b'\n');
                self.lines += 1;
            }
            Msg::Flush(reply) => {
                self.write_out();
                let _ = reply.send(());
            }
            Msg::Reopen(reply) => {
                self.write_out();
                let _ = reply.send(self.sink.reopen());
            }
        }
    }

    /// Writes the batch, led by a line announcing lines dropped since the
    /// last announcement.
    fn write_out(&mut self) {
        let dropped = self.stats.dropped();
        let gap = dropped - self.announced;
        if self.lines == 0 && gap == 0 {
            return;
        }
        let mut out = Vec::with_capacity(self.batch.len() + 128);
        if gap > 0 {
            let line = serde_json::to_string(&Gap {
                log: "audit",
                time: rfc3339_millis(time::OffsetDateTime::now_utc()),
                dropped: gap,
            })
            .expect("gap line");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(&self.batch);
        let lines = std::mem::take(&mut self.lines);
        self.batch.clear();
        match self.sink.write_all(&out) {
            Ok(()) => {
                self.announced = dropped;
                self.stats.written.fetch_add(lines, Ordering::Relaxed);
                crate::metrics::global()
                    .audit_written
                    .fetch_add(lines, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats
                    .dropped_write_error
                    .fetch_add(lines, Ordering::Relaxed);
                crate::metrics::global()
                    .audit_dropped_write_error
                    .fetch_add(lines, Ordering::Relaxed);
                if self.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    self.last_warning = Some(Instant::now());
                    tracing::error!(error = %e, lines, "audit log: write failed; these lines are lost");
                }
            }
        }
    }
}

/// The line that says lines are missing just before it.
#[derive(Serialize)]
struct Gap {
    log: &'static str,
    time: String,
    dropped: u64,
}

/// One request, as its audit line (`docs/AUDIT.md` defines each field).
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Always `"audit"`: tells these lines apart where they share a stream
    /// with the diagnostic log.
    pub log: &'static str,
    /// When the request's head was received (RFC 3339, UTC, milliseconds).
    pub time: String,
    pub request_id: String,
    pub access_key: Option<String>,
    /// Whether s3s verified the request's signature for `access_key`.
    pub authenticated: bool,
    pub source: Option<String>,
    pub peer: Option<String>,
    pub method: String,
    pub operation: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub copy_source: Option<CopySourceRecord>,
    pub delete_keys: Option<Vec<String>>,
    pub status: u16,
    pub error: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: f64,
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopySourceRecord {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// `t` as `2025-01-31T23:59:59.123Z`.
pub fn rfc3339_millis(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds, to the microsecond.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The longest access key id logged (a claimed one is whatever a client sent).
const MAX_ACCESS_KEY: usize = 128;

/// The access key id a request claims, from its `Authorization` header
/// (SigV4 `Credential=AK/...`, SigV2 `AWS AK:...`) or its presigned query
/// (`X-Amz-Credential=AK/...`, `AWSAccessKeyId=AK`). Only the id: never the
/// signature, the rest of the header or the rest of the query.
pub fn claimed_access_key(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let id = if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(rest) = auth.strip_prefix("AWS4-") {
            let (_, cred) = rest.split_once("Credential=")?;
            cred.split(['/', ',', ' ']).next()?.to_owned()
        } else {
            let rest = auth.strip_prefix("AWS ")?;
            rest.split(':').next()?.trim().to_owned()
        }
    } else {
        let query = query?;
        query_value(query, "X-Amz-Credential")
            .map(|c| c.split('/').next().unwrap_or_default().to_owned())
            .or_else(|| query_value(query, "AWSAccessKeyId"))?
    };
    (!id.is_empty() && id.len() <= MAX_ACCESS_KEY && !id.chars().any(char::is_control))
        .then_some(id)
}

/// The percent-decoded value of `name` in a query string.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Networks whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`,
    /// `fd00::/8`); the error names the entry at fault.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let bad = |why: &str| format!("{item:?}: {why}");
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item.as_str(), None),
            };
            let ip: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| bad("not an IP address or a network (ADDRESS/LENGTH)"))?;
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| bad(&format!("the prefix length must be 0 to {max}")))?,
            };
            out.push((ip, len));
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy.
/// Then `X-Forwarded-For` (every value, in order) is walked from its right
/// end, past trusted proxies, to the first address that is not one (or to
/// its left end): what a trusted proxy appended is believed, what the client
/// wrote itself is not. An entry that is not an address stops the walk.
pub fn source_address(peer: IpAddr, forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut source = peer.to_canonical();
    if trusted.is_empty() {
        return source;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        if !trusted.contains(source) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => source = ip.to_canonical(),
            None => break,
        }
    }
    source
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Counts the payload bytes of a request body as it is read: every byte,
/// or, for `aws-chunked` bodies (`x-amz-content-sha256: STREAMING-...`),
/// only the chunks' data, not their framing, chunk signatures or trailers:
/// the bytes the client uploads.
#[derive(Debug, Clone)]
pub struct PayloadCounter {
    state: Chunked,
    count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Not chunked: every byte counts.
    Plain,
    /// In a chunk's size line (hex digits, then `;extensions`, up to LF).
    Size { size: u64, digits: u8, in_ext: bool },
    /// In a chunk's data.
    Data(u64),
    /// After a chunk's data, up to its LF.
    DataEnd,
    /// The last chunk was seen (trailers may follow), or the framing broke
    /// (s3s refuses the body then): nothing more counts.
    Done,
}

impl PayloadCounter {
    pub fn new(aws_chunked: bool) -> Self {
        Self {
            state: if aws_chunked {
                Chunked::Size {
                    size: 0,
                    digits: 0,
                    in_ext: false,
                }
            } else {
                Chunked::Plain
            },
            count: 0,
        }
    }

    /// Whether a request's body is aws-chunked, by its headers (as s3s decides).
    pub fn is_aws_chunked(headers: &http::HeaderMap) -> bool {
        headers
            .get("x-amz-content-sha256")
            .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"))
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                Chunked::Plain => {
                    self.count += bytes.len() as u64;
                    return;
                }
                Chunked::Done => return,
                Chunked::Data(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    self.count += n;
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = Chunked::DataEnd;
                    }
                }
                Chunked::DataEnd => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    if b == b'\n' {
                        self.state = Chunked::Size {
                            size: 0,
                            digits: 0,
                            in_ext: false,
                        };
                    }
                }
                Chunked::Size {
                    size,
                    digits,
                    in_ext,
                } => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    match b {
                        b'\n' if *digits == 0 => self.state = Chunked::Done,
                        b'\n' if *size == 0 => self.state = Chunked::Done,
                        b'\n' => self.state = Chunked::Data(*size),
                        _ if *in_ext => {}
                        b';' | b'\r' => *in_ext = true,
                        _ => match (b as char).to_digit(16) {
                            // 16 hex digits overflow nothing a client can send.
                            Some(d) if *digits < 15 => {
                                *size = *size * 16 + u64::from(d);
                                *digits += 1;
                            }
                            _ => self.state = Chunked::Done,
                        },
                    }
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body that counts its payload bytes as the gateway reads
    /// them ([`PayloadCounter`]) into a shared counter.
    pub struct CountingBody<B> {
        #[pin]
        inner: B,
        counter: PayloadCounter,
        total: Arc<AtomicU64>,
    }
}

impl<B> CountingBody<B> {
    pub fn new(inner: B, counter: PayloadCounter, total: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            counter,
            total,
        }
    }
}

impl<B: http_body::Body<Data = Bytes>> http_body::Body for CountingBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.counter.feed(data);
                this.total.store(this.counter.count(), Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What the response body needs to finish a request's audit line.
pub struct Pending {
    pub log: AuditLog,
    pub record: Record,
    pub started: Instant,
    pub bytes_in: Arc<AtomicU64>,
}

impl Pending {
    /// Completes the line and queues it.
    pub fn finish(self, bytes_out: u64, complete: bool) {
        let mut r = self.record;
        r.bytes_out = bytes_out;
        r.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        r.duration_ms = millis(self.started.elapsed());
        r.complete = complete;
        self.log.submit(&r);
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts the bytes it hands out and writes the
    /// request's audit line when it ends: at its last byte, on an error
    /// (the response is cut), or when it is dropped unfinished (the client
    /// went away).
    pub struct AuditedBody<B> {
        #[pin]
        inner: B,
        sent: u64,
        done: bool,
        // An empty body that hyper drops unpolled (HEAD, 204) is complete.
        empty: bool,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for AuditedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(p) = this.pending.take() {
                p.finish(*this.sent, *this.done || *this.empty);
            }
        }
    }
}

impl<B: http_body::Body<Data = Bytes>> AuditedBody<B> {
    pub fn new(inner: B, pending: Pending) -> Self {
        Self {
            empty: inner.is_end_stream(),
            inner,
            sent: 0,
            done: false,
            pending: Some(pending),
        }
    }
}

impl<B: http_body::Body<Data = Bytes>> http_body::Body for AuditedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if *this.done {
            // Never poll the inner body past its end (it may panic).
            return Poll::Ready(None);
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        let finished = match &polled {
            Poll::Pending => return polled,
            Poll::Ready(None) => Some(true),
            Poll::Ready(Some(Err(_))) => Some(false),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    *this.sent += d.len() as u64;
                }
                None
            }
        };
        let finished = finished.or_else(|| this.inner.is_end_stream().then_some(true));
        if let Some(complete) = finished {
            *this.done = true;
            if let Some(p) = this.pending.take() {
                p.finish(*this.sent, complete);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.done {
            http_body::SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&[u8]]) -> u64 {
        let mut c = PayloadCounter::new(true);
        for p in parts {
            c.feed(p);
        }
        c.count()
    }

    #[test]
    fn plain_bodies_count_every_byte() {
        let mut c = PayloadCounter::new(false);
        c.feed(b"hello");
        c.feed(b"");
        c.feed(b"0\r\n\r\n");
        assert_eq!(c.count(), 10);
    }

    #[test]
    fn aws_chunked_counts_only_chunk_data() {
        let sig = "a".repeat(64);
        let signed = format!(
            "5;chunk-signature={sig}\r\nhello\r\n10;chunk-signature={sig}\r\n0123456789abcdef\r\n0;chunk-signature={sig}\r\n\r\n"
        );
        let unsigned_trailer =
            "5\r\nhello\r\n3\r\n0\r\n\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n".to_owned();
        let empty = format!("0;chunk-signature={sig}\r\n\r\n");
        for (body, want) in [(&signed, 21u64), (&unsigned_trailer, 8), (&empty, 0)] {
            let b = body.as_bytes();
            assert_eq!(chunked(&[b]), want, "{body:?} in one piece");
            // Every way of cutting it in two, and one byte at a time.
            for cut in 0..=b.len() {
                assert_eq!(
                    chunked(&[&b[..cut], &b[cut..]]),
                    want,
                    "{body:?} cut at {cut}"
                );
            }
            let bytes: Vec<&[u8]> = b.chunks(1).collect();
            assert_eq!(chunked(&bytes), want, "{body:?} byte by byte");
        }
    }

    #[test]
    fn broken_chunk_framing_stops_counting() {
        assert_eq!(chunked(&[b"zz\r\nhello\r\n"]), 0);
        assert_eq!(
            chunked(&[b"3\r\nabc\r\n", b"ffffffffffffffffff\r\n", b"more"]),
            3
        );
    }

    #[test]
    fn claimed_access_key_takes_the_id_only() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        let none = http::HeaderMap::new();
        let v4 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=deadbeef";
        assert_eq!(
            claimed_access_key(&h(v4), None).as_deref(),
            Some("AKIDEXAMPLE")
        );
        assert_eq!(
            claimed_access_key(&h("AWS AKV2:c2lnbmF0dXJl"), None).as_deref(),
            Some("AKV2")
        );
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKPRE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeef";
        assert_eq!(
            claimed_access_key(&none, Some(presigned)).as_deref(),
            Some("AKPRE")
        );
        assert_eq!(
            claimed_access_key(&none, Some("AWSAccessKeyId=AKV2Q&Signature=x&Expires=1"))
                .as_deref(),
            Some("AKV2Q")
        );
        assert_eq!(claimed_access_key(&none, Some("list-type=2")), None);
        assert_eq!(claimed_access_key(&none, None), None);
        assert_eq!(claimed_access_key(&h("Bearer token"), None), None);
        let long = format!("AWS {}:sig", "K".repeat(MAX_ACCESS_KEY + 1));
        assert_eq!(claimed_access_key(&h(&long), None), None);
    }

    #[test]
    fn trusted_proxies_parse_and_match() {
        let t = TrustedProxies::parse(&[
            "10.0.0.0/8".into(),
            "192.168.1.7".into(),
            "fd00::/8".into(),
            "0.0.0.0/0".into(),
        ])
        .unwrap();
        assert!(t.contains("10.200.3.4".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.1.1".parse().unwrap()), "v4-mapped");
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(!t.contains("2001:db8::1".parse().unwrap()));
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "proxy.local", "10.0.0.0/x", ""] {
            let e = TrustedProxies::parse(&[bad.into()]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn source_address_believes_trusted_proxies_only() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, &[&str], &TrustedProxies, &str)] = &[
            // No trusted proxies: the header is ignored.
            (
                "10.0.0.1",
                &["203.0.113.5"],
                &TrustedProxies::default(),
                "10.0.0.1",
            ),
            // An untrusted peer's header is ignored.
            ("198.51.100.9", &["203.0.113.5"], &t, "198.51.100.9"),
            // A trusted proxy: the address it appended.
            ("10.0.0.1", &["203.0.113.5"], &t, "203.0.113.5"),
            // The client's own forgery to the left is not believed.
            ("10.0.0.1", &["1.1.1.1, 203.0.113.5"], &t, "203.0.113.5"),
            // Through two trusted proxies, over two headers.
            (
                "10.0.0.1",
                &["1.1.1.1, 203.0.113.5", "10.0.0.2"],
                &t,
                "203.0.113.5",
            ),
            // Only proxies: the leftmost.
            ("10.0.0.1", &["10.0.0.3, 10.0.0.2"], &t, "10.0.0.3"),
            // Ports and brackets.
            ("10.0.0.1", &["[2001:db8::7]:443"], &t, "2001:db8::7"),
            ("10.0.0.1", &["203.0.113.5:1234"], &t, "203.0.113.5"),
            // Garbage stops the walk at the last believed hop.
            ("10.0.0.1", &["203.0.113.5, unknown"], &t, "10.0.0.1"),
            // No header.
            ("10.0.0.1", &[], &t, "10.0.0.1"),
        ];
        for (peer, xff, trusted, want) in cases {
            assert_eq!(
                source_address(ip(peer), xff, trusted),
                ip(want),
                "peer {peer}, X-Forwarded-For {xff:?}"
            );
        }
    }

    #[test]
    fn time_is_rfc3339_utc_millis() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(millis(Duration::from_micros(1500)), 1.5);
    }

    /// A sink whose writes wait until the test opens the gate.
    struct Gated {
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
        entered: Arc<std::sync::atomic::AtomicBool>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            let (open, cv) = &*self.gate;
            let mut g = open.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
            self.out.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(n: u64) -> Record {
        Record {
            log: "audit",
            time: "t".into(),
            request_id: format!("R{n}"),
            access_key: None,
            authenticated: false,
            source: None,
            peer: None,
            method: "GET".into(),
            operation: None,
            bucket: None,
            key: None,
            version_id: None,
            copy_source: None,
            delete_keys: None,
            status: 200,
            error: None,
            bytes_in: 0,
            bytes_out: n,
            duration_ms: 0.0,
            complete: true,
        }
    }

    #[tokio::test]
    async fn a_stuck_writer_drops_lines_counts_and_announces_them() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Vec::new()));
        let log = AuditLog::start(
            Sink::Test(Box::new(Gated {
                gate: gate.clone(),
                entered: entered.clone(),
                out: out.clone(),
            })),
            2,
        );
        // The writer takes the first line and blocks writing it.
        log.submit(&record(0));
        let t = Instant::now();
        while !entered.load(Ordering::SeqCst) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the writer never wrote"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The queue behind the stuck writer holds 2 lines.
        for p in 0..2 {
            let probe = Msg::Line(format!("{{\"probe\":{p}}}"));
            assert!(log.inner.tx.try_send(probe).is_ok(), "queue place {p}");
        }
        let before = crate::metrics::global()
            .audit_dropped_queue_full
            .load(Ordering::Relaxed);
        let started = Instant::now();
        for n in 1..=5 {
            log.submit(&record(n));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "submit never waits"
        );
        assert_eq!(log.stats().dropped_queue_full.load(Ordering::Relaxed), 5);
        assert!(
            crate::metrics::global()
                .audit_dropped_queue_full
                .load(Ordering::Relaxed)
                >= before + 5
        );
        // Open the gate: what was queued is written, then the gap is announced.
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        log.flush().await;
        log.submit(&record(6));
        log.flush().await;
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("\"request_id\":\"R0\""), "{text}");
        let gap: Vec<&&str> = lines.iter().filter(|l| l.contains("\"dropped\"")).collect();
        assert_eq!(gap.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(gap[0]).unwrap();
        assert_eq!(v["dropped"], 5);
        assert_eq!(v["log"], "audit");
        assert!(text.contains("\"request_id\":\"R6\""), "{text}");
        for n in 1..=5 {
            assert!(
                !text.contains(&format!("\"R{n}\"")),
                "R{n} was dropped: {text}"
            );
        }
        assert_eq!(
            log.stats().written.load(Ordering::Relaxed),
            4,
            "R0, 2 probes, R6: {text}"
        );
    }

    /// A sink that fails every write.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn failed_writes_are_counted() {
        let log = AuditLog::start(Sink::Test(Box::new(Full)), 16);
        log.submit(&record(1));
        log.submit(&record(2));
        log.flush().await;
        assert_eq!(log.stats().dropped_write_error.load(Ordering::Relaxed), 2);
        assert_eq!(log.stats().written.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_partial_write_ends_its_line() {
        /// Writes half, then fails once, then works again.
        struct Half(Vec<u8>, u32);
        impl Write for Half {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1 += 1;
                let n = match self.1 {
                    1 => b.len() / 2,
                    2 => return Err(std::io::Error::other("disk full")),
                    _ => b.len(),
                };
                self.0.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = Half(Vec::new(), 0);
        assert!(write_whole_lines(&mut w, b"{\"a\":1}\n").is_err());
        assert_eq!(w.0, b"{\"a\"\n", "the partial line is ended");
        assert!(write_whole_lines(&mut w, b"{\"b\":2}\n").is_ok());
        assert_eq!(w.0, b"{\"a\"\n{\"b\":2}\n");
    }
}
