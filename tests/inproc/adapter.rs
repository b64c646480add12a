//! aws-sdk-s3's HTTP client, answered in process by an s3s service: the
//! SDK's signed request goes to `S3Service::call` as it would arrive from
//! hyper, and the service's response goes back to the SDK. No socket.
//!
//! Written after `s3s-aws`'s connector (the adapter `s3s-fs`'s in-process
//! tests use), with one difference that makes it usable here: response bodies
//! are fused. The SDK's body type (`SdkBody`) polls a body once more after
//! its end, to look for trailers; hyper never does. s3s's stream bodies,
//! sealgate's among them, may panic when polled after their end (as any
//! `Stream` may), so `s3s-aws`'s adapter cannot read a sealgate GetObject.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_sdk_s3::config::RuntimeComponents;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use s3s::service::S3Service;
use sealgate::server::Frontend;

/// An `HttpClient` for aws-sdk-s3's config that calls an s3s service.
#[derive(Clone)]
pub struct InProcess(pub Target);

/// What answers the requests.
#[derive(Clone)]
pub enum Target {
    /// The s3s service alone.
    Service(S3Service),
    /// The whole S3 front end as `sealgate serve` runs it (request ids,
    /// metrics, the audit log), for requests from `peer`.
    Frontend(Box<Via>),
}

/// A client's way to the front end.
#[derive(Clone)]
pub struct Via {
    pub frontend: Frontend,
    /// The TCP peer the front end sees.
    pub peer: SocketAddr,
    /// An `X-Forwarded-For` added after the client signed (as a proxy does).
    pub forwarded_for: Option<String>,
    /// The `Signature=` of every Authorization header the client sent, to
    /// search logs for.
    pub signatures: Arc<Mutex<Vec<String>>>,
    /// The `x-amz-content-sha256` of every request.
    pub payload_modes: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

impl HttpClient for InProcess {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = self.0.clone();
        HttpConnectorFuture::new(async move {
            let mut req = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            // hyper's server sees the Host header a client sends; the SDK
            // leaves it to its HTTP client.
            if !req.headers().contains_key(http::header::HOST) {
                let uri = req.uri();
                let host = match uri.port_u16() {
                    Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
                    None => uri.host().unwrap_or_default().to_owned(),
                };
                req.headers_mut()
                    .insert(http::header::HOST, host.parse().expect("host header"));
            }
            let head = req.method() == http::Method::HEAD;
            let resp = match target {
                Target::Service(service) => service.call(req.map(s3s::Body::http_body)).await,
                Target::Frontend(via) => {
                    let h = req.headers();
                    if let Some(sig) = h
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split_once("Signature="))
                    {
                        via.signatures.lock().unwrap().push(sig.1.to_owned());
                    }
                    if let Some(m) = h.get("x-amz-content-sha256") {
                        let m = m.to_str().unwrap_or_default().to_owned();
                        via.payload_modes.lock().unwrap().push(m);
                    }
                    if let Some(x) = &via.forwarded_for {
                        req.headers_mut()
                            .append("x-forwarded-for", x.parse().expect("header value"));
                    }
                    via.frontend
                        .handle(req.map(s3s::Body::http_body), Some(via.peer))
                        .await
                }
            }
            .map_err(|e| ConnectorError::other(format!("s3s: {e:?}").into(), None))?;
            // A response to HEAD has no body on the wire (hyper drops it):
            // clients see an error's status only.
            let resp = if head {
                resp.map(|_| s3s::Body::empty())
            } else {
                resp
            };
            resp.map(|b| SdkBody::from_body_1_x(Fused::new(b)))
                .try_into()
                .map_err(|e: aws_smithy_runtime_api::http::HttpError| {
                    ConnectorError::other(e.into(), None)
                })
        })
    }
}

/// A body that answers its end for ever once it has ended, without
/// polling the body inside again.
struct Fused {
    inner: s3s::Body,
    ended: bool,
}

impl Fused {
    fn new(inner: s3s::Body) -> Self {
        Self {
            inner,
            ended: false,
        }
    }
}

impl Body for Fused {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}
