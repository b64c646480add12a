//! The S3 front end: s3s on hyper, SigV4 authentication, per-user bucket
//! access, virtual-hosted-style addressing, optional TLS, request ids and one
//! log line per request, graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Request, S3Result};
use tokio::net::TcpListener;

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
        let name = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<crate::metrics::OpSlot>() {
            *slot.0.lock().expect("op slot") = Some(name);
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
        self.source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.source(req.credentials.as_ref(), &req.input.copy_source)
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
    if !domains.is_empty() {
        b.set_host(
            s3s::host::MultiDomain::new(&domains)
                .map_err(|e| anyhow::anyhow!("server.domains: {e:?}"))?,
        );
    }
    Ok(b.build())
}

fn new_request_id() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).expect("randomness");
    hex::encode_upper(b)
}

/// Adds the request id to the response header and, for S3 error bodies
/// without one, to the XML.
async fn with_request_id(resp: http::Response<s3s::Body>, id: &str) -> http::Response<s3s::Body> {
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
        return http::Response::from_parts(parts, body);
    }
    let Ok(collected) = body.collect().await else {
        return http::Response::from_parts(parts, s3s::Body::empty());
    };
    let text = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
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
    http::Response::from_parts(parts, s3s::Body::from(text))
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
    fn of(req: &http::Request<hyper::body::Incoming>) -> Self {
        use hyper::body::Body as _;
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

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish for
/// up to the grace period.
pub async fn serve(service: S3Service, settings: ServerSettings) -> anyhow::Result<()> {
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
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let s3 = service.clone();
        async move {
            let id = new_request_id();
            let start = Instant::now();
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let early = EarlyAnswer::of(&req);
            req.extensions_mut().insert(RequestId(id.clone()));
            let op = crate::metrics::OpSlot::default();
            req.extensions_mut().insert(op.clone());
            let m = crate::metrics::global();
            let declared_in = req
                .headers()
                .get("x-amz-decoded-content-length")
                .or_else(|| req.headers().get(http::header::CONTENT_LENGTH))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            m.in_flight
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let resp = s3.call(req.map(s3s::Body::from)).await;
            m.in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let resp = resp?;
            let status = resp.status();
            let op_name =
                op.0.lock()
                    .expect("op slot")
                    .clone()
                    .unwrap_or_else(|| "Unknown".to_owned());
            m.request(&op_name, status.as_u16(), start.elapsed());
            if status.is_success() {
                m.bytes_in
                    .fetch_add(declared_in, std::sync::atomic::Ordering::Relaxed);
                if method != http::Method::HEAD {
                    let out = resp
                        .headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    m.bytes_out
                        .fetch_add(out, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let mut resp = with_request_id(resp, &id).await;
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
            Ok::<_, s3s::HttpError>(resp)
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    tracing::info!(listen = %settings.listen, tls = main_is_tls, tls_listen = ?settings.tls_listen, "sealgate is serving");
    loop {
        let (tcp, is_tls) = tokio::select! {
            r = plain.accept() => match r { Ok((s, _)) => (s, main_is_tls), Err(e) => { tracing::warn!(error = %e, "accept failed"); continue } },
            r = async { match &tls_listener { Some(l) => l.accept().await, None => std::future::pending().await } } => match r { Ok((s, _)) => (s, true), Err(e) => { tracing::warn!(error = %e, "accept failed"); continue } },
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
        let (http, svc, watcher) = (http.clone(), svc.clone(), graceful.watcher());
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
