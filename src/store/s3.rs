//! The S3 back end: aws-sdk-s3 against an explicit endpoint, path style,
//! checksums only when required (the SDK's newer defaults break many
//! S3-compatible stores), bodies streamed with an exact length.
//!
//! The store is hostile: every answer it gives has a bound on its bytes
//! ([`answer_limit`], at the HTTP layer), every ranged read is checked against
//! what was asked ([`range_answer`]), and every paged listing has a cap and
//! a marker that must move ([`paging`]). docs/SECURITY.md lists the bounds.

pub mod answer_limit;
pub mod blank_key;
pub mod paging;
mod range_answer;

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::{ByteStream as SdkByteStream, DateTime, SdkBody};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::{Stream, TryStreamExt};

use answer_limit::{find_cause, AnswerLimit, AnswerTooLong, BoundedHttpClient};
use paging::{PartsPager, UploadsPager};
use range_answer::{check_range_answer, check_tail_answer};

use super::versions::{self, Written};
use super::{
    BucketInfo, ByteStream, CopyConditions, ListEntry, ListPage, ListRequest, ObjectHeaders,
    ObjectInfo, PartInfo, PartSource, Store, StoreError, StoreResult, UploadInfo, WriteCondition,
};

/// Settings of the S3 back end.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub path_style: bool,
    pub connect_timeout: Duration,
    /// Time allowed for a response to start; for uploads (whose request time
    /// grows with their size), time allowed without progress: the store
    /// taking no body bytes, or not answering after the last one. Server-side
    /// copies and multipart completions get [`SLOW_OP_FACTOR`] times as long.
    pub request_timeout: Duration,
    pub max_attempts: u32,
}

pub struct S3Store {
    client: Client,
    request_timeout: Duration,
}

impl S3Store {
    pub fn new(s: &S3Settings) -> Self {
        use aws_smithy_http_client::{tls, Builder as HttpClientBuilder};
        let http = HttpClientBuilder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&s.endpoint)
            .region(Region::new(s.region.clone()))
            .credentials_provider(Credentials::new(
                &s.access_key,
                &s.secret_key,
                None,
                None,
                "sealgate-config",
            ))
            .force_path_style(s.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(s.connect_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts.max(1)))
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .retry_classifier(answer_limit::NoRetryOfLongAnswers)
            .http_client(BoundedHttpClient::new(http))
            .build();
        Self {
            client: Client::from_conf(conf),
            request_timeout: s.request_timeout,
        }
    }

    /// Bounds the time to the response headers of a non-upload request.
    async fn timed<T, F: std::future::Future<Output = StoreResult<T>>>(
        &self,
        f: F,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.request_timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::unavailable("the store did not answer in time")),
        }
    }

    /// Bounds a server-side copy or a multipart completion, whose answer may
    /// take longer to start on some stores.
    async fn timed_slow<T, F: std::future::Future<Output = StoreResult<T>>>(
        &self,
        f: F,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.request_timeout * SLOW_OP_FACTOR, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::unavailable("the store did not answer in time")),
        }
    }

    /// Runs an upload, failing it when the store makes no progress on it for
    /// `request_timeout` (see [`Progress`]). Dropping the request aborts it,
    /// so the store commits nothing.
    async fn watched<T, F: std::future::Future<Output = StoreResult<T>>>(
        &self,
        progress: &Progress,
        f: F,
    ) -> StoreResult<T> {
        tokio::pin!(f);
        let tick =
            (self.request_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::select! {
                r = &mut f => {
                    progress.give_up();
                    return r;
                }
                () = tokio::time::sleep(tick) => {
                    if progress.clock.stalled(self.request_timeout) {
                        progress.give_up();
                        return Err(StoreError::unavailable("the store stopped taking the upload"));
                    }
                }
            }
        }
    }
}

/// How many request timeouts a server-side copy or a multipart completion may
/// take before its answer starts.
pub const SLOW_OP_FACTOR: u32 = 5;

/// When an upload body last moved. hyper polls the body only when it can
/// send more, so time since the last poll, unless the body itself is waiting
/// for the client's bytes, is time the store spent not taking them (or, after
/// the last byte, not answering).
#[derive(Clone)]
struct Clock(std::sync::Arc<std::sync::Mutex<(std::time::Instant, bool)>>);

impl Clock {
    /// The store side moved (or the body is waiting on the client: `waiting`).
    fn mark(&self, waiting: bool) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (std::time::Instant::now(), waiting);
    }
    fn stalled(&self, limit: Duration) -> bool {
        let (at, waiting) = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        !waiting && at.elapsed() > limit
    }
}

/// Wakes the body when its source has bytes, and marks that moment: from
/// then on only the store side can keep hyper from taking them.
struct MarkOnWake {
    clock: Clock,
    inner: std::task::Waker,
}

impl futures::task::ArcWake for MarkOnWake {
    fn wake_by_ref(arc_self: &std::sync::Arc<Self>) {
        arc_self.clock.mark(false);
        arc_self.inner.wake_by_ref();
    }
}

/// An upload's clock and its source. The source is shared with the watchdog
/// so that giving up on the upload releases it (and with it the client's
/// request body) even when the connection to the store lingers.
struct Progress {
    clock: Clock,
    source: std::sync::Mutex<Option<ByteStream>>,
}

