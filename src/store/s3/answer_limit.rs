//! Byte bounds on the store's answers, enforced where they arrive: the SDK's
//! HTTP client is wrapped ([`BoundedHttpClient`]) so that every response body
//! fails with [`AnswerTooLong`] once it passes the bound of its request,
//! before the SDK buffers or parses a byte more.
//!
//! - A successful answer the SDK reads whole (listings, CopyObject,
//!   CompleteMultipartUpload and DeleteObjects results, ...):
//!   [`MAX_PARSED_ANSWER`]. A 1,000-key listing with long keys is about
//!   1.5 MB.
//! - An error answer, of any request: [`MAX_ERROR_ANSWER`] (S3 error
//!   documents are a few hundred bytes).
//! - A successful GetObject answer: the length of the range asked, which the
//!   request carries as an [`AnswerLimit`] extension (S3Store sets it on
//!   every GetObject; an unranged GetObject is streamed to a reader that
//!   bounds it itself, and hyper holds the body to its Content-Length).
//!
//! A declared Content-Length over the bound fails at the first read of the
//! body, without waiting for the bytes. Headers are bounded by hyper (at most
//! 100 headers, about 400 KB of head).

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;

/// Most bytes of a successful store answer that the SDK reads whole.
pub const MAX_PARSED_ANSWER: u64 = 16 * 1024 * 1024;

/// Most bytes of an error answer from the store.
pub const MAX_ERROR_ANSWER: u64 = 1024 * 1024;

/// The bound on the body of a successful answer to this request, in place of
/// [`MAX_PARSED_ANSWER`]. A request extension (see
/// `aws_smithy_runtime_api::http::Request::add_extension`); extensions do not
/// survive the SDK's retry rewind, so set it from `mutate_request`, which
/// runs on every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerLimit(pub u64);

/// The store's answer passed its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerTooLong {
    #[error("the store announced a {declared}-byte answer where at most {limit} bytes may come")]
    Declared { declared: u64, limit: u64 },
    #[error("the store sent more than the {limit} bytes its answer may have")]
    Sent { limit: u64 },
}

/// The first error of type `T` in the source chain of `e` (`e` included),
/// looking inside `std::io::Error`s too (whose `source` skips the error they
/// wrap).
pub fn find_cause<'a, T: std::error::Error + 'static>(
    mut e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    loop {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        e = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => inner,
            None => e.source()?,
        };
    }
}

/// The SDK's HTTP client with every answer's body bounded.
#[derive(Debug)]
pub struct BoundedHttpClient {
    inner: SharedHttpClient,
}

impl BoundedHttpClient {
    pub fn new(inner: SharedHttpClient) -> Self {
        Self { inner }
    }
}

impl HttpClient for BoundedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let limit = request
            .extension::<AnswerLimit>()
            .map_or(MAX_PARSED_ANSWER, |l| l.0);
        // An answer to HEAD has no body, whatever its Content-Length says
        // (the object's length): hyper reads none.
        let head = request.method() == "HEAD";
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let answer = answer.await?;
            Ok(if head {
                answer
            } else {
                bound_answer(answer, limit)
            })
        })
    }
}

/// Puts the bound on an answer's body: `success_limit` for a 2xx answer,
/// [`MAX_ERROR_ANSWER`] for any other.
pub fn bound_answer(mut answer: HttpResponse, success_limit: u64) -> HttpResponse {
    let limit = if answer.status().is_success() {
        success_limit
    } else {
        MAX_ERROR_ANSWER
    };
    let declared = answer
        .headers()
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let inner = answer.take_body();
    let early = declared
        .filter(|d| *d > limit)
        .map(|declared| AnswerTooLong::Declared { declared, limit });
    *answer.body_mut() = SdkBody::from_body_1_x(LimitedBody {
        inner: if early.is_some() {
            // Not a byte of it is wanted.
            drop(inner);
            SdkBody::empty()
        } else {
            inner
        },
        left: limit,
        limit,
        failure: early,
        done: false,
    });
    answer
}

/// A body that fails once more than `limit` bytes came through it.
struct LimitedBody {
    inner: SdkBody,
    left: u64,
    limit: u64,
    /// Fails the next read (a declared length over the bound).
    failure: Option<AnswerTooLong>,
    /// Failed: nothing more comes.
    done: bool,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = aws_smithy_runtime_api::box_error::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(e) = this.failure.take() {
            this.done = true;
            return Poll::Ready(Some(Err(Box::new(e))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > this.left {
                    this.done = true;
                    // Drops the connection: the rest of the answer is unread.
                    this.inner = SdkBody::empty();
                    return Poll::Ready(Some(Err(Box::new(AnswerTooLong::Sent {
                        limit: this.limit,
                    }))));
                }
                this.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.failure.is_none() && http_body::Body::is_end_stream(&self.inner))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.failure.is_some() || self.done {
            return http_body::SizeHint::default();
        }
        http_body::Body::size_hint(&self.inner)
    }
}

/// Forbids the SDK's retries of a request whose answer was too long: the
/// store is misbehaving, not busy, and asking again only costs more bytes.
#[derive(Debug, Default)]
pub struct NoRetryOfLongAnswers;

impl ClassifyRetry for NoRetryOfLongAnswers {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if find_cause::<AnswerTooLong>(e).is_some() => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "NoRetryOfLongAnswers"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use http_body_util::BodyExt;

