//! The S3 front end: s3s on hyper, SigV4 authentication, per-user bucket
//! access, virtual-hosted-style addressing, optional TLS, request ids, one
//! log line per request and one audit line ([`crate::audit`]), graceful
//! shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput, UploadPartCopyInput};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Request, S3Result};
use tokio::net::TcpListener;

use crate::audit::{AuditLog, CopySourceRecord, TrustedProxies};
use crate::gateway::Gateway;

/// Users: access key -> (secret, bucket patterns).
#[derive(Clone, Default)]
pub struct Users(pub Arc<HashMap<String, (SecretKey, Vec<String>)>>);

impl Users {
    fn may_use(&self, ak: &str, bucket: &str) -> bool {
        self.0
            .get(ak)
            .is_some_and(|(_, bs)| bs.iter().any(|b| b == "*" || b == bucket))
    }
}

#[async_trait::async_trait]
impl S3Auth for Users {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0
            .get(access_key)
            .map(|(s, _)| s.clone())
            .ok_or_else(|| {
                s3_error!(
                    InvalidAccessKeyId,
                    "The AWS Access Key Id you provided does not exist in our records."
                )
            })
    }
}

struct Access(Users);

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let operation = Some(cx.s3_op().name().to_owned());
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let bucket = cx.s3_path().get_bucket_name().map(str::to_owned);
        let key = cx.s3_path().get_object_key().map(str::to_owned);
        if let Some(facts) = cx.extensions_mut().get::<RequestFacts>() {
            facts.update(|f| {
                f.operation = operation;
                f.access_key = access_key;
                f.bucket = bucket;
                f.key = key;
            });
        }
        let Some(cred) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "Anonymous requests are not accepted; sign your request."
            ));
        };
        match cx.s3_path().get_bucket_name() {
            None => Ok(()),
            Some(b) if self.0.may_use(&cred.access_key, b) => Ok(()),
            Some(_) => Err(denied()),
        }
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        note_copy_source(&req.extensions, &req.input.copy_source);
        self.source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        note_copy_source(&req.extensions, &req.input.copy_source);
        self.source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        if let Some(facts) = req.extensions.get::<RequestFacts>() {
            let keys = req.input.delete.objects.iter().map(|o| o.key.clone());
            facts.update(|f| f.delete_keys = Some(keys.collect()));
        }
        Ok(())
    }
}

/// The object a copy reads, for its audit line (before access is checked:
/// a refused copy names what it tried to read).
fn note_copy_source(ext: &http::Extensions, src: &CopySource) {
    let (
        Some(facts),
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        },
    ) = (ext.get::<RequestFacts>(), src)
    else {
        return;
    };
    let record = CopySourceRecord {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version_id.as_ref().map(|v| v.to_string()),
    };
    facts.update(|f| f.copy_source = Some(record));
}

/// What s3s tells the front end about a request once it has verified the
/// signature and routed it ([`Access`] fills it in): for metrics and the
/// audit log. Empty when s3s refused the request before (a bad signature, an
/// unknown access key, a malformed request).
#[derive(Clone, Default)]
pub struct RequestFacts(Arc<Mutex<Facts>>);

#[derive(Clone, Default)]
pub struct Facts {
    /// The operation as s3s names it (`GetObject`, `PutObject`...).
    pub operation: Option<String>,
    /// The access key whose signature s3s verified.
    pub access_key: Option<String>,
    pub bucket: Option<String>,
    /// URL-decoded, as the client sent it.
    pub key: Option<String>,
    pub copy_source: Option<CopySourceRecord>,
    pub delete_keys: Option<Vec<String>>,
}

impl RequestFacts {
    fn update(&self, f: impl FnOnce(&mut Facts)) {
        f(&mut self.0.lock().expect("request facts"));
    }

    pub fn get(&self) -> Facts {
        self.0.lock().expect("request facts").clone()
    }
}