impl Progress {
    fn new(source: ByteStream) -> Self {
        Self {
            clock: Clock(std::sync::Arc::new(std::sync::Mutex::new((
                std::time::Instant::now(),
                false,
            )))),
            source: std::sync::Mutex::new(Some(source)),
        }
    }

    fn give_up(&self) {
        let source = self.source.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(source);
    }
}

fn map_err<E>(err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_owned);
    if let Some(long) = find_cause::<AnswerTooLong>(&err) {
        let mut e = bad_answer(long);
        e.request_id = request_id;
        return e;
    }
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let meta = se.err().meta();
            let code = meta.code().map(str::to_owned).unwrap_or_else(|| {
                match status {
                    304 => "NotModified",
                    400 => "BadRequest",
                    403 => "AccessDenied",
                    404 => "NotFound",
                    405 => "MethodNotAllowed",
                    409 => "Conflict",
                    412 => "PreconditionFailed",
                    416 => "InvalidRange",
                    503 => "SlowDown",
                    _ => "InternalError",
                }
                .to_owned()
            });
            StoreError {
                status,
                code,
                message: meta.message().unwrap_or_default().to_owned(),
                request_id,
                unavailable: status == 503,
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            let mut e = StoreError::unavailable(format!(
                "the store is unreachable: {}",
                DisplayErrorContext(&err)
            ));
            e.request_id = request_id;
            e
        }
        _ => StoreError::new(500, "InternalError", DisplayErrorContext(&err).to_string()),
    }
}

/// The store's answer is refused: longer than its bound, or not what was
/// asked for. Not `unavailable`: the store answered, wrongly.
fn bad_answer(why: impl std::fmt::Display) -> StoreError {
    tracing::warn!(error = %why, "refused an answer from the store");
    StoreError::new(
        502,
        "BadGateway",
        format!("the store's answer was refused: {why}"),
    )
}

/// A failed read of a store body: refused when it ran past its bound,
/// otherwise the store went away.
fn body_error(e: &(dyn std::error::Error + 'static)) -> StoreError {
    match find_cause::<AnswerTooLong>(e) {
        Some(long) => bad_answer(long),
        None => StoreError::unavailable(format!("reading from the store: {e}")),
    }
}

/// Collects a body of exactly `len` bytes; a store that sends more or less
/// than it announced is refused (more is never buffered).
async fn collect_exactly(
    mut body: impl Stream<Item = Result<Bytes, StoreError>> + Unpin,
    len: u64,
    what: &str,
) -> StoreResult<Bytes> {
    let mut out = bytes::BytesMut::with_capacity(len.min(1 << 20) as usize);
    while let Some(c) = body.try_next().await? {
        if out.len() as u64 + c.len() as u64 > len {
            return Err(bad_answer(format!(
                "{what}: more than the {len} bytes announced"
            )));
        }
        out.extend_from_slice(&c);
    }
    if out.len() as u64 != len {
        return Err(bad_answer(format!(
            "{what}: {} of the {len} bytes announced",
            out.len()
        )));
    }
    Ok(out.freeze())
}

/// The text of the first `<name>` element of a small XML answer.
fn xml_text(body: &[u8], name: &str) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = s.find(&open)? + open.len();
    let len = s[start..].find(&format!("</{name}>"))?;
    let text = s[start..start + len].trim();
    (!text.is_empty() && !text.contains('<') && !text.contains('&')).then(|| text.to_owned())
}

/// One page of ListParts.
struct PartsPage {
    parts: Vec<PartInfo>,
    truncated: bool,
    next: Option<String>,
}

/// A ListParts answer read from its XML (for an answer the SDK refuses
/// only for its root element's name). `None` when it is not one.
fn parts_from_xml(body: &[u8]) -> Option<PartsPage> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<ListParts") {
        return None;
    }
    let mut parts = Vec::new();
    for seg in text.split("<Part>").skip(1) {
        let seg = seg.split("</Part>").next()?.replace("&quot;", "\"");
        let seg = seg.as_bytes();
        parts.push(PartInfo {
            part_number: xml_text(seg, "PartNumber")?.parse().ok()?,
            etag: unquote(Some(&xml_text(seg, "ETag")?)),
            size: xml_text(seg, "Size")?.parse().ok()?,
            last_modified: xml_text(seg, "LastModified")
                .and_then(|t| {
                    DateTime::from_str(&t, aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()
                })
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, |d| to_system_time(Some(d))),
        });
    }
    Some(PartsPage {
        parts,
        truncated: xml_text(body, "IsTruncated").as_deref() == Some("true"),
        next: xml_text(body, "NextPartNumberMarker"),
    })
}

/// The ETag of a CompleteMultipartUpload answer read from its XML (for an
/// answer the SDK refuses only for its root element's name).
fn completed_etag(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.replace("&quot;", "\"");
    if !text.contains("<CompleteMultipartUpload") || text.contains("<Error>") {
        return None;
    }
    Some(unquote(Some(&xml_text(text.as_bytes(), "ETag")?))).filter(|e| !e.is_empty())
}