    fn answer(
        status: u16,
        content_length: Option<u64>,
        chunks: Vec<&'static [u8]>,
    ) -> HttpResponse {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from_static(c)))),
        );
        let body = SdkBody::from_body_1_x(http_body_util::StreamBody::new(stream));
        let mut r = HttpResponse::new(StatusCode::try_from(status).unwrap(), body);
        if let Some(n) = content_length {
            r.headers_mut().insert("content-length", n.to_string());
        }
        r
    }

    async fn read(r: HttpResponse) -> Result<Vec<u8>, AnswerTooLong> {
        match r.into_body().collect().await {
            Ok(b) => Ok(b.to_bytes().to_vec()),
            Err(e) => Err(find_cause::<AnswerTooLong>(e.as_ref())
                .cloned()
                .unwrap_or_else(|| panic!("another error: {e}"))),
        }
    }

    #[tokio::test]
    async fn answers_within_the_bound_pass_whole() {
        let r = bound_answer(answer(200, Some(10), vec![b"01234", b"56789"]), 10);
        assert_eq!(read(r).await.unwrap(), b"0123456789");
        let r = bound_answer(answer(206, None, vec![b"0123", b"", b"456789"]), 10);
        assert_eq!(read(r).await.unwrap(), b"0123456789");
        let r = bound_answer(answer(200, Some(0), vec![]), 0);
        assert_eq!(read(r).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn a_body_past_the_bound_fails() {
        // Chunked (no length): cut at the chunk that passes the bound.
        let r = bound_answer(answer(200, None, vec![b"01234", b"56789", b"x"]), 10);
        assert_eq!(read(r).await, Err(AnswerTooLong::Sent { limit: 10 }));
        let r = bound_answer(answer(200, None, vec![b"0123456789x"]), 10);
        assert_eq!(read(r).await, Err(AnswerTooLong::Sent { limit: 10 }));
        // A lying, short Content-Length is no licence for more.
        let r = bound_answer(answer(206, Some(4), vec![b"01234567", b"89ab"]), 10);
        assert_eq!(read(r).await, Err(AnswerTooLong::Sent { limit: 10 }));
    }

    #[tokio::test]
    async fn a_declared_length_past_the_bound_fails_at_once() {
        let r = bound_answer(answer(200, Some(11), vec![b"0"]), 10);
        assert_eq!(
            read(r).await,
            Err(AnswerTooLong::Declared {
                declared: 11,
                limit: 10
            })
        );
    }

    #[tokio::test]
    async fn error_answers_have_their_own_bound() {
        // A 32-byte tail read's error document is not held to 32 bytes...
        let doc: &'static [u8] = &[b'e'; 300];
        let r = bound_answer(answer(404, Some(300), vec![doc]), 32);
        assert_eq!(read(r).await.unwrap().len(), 300);
        // ...nor is a listing's error held to 16 MiB.
        let r = bound_answer(
            answer(500, Some(MAX_ERROR_ANSWER + 1), vec![b"x"]),
            MAX_PARSED_ANSWER,
        );
        assert_eq!(
            read(r).await,
            Err(AnswerTooLong::Declared {
                declared: MAX_ERROR_ANSWER + 1,
                limit: MAX_ERROR_ANSWER
            })
        );
    }

    /// A connector that answers every request with `status`, a declared
    /// length and a body.
    #[derive(Debug)]
    struct Canned(u16, u64, &'static [u8]);

    impl HttpConnector for Canned {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let (status, len, body) = (self.0, self.1, self.2);
            HttpConnectorFuture::new(async move { Ok(answer(status, Some(len), vec![body])) })
        }
    }

    async fn through(
        canned: Canned,
        method: &str,
        limit: Option<u64>,
    ) -> Result<Vec<u8>, AnswerTooLong> {
        let connector = BoundedConnector {
            inner: SharedHttpConnector::new(canned),
        };
        let mut request = HttpRequest::new(SdkBody::empty());
        request.set_method(method).unwrap();
        if let Some(l) = limit {
            request.add_extension(AnswerLimit(l));
        }
        read(connector.call(request).await.unwrap()).await
    }

    #[tokio::test]
    async fn the_connector_takes_the_bound_from_the_request() {
        let body: &'static [u8] = b"0123456789";
        // No bound on the request: the bound of answers the SDK parses.
        assert_eq!(
            through(Canned(200, 10, body), "GET", None).await.unwrap(),
            body
        );
        assert_eq!(
            through(Canned(200, MAX_PARSED_ANSWER + 1, body), "GET", None).await,
            Err(AnswerTooLong::Declared {
                declared: MAX_PARSED_ANSWER + 1,
                limit: MAX_PARSED_ANSWER
            })
        );
        // A GetObject's range.
        assert_eq!(
            through(Canned(206, 10, body), "GET", Some(10))
                .await
                .unwrap(),
            body
        );
        assert_eq!(
            through(Canned(206, 10, body), "GET", Some(9)).await,
            Err(AnswerTooLong::Declared {
                declared: 10,
                limit: 9
            })
        );
        // HEAD: the object's length, and no body.
        assert_eq!(
            through(Canned(200, 1 << 40, b""), "HEAD", None)
                .await
                .unwrap(),
            b""
        );
    }

    #[test]
    fn causes_are_found_down_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] AnswerTooLong);
        let e = Outer(AnswerTooLong::Sent { limit: 3 });
        assert_eq!(
            find_cause::<AnswerTooLong>(&e),
            Some(&AnswerTooLong::Sent { limit: 3 })
        );
        let io = std::io::Error::other("unrelated");
        assert!(find_cause::<AnswerTooLong>(&io).is_none());
    }
}
