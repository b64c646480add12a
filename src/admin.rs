//! The admin listener: `/health`, `/ready` and `/metrics` on their own port
//! (`server.admin_listen`), off the S3 port. It asks the gateway only what
//! [`AdminView`] offers; the counters behind `/metrics` are in
//! [`crate::metrics`].

use std::sync::Arc;

/// Serves `/health`, `/ready` and `/metrics` on `addr` until the process ends.
pub async fn serve(
    addr: std::net::SocketAddr,
    gateway: Arc<dyn AdminView>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (server.admin_listen): {e}"))?;
    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    Ok(tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let gw = gateway.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let gw = gw.clone();
                        async move {
                            let (status, ctype, body) = match req.uri().path() {
                                "/health" => (200, "text/plain", "ok\n".to_owned()),
                                "/ready" => match gw.ready().await {
                                    Ok(()) => (200, "text/plain", "ready\n".to_owned()),
                                    Err(e) => (503, "text/plain", format!("not ready: {e}\n")),
                                },
                                "/metrics" => (
                                    200,
                                    "text/plain; version=0.0.4",
                                    crate::metrics::global().render(gw.key_stats()),
                                ),
                                _ => (404, "text/plain", "not found\n".to_owned()),
                            };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", ctype)
                                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
            });
        }
    }))
}

/// What the admin listener asks of the gateway.
#[async_trait::async_trait]
pub trait AdminView: Send + Sync + 'static {
    async fn ready(&self) -> Result<(), String>;
    fn key_stats(&self) -> (u64, u64);
}
