//! The upstream client: sends the vendor requests the mapping engine builds.
//!
//! [`Transport`] is the seam between the engine and the network: [`HttpTransport`] is the real
//! one (pooled hyper-util client, HTTP/1.1 and HTTP/2, TLS through rustls with the webpki
//! roots, a timeout per call, a bound on answer size), and tests script their own.
//!
//! Retries: only a GET whose connection could not be established is tried again (once); no
//! byte of it reached the vendor, so this can neither duplicate nor lose a write. Anything
//! else is answered as it failed: a write is never retried blindly.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A request to a vendor.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    /// Full URL. It may carry a credential (query auth): never log or show it.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

/// A vendor's answer.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came back. Deliberately without the underlying error's text, which may
/// quote the URL (and with it a query credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("the backend could not be reached")]
    Connect,
    #[error("the backend's answer was larger than allowed")]
    TooLarge,
    #[error("the connection to the backend failed")]
    Transport,
}

pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<UpstreamResponse, UpstreamError>> + Send + 'a>>;

/// Sends one vendor request.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_>;
}

/// The real transport.
#[derive(Clone)]
pub struct HttpTransport {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl HttpTransport {
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(https);
        HttpTransport {
            client,
            timeout,
            max_body,
        }
    }

    async fn send_once(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let mut builder = Request::builder()
            .method(request.method.clone())
            .uri(request.url.as_str());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(request.headers.clone());
        }
        let http_request = builder
            .body(Full::new(request.body.clone().unwrap_or_default()))
            .map_err(|_| UpstreamError::Transport)?;
        let exchange = async {
            let response = self.client.request(http_request).await.map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Connect
                } else {
                    UpstreamError::Transport
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        UpstreamError::TooLarge
                    } else {
                        UpstreamError::Transport
                    }
                })?
                .to_bytes();
            Ok(UpstreamResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            match self.send_once(&request).await {
                Err(UpstreamError::Connect) if request.method == Method::GET => {
                    self.send_once(&request).await
                }
                other => other,
            }
        })
    }
}