impl Access {
    fn source(&self, cred: Option<&s3s::auth::Credentials>, src: &CopySource) -> S3Result<()> {
        let Some(cred) = cred else {
            return Err(denied());
        };
        match src {
            CopySource::Bucket { bucket, .. } if self.0.may_use(&cred.access_key, bucket) => Ok(()),
            _ => Err(denied()),
        }
    }
}

pub struct ServerSettings {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub domains: Vec<String>,
    pub grace: Duration,
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-For` names the client (`server.trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
}

/// Time allowed for a request's head (request line and headers).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Request id, visible to handlers through request extensions.
#[derive(Clone)]
pub struct RequestId(pub String);

pub fn build_service(
    gateway: Gateway,
    users: Users,
    settings: &ServerSettings,
) -> anyhow::Result<S3Service> {
    let mut b = S3ServiceBuilder::new(gateway);
    b.set_auth(users.clone());
    b.set_access(Access(users));
    if let Some(host) = host_parser(settings)? {
        b.set_host(host);
    }
    Ok(b.build())
}

/// The base domains of virtual-hosted-style requests, with and without the
/// listeners' ports.
fn host_parser(settings: &ServerSettings) -> anyhow::Result<Option<s3s::host::MultiDomain>> {
    let mut domains: Vec<String> = Vec::new();
    for d in &settings.domains {
        for port in [
            Some(settings.listen.port()),
            settings.tls_listen.map(|a| a.port()),
        ]
        .into_iter()
        .flatten()
        {
            domains.push(format!("{d}:{port}"));
        }
        domains.push(d.clone());
    }
    if domains.is_empty() {
        return Ok(None);
    }
    s3s::host::MultiDomain::new(&domains)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("server.domains: {e:?}"))
}

fn new_request_id() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).expect("randomness");
    hex::encode_upper(b)
}

/// Adds the request id to the response header and, for S3 error bodies
/// without one, to the XML. Returns the error's code too, if any.
async fn with_request_id(
    resp: http::Response<s3s::Body>,
    id: &str,
) -> (http::Response<s3s::Body>, Option<String>) {
    let (mut parts, body) = resp.into_parts();
    if let Ok(v) = http::HeaderValue::from_str(id) {
        parts.headers.insert("x-amz-request-id", v.clone());
        parts.headers.insert("x-amz-id-2", v);
    }
    let is_error_xml = parts.status.as_u16() >= 400
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
    if !is_error_xml {
        return (http::Response::from_parts(parts, body), None);
    }
    let Ok(collected) = body.collect().await else {
        return (http::Response::from_parts(parts, s3s::Body::empty()), None);
    };
    let text = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    let code = error_code(&text);
    let text = if text.contains("<RequestId>") || !text.contains("</Error>") {
        text
    } else {
        text.replacen(
            "</Error>",
            &format!("<RequestId>{id}</RequestId></Error>"),
            1,
        )
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    (
        http::Response::from_parts(parts, s3s::Body::from(text)),
        code,
    )
}

/// The `<Code>` of an S3 error body (letters and digits only).
fn error_code(xml: &str) -> Option<String> {
    let (_, rest) = xml.split_once("<Code>")?;
    let (code, _) = rest.split_once("</Code>")?;
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_owned())
}

/// A request with `Expect: 100-continue` that may be answered without a
/// `100 Continue`: its body is empty (hyper never asks for it), or the answer
/// is an error that can come before the body is read. botocore (boto3, the aws
/// cli) then keeps that early answer's status line for the next request on the
/// same connection and waits for a response it has already consumed: a
/// read timeout (60 s in the aws cli) on e.g. the PutObject after an empty
/// one. Closing such connections after the answer avoids it.
struct EarlyAnswer {
    expects_continue: bool,
    empty_body: bool,
}