fn precondition_failed() -> StoreError {
    StoreError::new(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// The `If-None-Match` and `If-Match` headers of a conditional write.
fn condition_headers(cond: Option<&WriteCondition>) -> (Option<String>, Option<String>) {
    match cond {
        None => (None, None),
        Some(WriteCondition::Absent) => (Some("*".to_owned()), None),
        Some(WriteCondition::Matches(etag)) => (None, Some(format!("\"{etag}\""))),
    }
}

/// The store's refusal of a conditional write, with the codes S3 gives
/// (some stores answer the status with another code, or none).
fn condition_failed(mut e: StoreError, cond: Option<&WriteCondition>) -> StoreError {
    if cond.is_some() {
        match e.status {
            412 => e.code = "PreconditionFailed".to_owned(),
            409 if e.code == "Conflict" || e.code.is_empty() => {
                e.code = "ConditionalRequestConflict".to_owned()
            }
            404 if matches!(cond, Some(WriteCondition::Matches(_))) && e.code == "NotFound" => {
                e.code = "NoSuchKey".to_owned()
            }
            _ => {}
        }
    }
    e
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn to_system_time(d: Option<&DateTime>) -> SystemTime {
    d.and_then(|d| SystemTime::try_from(*d).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

/// Percent-encodes a key for `x-amz-copy-source` (the SDK sends it verbatim).
fn copy_source(bucket: &str, key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    format!("{bucket}/{}", utf8_percent_encode(key, KEEP))
}

/// A request body of exactly `len` bytes, read from the source in its
/// [`Progress`] (whose mutex also gives the `Sync` the SDK needs).
///
/// The chunk that completes the declared length is held back until the source
/// stream has ended cleanly: once the last byte is on the wire the store
/// commits the object, so an error the source reports after its last byte
/// (or extra bytes) must abort the request before that byte is sent.
struct ExactBody {
    /// Bytes still to come from the source.
    remaining: u64,
    /// The final chunk, waiting for the source's end.
    held: Option<Bytes>,
    /// The source ended cleanly.
    ended: bool,
    progress: std::sync::Arc<Progress>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl http_body::Body for ExactBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        this.progress.clock.mark(false);
        if this.ended {
            return Poll::Ready(this.held.take().map(|b| Ok(http_body::Frame::data(b))));
        }
        let progress = this.progress.clone();
        let mut source = progress.source.lock().unwrap_or_else(|p| p.into_inner());
        let Some(st) = source.as_mut() else {
            this.held = None;
            return Poll::Ready(Some(Err("the upload was given up".into())));
        };
        let waker = futures::task::waker(std::sync::Arc::new(MarkOnWake {
            clock: this.progress.clock.clone(),
            inner: cx.waker().clone(),
        }));
        let cx = &mut Context::from_waker(&waker);
        loop {
            match st.as_mut().poll_next(cx) {
                Poll::Pending => {
                    this.progress.clock.mark(true);
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(b))) if b.is_empty() => continue,
                Poll::Ready(Some(Ok(b))) => {
                    let n = b.len() as u64;
                    if n > this.remaining {
                        this.held = None;
                        return Poll::Ready(Some(Err(
                            "body longer than its declared length".into()
                        )));
                    }
                    this.remaining -= n;
                    if this.remaining == 0 {
                        // Keep it until the source says it is done.
                        this.held = Some(b);
                        continue;
                    }
                    return Poll::Ready(Some(Ok(http_body::Frame::data(b))));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.held = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(None) if this.remaining != 0 => {
                    return Poll::Ready(Some(Err("body shorter than its declared length".into())))
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    *source = None;
                    return Poll::Ready(this.held.take().map(|b| Ok(http_body::Frame::data(b))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(
            self.remaining + self.held.as_ref().map_or(0, |b| b.len() as u64),
        )
    }
}

fn exact_body(len: u64, progress: std::sync::Arc<Progress>) -> SdkByteStream {
    SdkByteStream::new(SdkBody::from_body_1_x(ExactBody {
        remaining: len,
        held: None,
        ended: false,
        progress,
    }))
}

/// A failed read of a store body, its cause kept as the source (so that
/// [`find_cause`] finds an [`AnswerTooLong`] behind it).
#[derive(Debug, thiserror::Error)]
#[error("store body: {0}")]
struct StoreBodyError(#[source] BoxError);

/// A response body from the store; it fails when the store sends nothing for
/// `idle` while it is being read (a store that stalls mid-body).
fn sdk_stream(body: SdkByteStream, idle: Duration) -> ByteStream {
    let s = http_body_util::BodyDataStream::new(body.into_inner())
        .map_err(|e| std::io::Error::other(StoreBodyError(e)));
    Box::pin(IdleLimited {
        inner: Box::pin(s),
        idle,
        last: tokio::time::Instant::now(),
        timer: Box::pin(tokio::time::sleep(idle)),
        done: false,
    })
}

/// A stream that fails once it has yielded nothing for `idle`. The timer is
/// armed once and moved only when it fires (to `idle` after the last item),
/// not once per item: a body arrives in tens of thousands of chunks per GiB.
struct IdleLimited {
    inner: ByteStream,
    idle: Duration,
    last: tokio::time::Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl Stream for IdleLimited {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.last = tokio::time::Instant::now();
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        loop {
            if std::future::Future::poll(self.timer.as_mut(), cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last + self.idle;
            if tokio::time::Instant::now() >= deadline {
                self.done = true;
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "store body: the store stopped sending",
                ))));
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

fn headers_from(
    metadata: Option<&HashMap<String, String>>,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    content_disposition: Option<&str>,
    content_language: Option<&str>,
    cache_control: Option<&str>,
    expires: Option<&str>,
) -> ObjectHeaders {
    ObjectHeaders {
        metadata: metadata
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        content_type: content_type.map(str::to_owned),
        content_encoding: content_encoding.map(str::to_owned),
        content_disposition: content_disposition.map(str::to_owned),
        content_language: content_language.map(str::to_owned),
        cache_control: cache_control.map(str::to_owned),
        expires: expires.map(str::to_owned),
        lock: None,
    }
}

impl ObjectHeaders {
    fn with_lock(mut self, lock: Option<super::lock::ObjectLock>) -> Self {
        self.lock = lock;
        self
    }
}

macro_rules! apply_headers {
    ($b:expr, $h:expr) => {{
        let h: &ObjectHeaders = $h;
        let mut b = $b
            .set_metadata(Some(h.metadata.clone()))
            .set_content_type(h.content_type.clone())
            .set_content_encoding(h.content_encoding.clone())
            .set_content_disposition(h.content_disposition.clone())
            .set_content_language(h.content_language.clone())
            .set_cache_control(h.cache_control.clone());
        if let Some(e) = h.expires.as_deref() {
            if let Ok(d) = DateTime::from_str(e, aws_sdk_s3::primitives::DateTimeFormat::HttpDate) {
                b = b.expires(d);
            }
        }
        if let Some(l) = &h.lock {
            let (mode, until, hold) = lock::write_fields(l);
            b = b
                .set_object_lock_mode(mode)
                .set_object_lock_retain_until_date(until)
                .set_object_lock_legal_hold_status(hold);
        }
        b
    }};
}

/// `$req.key($key).customize()` for a fluent builder, with a blank key
/// (whitespace only, which the SDK refuses) given to the SDK as a stand-in
/// and put back into the request's path before signing ([`blank_key`]).
macro_rules! keyed {
    ($req:expr, $key:expr) => {{
        let key: &str = $key;
        let req = $req.key(blank_key::sdk_key(key)).customize();
        if blank_key::is_blank(key) {
            let key = key.to_owned();
            req.mutate_request(move |r| blank_key::restore(r, &key))
        } else {
            req
        }
    }};
}

// After the macros they use.
pub mod lock;
mod versions_s3;

#[async_trait]
impl Store for S3Store {
    fn locks(&self) -> Option<&dyn super::lock::LockStore> {
        Some(self)
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        self.timed(async {
            let out = self.client.list_buckets().send().await.map_err(map_err)?;
            Ok(out
                .buckets()
                .iter()
                .map(|b| BucketInfo {
                    name: b.name().unwrap_or_default().to_owned(),
                    created: to_system_time(b.creation_date()),
                })
                .collect())
        })
        .await
    }

    async fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.timed(async {
            self.client
                .create_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn head_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.timed(async {
            self.client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(map_err)
                .map_err(|mut e| {
                    if e.status == 404 {
                        e.code = "NoSuchBucket".into();
                    }
                    e
                })?;
            Ok(())
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        // Some stores (s3s-fs) delete a bucket with everything in it: look first.
        let page = self
            .list(
                bucket,
                &ListRequest {
                    max_keys: 1,
                    ..Default::default()
                },
            )
            .await?;
        if !page.entries.is_empty() || !page.common_prefixes.is_empty() {
            return Err(StoreError::new(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            ));
        }
        self.timed(async {
            self.client
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn head(&self, bucket: &str, key: &str) -> StoreResult<ObjectInfo> {
        self.head_version(bucket, key, None).await
    }

    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        self.timed(async {
            let req = self
                .client
                .head_object()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned));
            let o = keyed!(req, key)
                .send()
                .await
                .map_err(map_err)
                .map_err(|mut e| {
                    if e.status == 404 {
                        e.code = "NoSuchKey".into();
                    }
                    e
                })?;
            versions::check_version_answer(version, o.version_id())?;
            Ok(ObjectInfo {
                size: o.content_length().unwrap_or(0).max(0) as u64,
                etag: unquote(o.e_tag()),
                last_modified: to_system_time(o.last_modified()),
                headers: headers_from(
                    o.metadata(),
                    o.content_type(),
                    o.content_encoding(),
                    o.content_disposition(),
                    o.content_language(),
                    o.cache_control(),
                    o.expires_string(),
                )
                .with_lock(lock::read_fields(
                    o.object_lock_mode(),
                    o.object_lock_retain_until_date(),
                    o.object_lock_legal_hold_status(),
                )),
                version_id: o.version_id().map(str::to_owned),
            })
        })
        .await
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        self.get_version(bucket, key, None, range, if_match).await
    }

    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        self.timed(async {
            let mut req = self
                .client
                .get_object()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned));
            if let Some((a, b)) = range {
                if b <= a {
                    return Err(StoreError::new(416, "InvalidRange", "empty range"));
                }
                req = req.range(format!("bytes={}-{}", a, b - 1));
            }
            if let Some(m) = if_match {
                req = req.if_match(format!("\"{m}\""));
            }
            // The body may not pass the range asked. A whole object is
            // streamed to a reader that bounds it (and hyper holds it to
            // its Content-Length).
            let limit = AnswerLimit(range.map_or(u64::MAX, |(a, b)| b - a));
            let o = keyed!(req, key)
                .mutate_request(move |r| r.add_extension(limit))
                .send()
                .await
                .map_err(map_err)?;
            versions::check_version_answer(version, o.version_id())?;
            if let Some(m) = if_match {
                // Not every store honours If-Match on GET (s3s-fs ignores it).
                if unquote(o.e_tag()) != m {
                    return Err(precondition_failed());
                }
            }
            let total = match range {
                Some(asked) => {
                    check_range_answer(asked, o.content_range(), o.content_length())
                        .map_err(|e| bad_answer(format!("a ranged read: {e}")))?
                        .total
                }
                None => o.content_length().unwrap_or(0).max(0) as u64,
            };
            let info = ObjectInfo {
                size: total,
                etag: unquote(o.e_tag()),
                last_modified: to_system_time(o.last_modified()),
                headers: headers_from(
                    o.metadata(),
                    o.content_type(),
                    o.content_encoding(),
                    o.content_disposition(),
                    o.content_language(),
                    o.cache_control(),
                    o.expires_string(),
                )
                .with_lock(lock::read_fields(
                    o.object_lock_mode(),
                    o.object_lock_retain_until_date(),
                    o.object_lock_legal_hold_status(),
                )),
                version_id: o.version_id().map(str::to_owned),
            };
            Ok((info, sdk_stream(o.body, self.request_timeout)))
        })
        .await
    }

    async fn get_tail(&self, bucket: &str, key: &str, n: u64) -> StoreResult<(ObjectInfo, Bytes)> {
        self.get_tail_version(bucket, key, None, n).await
    }

    async fn get_tail_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        n: u64,
    ) -> StoreResult<(ObjectInfo, Bytes)> {
        if n == 0 {
            // Nothing to read (and `bytes=-0` is no valid range).
            return Ok((self.head_version(bucket, key, version).await?, Bytes::new()));
        }
        let o = self
            .timed(async {
                keyed!(
                    self.client
                        .get_object()
                        .bucket(bucket)
                        .set_version_id(version.map(str::to_owned))
                        .range(format!("bytes=-{n}")),
                    key
                )
                .mutate_request(move |r| r.add_extension(AnswerLimit(n)))
                .send()
                .await
                .map_err(map_err)
                .map_err(|mut e| {
                    if e.status == 404 && e.code == "NotFound" {
                        e.code = "NoSuchKey".into();
                    }
                    e
                })
            })
            .await;
        let o = match o {
            Ok(o) => o,
            // An empty object has no satisfiable suffix range, and s3s-fs
            // fails a suffix longer than the object: ask for the size, then
            // for an explicit range of that version.
            Err(e) if e.status == 416 || (e.status == 500 && !e.unavailable) => {
                let mut attempt = 0;
                loop {
                    let head = self.head_version(bucket, key, version).await?;
                    let start = head.size.saturating_sub(n);
                    if start == head.size {
                        return Ok((head, Bytes::new()));
                    }
                    let got = self
                        .get_version(
                            bucket,
                            key,
                            version,
                            Some((start, head.size)),
                            Some(&head.etag),
                        )
                        .await;
                    match got {
                        Ok((info, body)) => {
                            let body = body.map_err(|e| body_error(&e));
                            let data = self
                                .timed(collect_exactly(body, head.size - start, "a tail read"))
                                .await?;
                            return Ok((info, data));
                        }
                        // Replaced between the two requests: again.
                        Err(e) if e.status == 412 && attempt < 3 => attempt += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        };
        versions::check_version_answer(version, o.version_id())?;
        let served = check_tail_answer(n, o.content_range(), o.content_length())
            .map_err(|e| bad_answer(format!("a tail read: {e}")))?;
        let info = ObjectInfo {
            size: served.total,
            etag: unquote(o.e_tag()),
            last_modified: to_system_time(o.last_modified()),
            headers: headers_from(
                o.metadata(),
                o.content_type(),
                o.content_encoding(),
                o.content_disposition(),
                o.content_language(),
                o.cache_control(),
                o.expires_string(),
            )
            .with_lock(lock::read_fields(
                o.object_lock_mode(),
                o.object_lock_retain_until_date(),
                o.object_lock_legal_hold_status(),
            )),
            version_id: o.version_id().map(str::to_owned),
        };
        let body =
            http_body_util::BodyDataStream::new(o.body.into_inner()).map_err(|e| body_error(&*e));
        let data = self
            .timed(collect_exactly(body, served.len(), "a tail read"))
            .await?;
        Ok((info, data))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String> {
        self.put_versioned(bucket, key, body, len, headers, cond)
            .await
            .map(|w| w.etag)
    }

    async fn put_versioned(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let progress = std::sync::Arc::new(Progress::new(body));
        let (if_none_match, if_match) = condition_headers(cond);
        let req = self
            .client
            .put_object()
            .bucket(bucket)
            .content_length(len as i64)
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .body(exact_body(len, progress.clone()))
            // S3 wants a content checksum with every write to a bucket with
            // Object Lock.
            .set_checksum_algorithm(
                headers
                    .lock
                    .is_some()
                    .then_some(aws_sdk_s3::types::ChecksumAlgorithm::Crc32),
            );
        let req = keyed!(apply_headers!(req, headers), key);
        let o = self
            .watched(&progress, async {
                req.send()
                    .await
                    .map_err(|e| condition_failed(map_err(e), cond))
            })
            .await?;
        Ok(Written {
            etag: unquote(o.e_tag()),
            version_id: o.version_id().map(str::to_owned),
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.timed(async {
            keyed!(self.client.delete_object().bucket(bucket), key)
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn delete_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> StoreResult<Vec<(String, Option<StoreError>)>> {
        // One DeleteObjects request takes at most 1,000 keys.
        let mut failed: HashMap<String, StoreError> = HashMap::new();
        for chunk in keys.chunks(1000) {
            let ids = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::new(400, "InvalidRequest", e.to_string()))?;
            let del = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::new(400, "InvalidRequest", e.to_string()))?;
            let out = self
                .timed(async {
                    self.client
                        .delete_objects()
                        .bucket(bucket)
                        .delete(del)
                        .customize()
                        .mutate_request(|req| {
                            // Many S3-compatible stores still require Content-MD5 here.
                            if let Some(b) = req.body().bytes() {
                                use base64::Engine;
                                use md5::Digest;
                                let md5 = base64::engine::general_purpose::STANDARD
                                    .encode(md5::Md5::digest(b));
                                req.headers_mut().insert("content-md5", md5);
                            }
                        })
                        .send()
                        .await
                        .map_err(map_err)
                })
                .await?;
            for e in out.errors() {
                failed.insert(
                    e.key().unwrap_or_default().to_owned(),
                    StoreError::new(
                        500,
                        e.code().unwrap_or("InternalError"),
                        e.message().unwrap_or_default(),
                    ),
                );
            }
        }
        Ok(keys.iter().map(|k| (k.clone(), failed.remove(k))).collect())
    }

    async fn list(&self, bucket: &str, r: &ListRequest) -> StoreResult<ListPage> {
        // A start-after below the prefix excludes nothing; Garage answers it
        // with an empty listing, so leave it out.
        let start_after = nonempty(&r.start_after)
            .filter(|a| r.prefix.as_deref().is_none_or(|p| a.as_str() >= p));
        self.timed(async {
            let o = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix(nonempty(&r.prefix))
                // An empty delimiter means none (AWS); some stores (s3s-fs)
                // take it literally.
                .set_delimiter(nonempty(&r.delimiter))
                .max_keys(r.max_keys)
                .set_continuation_token(nonempty(&r.continuation_token))
                .set_start_after(start_after.clone())
                .send()
                .await
                .map_err(map_err)?;
            paging::check_list_page(
                nonempty(&r.continuation_token).as_deref(),
                r.max_keys,
                o.contents().len() + o.common_prefixes().len(),
                o.is_truncated().unwrap_or(false),
                o.next_continuation_token(),
            )
            .map_err(bad_answer)?;
            Ok(ListPage {
                entries: o
                    .contents()
                    .iter()
                    .map(|e| ListEntry {
                        key: e.key().unwrap_or_default().to_owned(),
                        size: e.size().unwrap_or(0).max(0) as u64,
                        etag: unquote(e.e_tag()),
                        last_modified: to_system_time(e.last_modified()),
                    })
                    .collect(),
                common_prefixes: o
                    .common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned))
                    .collect(),
                is_truncated: o.is_truncated().unwrap_or(false),
                next_continuation_token: o.next_continuation_token().map(str::to_owned),
            })
        })
        .await
    }

    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        conds: CopyConditions<'_>,
    ) -> StoreResult<(String, SystemTime)> {
        self.copy_versioned(
            src_bucket, src_key, None, dst_bucket, dst_key, headers, conds,
        )
        .await
        .map(|(w, t)| (w.etag, t))
    }

    async fn copy_versioned(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_version: Option<&str>,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        conds: CopyConditions<'_>,
    ) -> StoreResult<(Written, SystemTime)> {
        let (if_none_match, if_match) = condition_headers(conds.dest);
        let mut source = copy_source(src_bucket, src_key);
        if let Some(v) = src_version {
            source = format!("{source}?versionId={}", versions_s3::encode_query(v));
        }
        let req = self
            .client
            .copy_object()
            .bucket(dst_bucket)
            .copy_source(source)
            .metadata_directive(MetadataDirective::Replace)
            .set_copy_source_if_match(conds.source_etag.map(|m| format!("\"{m}\"")))
            .set_if_none_match(if_none_match)
            .set_if_match(if_match);
        let req = keyed!(apply_headers!(req, headers), dst_key);
        let req = if headers.lock.is_some() {
            // A copy has no body to checksum, but a store may still ask a
            // write to a locked bucket to name an algorithm (moto does).
            req.mutate_request(|r| {
                r.headers_mut()
                    .insert("x-amz-sdk-checksum-algorithm", "CRC32");
            })
        } else {
            req
        };
        let o = self
            .timed_slow(async {
                req.send()
                    .await
                    .map_err(|e| condition_failed(map_err(e), conds.dest))
            })
            .await?;
        if src_version.is_some() && o.copy_source_version_id() != src_version {
            // A store without versioning copied the latest object instead.
            return Err(versions::not_implemented(
                "the store copied without the source version asked",
            ));
        }
        let r = o.copy_object_result();
        Ok((
            Written {
                etag: unquote(r.and_then(|r| r.e_tag())),
                version_id: o.version_id().map(str::to_owned),
            },
            r.map(|r| to_system_time(r.last_modified()))
                .unwrap_or_else(SystemTime::now),
        ))
    }

    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        headers: &ObjectHeaders,
    ) -> StoreResult<String> {
        let req = self.client.create_multipart_upload().bucket(bucket);
        let req = keyed!(apply_headers!(req, headers), key);
        let id = self
            .timed(async {
                match req.send().await {
                    Ok(o) => Ok(o.upload_id().map(str::to_owned)),
                    // rclone serve s3 names the answer's root element
                    // InitiateMultipartUpload (not ...Result), which the SDK
                    // refuses: read the upload id from the answer itself.
                    Err(SdkError::ServiceError(se)) if se.raw().status().is_success() => {
                        match se
                            .raw()
                            .body()
                            .bytes()
                            .and_then(|b| xml_text(b, "UploadId"))
                        {
                            Some(id) => Ok(Some(id)),
                            None => Err(map_err(SdkError::ServiceError(se))),
                        }
                    }
                    Err(e) => Err(map_err(e)),
                }
            })
            .await?;
        id.filter(|id| !id.is_empty())
            .ok_or_else(|| StoreError::new(500, "InternalError", "store returned no upload id"))
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: ByteStream,
        len: u64,
    ) -> StoreResult<String> {
        let progress = std::sync::Arc::new(Progress::new(body));
        let req = self
            .client
            .upload_part()
            .bucket(bucket)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(len as i64)
            .body(exact_body(len, progress.clone()));
        let req = keyed!(req, key);
        let o = self
            .watched(&progress, async { req.send().await.map_err(map_err) })
            .await?;
        Ok(unquote(o.e_tag()))
    }

    async fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src: &PartSource<'_>,
    ) -> StoreResult<String> {
        let PartSource {
            bucket: src_bucket,
            key: src_key,
            range,
            if_match,
        } = *src;
        let req = self
            .client
            .upload_part_copy()
            .bucket(bucket)
            .upload_id(upload_id)
            .part_number(part_number)
            .copy_source(copy_source(src_bucket, src_key))
            .set_copy_source_range(range.map(|(a, b)| format!("bytes={}-{}", a, b - 1)))
            .set_copy_source_if_match(if_match.map(|m| format!("\"{m}\"")));
        let req = keyed!(req, key);
        let o = self
            .timed_slow(async { req.send().await.map_err(map_err) })
            .await?;
        let etag = unquote(o.copy_part_result().and_then(|r| r.e_tag()));
        if etag.is_empty() {
            // rclone serve s3 takes an UploadPartCopy for an UploadPart with
            // an empty body: the part it stored is not the copy.
            return Err(StoreError::new(
                501,
                "NotImplemented",
                "the store did not copy the part (no CopyPartResult in its answer)",
            ));
        }
        Ok(etag)
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String> {
        self.complete_multipart_versioned(bucket, key, upload_id, parts, cond)
            .await
            .map(|w| w.etag)
    }

    async fn complete_multipart_versioned(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let (if_none_match, if_match) = condition_headers(cond);
        let parts = parts
            .iter()
            .map(|(n, e)| {
                CompletedPart::builder()
                    .part_number(*n)
                    .e_tag(format!("\"{e}\""))
                    .build()
            })
            .collect();
        let req = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .upload_id(upload_id)
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        let req = keyed!(req, key);
        self.timed_slow(async {
            match req.send().await {
                Ok(o) => Ok(Written {
                    etag: unquote(o.e_tag()),
                    version_id: o.version_id().map(str::to_owned),
                }),
                // moto names the answer's root element
                // CompleteMultipartUploadResponse (not ...Result), which the
                // SDK refuses: read the ETag from the answer itself (an
                // error answered with 200, as S3 may, is no such answer).
                Err(SdkError::ServiceError(se)) if se.raw().status().is_success() => {
                    let version_id = se
                        .raw()
                        .headers()
                        .get("x-amz-version-id")
                        .map(str::to_owned);
                    match se.raw().body().bytes().and_then(completed_etag) {
                        Some(etag) => Ok(Written { etag, version_id }),
                        None => Err(condition_failed(map_err(SdkError::ServiceError(se)), cond)),
                    }
                }
                Err(e) => Err(condition_failed(map_err(e), cond)),
            }
        })
        .await
    }

    async fn get_bucket_versioning(&self, bucket: &str) -> StoreResult<versions::Versioning> {
        self.timed(self.bucket_versioning(bucket)).await
    }

    async fn put_bucket_versioning(&self, bucket: &str, enabled: bool) -> StoreResult<()> {
        self.timed(self.set_bucket_versioning(bucket, enabled))
            .await
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<versions::Deleted> {
        self.timed(self.delete_one_version(bucket, key, version))
            .await
    }

    async fn delete_many_versions(
        &self,
        bucket: &str,
        keys: &[versions::VersionedKey],
    ) -> StoreResult<
        Vec<(
            versions::VersionedKey,
            Result<versions::Deleted, StoreError>,
        )>,
    > {
        self.delete_versions(bucket, keys).await
    }

    async fn list_versions(
        &self,
        bucket: &str,
        req: &versions::ListVersionsRequest,
    ) -> StoreResult<versions::VersionsPage> {
        self.timed(self.list_versions_page(bucket, req)).await
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        self.timed(async {
            keyed!(
                self.client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .upload_id(upload_id),
                key
            )
            .send()
            .await
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<Vec<PartInfo>> {
        let mut pager = PartsPager::new();
        loop {
            let marker = pager.marker();
            let page = self
                .timed(async {
                    match keyed!(
                        self.client
                            .list_parts()
                            .bucket(bucket)
                            .upload_id(upload_id)
                            .set_part_number_marker(marker),
                        key
                    )
                    .send()
                    .await
                    {
                        Ok(o) => Ok(PartsPage {
                            parts: o
                                .parts()
                                .iter()
                                .map(|p| PartInfo {
                                    part_number: p.part_number().unwrap_or(0),
                                    etag: unquote(p.e_tag()),
                                    size: p.size().unwrap_or(0).max(0) as u64,
                                    last_modified: to_system_time(p.last_modified()),
                                })
                                .collect(),
                            truncated: o.is_truncated() == Some(true),
                            next: o.next_part_number_marker().map(str::to_owned),
                        }),
                        // moto names the answer's root element ListPartsResponse
                        // (not ...Result), which the SDK refuses: read the
                        // parts from the answer itself.
                        Err(SdkError::ServiceError(se)) if se.raw().status().is_success() => {
                            match se.raw().body().bytes().and_then(parts_from_xml) {
                                Some(page) => Ok(page),
                                None => Err(map_err(SdkError::ServiceError(se))),
                            }
                        }
                        Err(e) => Err(map_err(e)),
                    }
                })
                .await?;
            let more = pager
                .take(page.parts, page.truncated, page.next.as_deref())
                .map_err(bad_answer)?;
            if !more {
                return Ok(pager.finish());
            }
        }
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<UploadInfo>> {
        let mut pager = UploadsPager::new();
        loop {
            let (key_marker, id_marker) = pager.markers();
            let o = self
                .timed(async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(bucket)
                        .set_prefix(prefix.map(str::to_owned))
                        .set_key_marker(key_marker)
                        .set_upload_id_marker(id_marker)
                        .send()
                        .await
                        .map_err(map_err)
                })
                .await?;
            let uploads = o.uploads().iter().map(|u| UploadInfo {
                key: u.key().unwrap_or_default().to_owned(),
                upload_id: u.upload_id().unwrap_or_default().to_owned(),
                initiated: to_system_time(u.initiated()),
            });
            let more = pager
                .take(
                    uploads,
                    o.is_truncated() == Some(true),
                    o.next_key_marker(),
                    o.next_upload_id_marker(),
                )
                .map_err(bad_answer)?;
            if !more {
                break;
            }
        }
        if pager.capped() {
            tracing::warn!(
                bucket,
                prefix = prefix.unwrap_or_default(),
                "more than {} uploads in progress: listing the first of them only",
                paging::MAX_UPLOADS
            );
        }
        Ok(pager.finish())
    }
}

#[allow(dead_code)]
fn _assert_stream_send<S: Stream + Send>(_: S) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle_limited(inner: ByteStream, idle: Duration) -> IdleLimited {
        IdleLimited {
            inner,
            idle,
            last: tokio::time::Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
            done: false,
        }
    }

    /// A body whose chunks come more often than the idle limit runs for as
    /// long as it likes (its timer is moved, not fired); one that stops
    /// sending fails once, then ends.
    #[tokio::test]
    async fn idle_limit_counts_from_the_last_chunk() {
        use futures::StreamExt;
        let steady: ByteStream = Box::pin(futures::stream::unfold(0u32, |i| async move {
            if i == 8 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
            Some((Ok(Bytes::from_static(b"x")), i + 1))
        }));
        let got: Vec<_> = idle_limited(steady, Duration::from_millis(150))
            .collect()
            .await;
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|r| r.is_ok()));

        let stalls: ByteStream = Box::pin(
            futures::stream::iter([Ok(Bytes::from_static(b"x"))]).chain(futures::stream::pending()),
        );
        let mut s = idle_limited(stalls, Duration::from_millis(100));
        assert!(matches!(s.next().await, Some(Ok(_))));
        let t = std::time::Instant::now();
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(90));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(s.next().await.is_none());
    }

    #[test]
    fn answers_under_another_root_element_are_read() {
        let xml = concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<ListPartsResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
            "<Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>",
            "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>",
            "<MaxParts>1000</MaxParts><IsTruncated>true</IsTruncated>",
            "<Part><PartNumber>1</PartNumber><LastModified>2026-01-02T03:04:05.000Z</LastModified>",
            r#"<ETag>"83878c91171338902e0fe0fb97a8c47a"</ETag><Size>1</Size></Part>"#,
            "<Part><PartNumber>2</PartNumber><LastModified>2026-01-02T03:04:05.000Z</LastModified>",
            "<ETag>&quot;0123&quot;</ETag><Size>5242880</Size></Part>",
            "</ListPartsResponse>"
        );
        let page = parts_from_xml(xml.as_bytes()).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("2"));
        let got: Vec<(i32, &str, u64)> = page
            .parts
            .iter()
            .map(|p| (p.part_number, p.etag.as_str(), p.size))
            .collect();
        assert_eq!(
            got,
            [
                (1, "83878c91171338902e0fe0fb97a8c47a", 1),
                (2, "0123", 5242880)
            ]
        );
        assert_ne!(page.parts[0].last_modified, SystemTime::UNIX_EPOCH);
        assert!(parts_from_xml(b"<Error><Code>NoSuchUpload</Code></Error>").is_none());
        let completed = concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<CompleteMultipartUploadResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
            "<Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>",
            r#"<ETag>"5e446c8384e1ec6f22e1f7eb17717c61-1"</ETag></CompleteMultipartUploadResponse>"#
        );
        assert_eq!(
            completed_etag(completed.as_bytes()).as_deref(),
            Some("5e446c8384e1ec6f22e1f7eb17717c61-1")
        );
        let error = "<Error><Code>InternalError</Code><Message>CompleteMultipartUpload failed</Message></Error>";
        assert_eq!(completed_etag(error.as_bytes()), None);
        let broken = xml.replace("<Size>1</Size>", "");
        assert!(parts_from_xml(broken.as_bytes()).is_none());
    }
}