impl EarlyAnswer {
    fn of<B: http_body::Body>(req: &http::Request<B>) -> Self {
        let h1 = matches!(
            req.version(),
            http::Version::HTTP_11 | http::Version::HTTP_10
        );
        let expects_continue = h1
            && req
                .headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Self {
            expects_continue,
            empty_body: req.body().is_end_stream(),
        }
    }

    fn must_close(&self, status: http::StatusCode) -> bool {
        let error = status.is_client_error() || status.is_server_error();
        self.expects_continue && (self.empty_body || error)
    }
}

/// Everything the S3 listener does around s3s for one request: the request
/// id, metrics, the request log and the audit line. `sealgate serve` calls
/// it for each request of each connection; the in-process tests call it
/// directly.
#[derive(Clone)]
pub struct Frontend {
    s3: S3Service,
    audit: Option<AuditLog>,
    proxies: Arc<TrustedProxies>,
    host: Option<Arc<s3s::host::MultiDomain>>,
}

impl Frontend {
    pub fn new(
        s3: S3Service,
        audit: Option<AuditLog>,
        settings: &ServerSettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            s3,
            audit,
            proxies: Arc::new(settings.trusted_proxies.clone()),
            host: host_parser(settings)?.map(Arc::new),
        })
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Serves one request that came from `peer` (`None` in process, where
    /// there is no socket).
    pub async fn handle(
        &self,
        mut req: http::Request<s3s::Body>,
        peer: Option<SocketAddr>,
    ) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        let id = new_request_id();
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let early = EarlyAnswer::of(&req);
        req.extensions_mut().insert(RequestId(id.clone()));
        let facts = RequestFacts::default();
        req.extensions_mut().insert(facts.clone());
        let m = crate::metrics::global();
        let declared_in = req
            .headers()
            .get("x-amz-decoded-content-length")
            .or_else(|| req.headers().get(http::header::CONTENT_LENGTH))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let audit = match &self.audit {
            Some(log) => {
                let head = self.audit_head(&req, &id, peer);
                let bytes_in = Arc::new(AtomicU64::new(0));
                let counter = crate::audit::PayloadCounter::new(
                    crate::audit::PayloadCounter::is_aws_chunked(req.headers()),
                );
                let total = bytes_in.clone();
                req = req.map(|b| {
                    s3s::Body::http_body(crate::audit::CountingBody::new(b, counter, total))
                });
                Some((log.clone(), head, bytes_in))
            }
            None => None,
        };
        m.in_flight.fetch_add(1, Ordering::Relaxed);
        let resp = self.s3.call(req).await;
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                if let Some((log, head, bytes_in)) = audit {
                    let mut record = head.finish(&facts.get(), 500, Some("InternalError".into()));
                    record.version_id = head.version_id;
                    crate::audit::Pending {
                        log,
                        record,
                        started: start,
                        bytes_in,
                    }
                    .finish(0, false);
                }
                return Err(e);
            }
        };
        let status = resp.status();
        let op_name = facts
            .get()
            .operation
            .unwrap_or_else(|| "Unknown".to_owned());
        m.request(&op_name, status.as_u16(), start.elapsed());
        if status.is_success() {
            m.bytes_in.fetch_add(declared_in, Ordering::Relaxed);
            if method != http::Method::HEAD {
                let out = resp
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                m.bytes_out.fetch_add(out, Ordering::Relaxed);
            }
        }
        let (mut resp, error) = with_request_id(resp, &id).await;
        if early.must_close(status) {
            let close = http::HeaderValue::from_static("close");
            resp.headers_mut().insert(http::header::CONNECTION, close);
        }
        tracing::info!(
            target: "sealgate::request",
            request_id = %id,
            op = %op_name,
            method = %method,
            path = %path,
            status = status.as_u16(),
            ms = start.elapsed().as_millis() as u64,
            "request"
        );
        if let Some((log, head, bytes_in)) = audit {
            let version = head.version_id.clone().or_else(|| {
                resp.headers()
                    .get("x-amz-version-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
            let mut record = head.finish(&facts.get(), status.as_u16(), error);
            record.version_id = version;
            let pending = crate::audit::Pending {
                log,
                record,
                started: start,
                bytes_in,
            };
            if method == http::Method::HEAD {
                // No body goes out (hyper drops it unread): the answer is
                // complete with its head.
                pending.finish(0, true);
            } else {
                resp =
                    resp.map(|b| s3s::Body::http_body(crate::audit::AuditedBody::new(b, pending)));
            }
        }
        Ok(resp)
    }

    /// What the audit line knows before s3s sees the request.
    fn audit_head(
        &self,
        req: &http::Request<s3s::Body>,
        id: &str,
        peer: Option<SocketAddr>,
    ) -> AuditHead {
        let query = req.uri().query();
        let source = peer.map(|p| {
            let xff: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            crate::audit::source_address(p.ip(), &xff, &self.proxies).to_string()
        });
        let (bucket, key) = self.bucket_and_key(req);
        AuditHead {
            time: crate::audit::rfc3339_millis(time::OffsetDateTime::now_utc()),
            request_id: id.to_owned(),
            claimed_access_key: crate::audit::claimed_access_key(req.headers(), query),
            source,
            peer: peer.map(|p| p.to_string()),
            method: req.method().as_str().to_owned(),
            bucket,
            key,
            version_id: query.and_then(|q| crate::audit::query_value(q, "versionId")),
        }
    }

    /// The bucket and URL-decoded key, found as s3s finds them (for
    /// requests that s3s refuses before telling [`Access`]).
    fn bucket_and_key(&self, req: &http::Request<s3s::Body>) -> (Option<String>, Option<String>) {
        use s3s::host::S3Host;
        let Ok(decoded) = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8()
        else {
            return (None, None);
        };
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let is_ip =
            |h: &str| h.parse::<SocketAddr>().is_ok() || h.parse::<std::net::IpAddr>().is_ok();
        let path = match (host, &self.host) {
            (Some(h), Some(domains)) if !is_ip(h) => match domains.parse_host_header(h) {
                Ok(vh) => s3s::path::parse_virtual_hosted_style(vh.bucket(), &decoded),
                Err(_) => return (None, None),
            },
            _ => s3s::path::parse_path_style(&decoded),
        };
        match path {
            Ok(p) => (
                p.get_bucket_name().map(str::to_owned),
                p.get_object_key().map(str::to_owned),
            ),
            Err(_) => (None, None),
        }
    }
}

/// The audit line's fields known before the request is served.
struct AuditHead {
    time: String,
    request_id: String,
    claimed_access_key: Option<String>,
    source: Option<String>,
    peer: Option<String>,
    method: String,
    bucket: Option<String>,
    key: Option<String>,
    version_id: Option<String>,
}

impl AuditHead {
    /// The line, with what s3s learned, the status and the error code;
    /// bytes, duration and completeness come at the end of the body.
    fn finish(&self, facts: &Facts, status: u16, error: Option<String>) -> crate::audit::Record {
        let verified = facts.access_key.is_some();
        crate::audit::Record {
            log: "audit",
            time: self.time.clone(),
            request_id: self.request_id.clone(),
            access_key: facts
                .access_key
                .clone()
                .or_else(|| self.claimed_access_key.clone()),
            authenticated: verified,
            source: self.source.clone(),
            peer: self.peer.clone(),
            method: self.method.clone(),
            operation: facts.operation.clone(),
            bucket: facts.bucket.clone().or_else(|| self.bucket.clone()),
            key: if facts.operation.is_some() {
                facts.key.clone()
            } else {
                self.key.clone()
            },
            version_id: None,
            copy_source: facts.copy_source.clone(),
            delete_keys: facts.delete_keys.clone(),
            status,
            error,
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0.0,
            complete: false,
        }
    }
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish for
/// up to the grace period. With an audit file, SIGHUP reopens it.
pub async fn serve(frontend: Frontend, settings: ServerSettings) -> anyhow::Result<()> {
    let plain = TcpListener::bind(settings.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (server.listen): {e}; is another process using the port?",
            settings.listen
        )
    })?;
    let tls_listener = match settings.tls_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {a} (server.tls_listen): {e}"))?,
        ),
        None => None,
    };
    let acceptor = settings.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    // With a certificate but no separate TLS port, the main port speaks https.
    let main_is_tls = acceptor.is_some() && tls_listener.is_none();
    let mut http = ConnBuilder::new(TokioExecutor::new());
    // A client must send its whole request head within this time (and an
    // idle keep-alive connection is closed after it): otherwise connections
    // that never finish their headers (slowloris) hold server.max_connections
    // slots for ever. hyper applies it only with a timer.
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // SIGHUP is taken over only with an audit file (otherwise it still ends
    // the process, as before).
    let audit_file = frontend.audit().filter(|a| a.is_file()).cloned();
    let mut hup = match &audit_file {
        Some(_) => Some(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        )?),
        None => None,
    };
    tracing::info!(listen = %settings.listen, tls = main_is_tls, tls_listen = ?settings.tls_listen, "sealgate is serving");
    loop {
        let (tcp, peer, is_tls) = tokio::select! {
            r = plain.accept() => match r { Ok((s, a)) => (s, a, main_is_tls), Err(e) => { tracing::warn!(error = %e, "accept failed"); continue } },
            r = async { match &tls_listener { Some(l) => l.accept().await, None => std::future::pending().await } } => match r { Ok((s, a)) => (s, a, true), Err(e) => { tracing::warn!(error = %e, "accept failed"); continue } },
            _ = async { match &mut hup { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                if let Some(a) = audit_file.clone() {
                    tokio::spawn(async move {
                        match a.reopen().await {
                            Ok(()) => tracing::info!("SIGHUP: audit log reopened"),
                            Err(e) => tracing::error!(error = %e, "SIGHUP: cannot reopen the audit log (audit.path); still writing to the file it had"),
                        }
                    });
                }
                continue;
            }
            _ = term.recv() => break,
            _ = &mut ctrl_c => break,
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(
                "connection limit reached (server.max_connections); refusing a connection"
            );
            drop(tcp);
            continue;
        };
        let fe = frontend.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let fe = fe.clone();
            async move { fe.handle(req.map(s3s::Body::from), Some(peer)).await }
        });
        let (http, watcher) = (http.clone(), graceful.watcher());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if is_tls {
                let Some(acc) = acceptor else { return };
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acc.accept(tcp)).await
                else {
                    return;
                };
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(tls), svc).into_owned())
                    .await;
            } else {
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(tcp), svc).into_owned())
                    .await;
            }
        });
    }
    tracing::info!(
        grace_secs = settings.grace.as_secs(),
        "shutting down: finishing in-flight requests"
    );
    drop(plain);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(settings.grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    if let Some(a) = frontend.audit() {
        if tokio::time::timeout(Duration::from_secs(5), a.flush())
            .await
            .is_err()
        {
            tracing::warn!("the audit log could not be written out within 5 s of shutdown");
        }
    }
    Ok(())
}

/// Loads a PEM certificate chain and private key for the TLS listener.
pub fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    use tokio_rustls::rustls;
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .map_err(|e| anyhow::anyhow!("server.tls_cert {}: {e}", cert.display()))?,
    ))
    .collect::<Result<_, _>>()
    .map_err(|e| anyhow::anyhow!("server.tls_cert {}: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .map_err(|e| anyhow::anyhow!("server.tls_key {}: {e}", key.display()))?,
    ))
    .map_err(|e| anyhow::anyhow!("server.tls_key: {e}"))?
    .ok_or_else(|| anyhow::anyhow!("server.tls_key: no private key found"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("server.tls_cert/tls_key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
