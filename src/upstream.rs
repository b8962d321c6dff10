//! The upstream client: sends the vendor requests the mapping engine builds.
//!
//! It is a tower [`Service`] ([`Upstream`]), so what happens on the way to a vendor is a stack
//! of layers like the rest of the request path:
//!
//! ```text
//! retry (a GET that could not connect, once) → timeout (per attempt) → HyperClient
//! ```
//!
//! [`HyperClient`] is a pooled hyper-util client: HTTP/1.1 and HTTP/2, TLS through rustls with
//! the webpki roots, a bound on the answer's size. Tests put a `tower::service_fn` of their
//! own in its place.
//!
//! Retries: only a GET is tried again, once, and only when no answer came back because the
//! connection could not be made or broke (a pooled connection the vendor had closed, say): a
//! read is safe to repeat. Anything else is answered as it failed: a write is never retried
//! blindly, and a timeout is not repeated (the caller's deadline is already spent).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder};

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

/// The upstream client as the engine holds it: any service from vendor request to answer.
pub type Upstream = BoxCloneSyncService<UpstreamRequest, UpstreamResponse, UpstreamError>;

/// The real client stack for one backend: `timeout` bounds each attempt, answers larger than
/// `max_body` bytes fail.
pub fn client(timeout: Duration, max_body: usize) -> Upstream {
    let stack = ServiceBuilder::new()
        .retry(ReadRetry { left: 1 })
        .map_err(timed_out_or_failed)
        .timeout(timeout)
        .service(HyperClient::new(timeout, max_body));
    BoxCloneSyncService::new(stack)
}

/// The error of the timeout layer's stack: the client's own, or the timeout's.
fn timed_out_or_failed(e: BoxError) -> UpstreamError {
    match e.downcast::<UpstreamError>() {
        Ok(e) => *e,
        // The only other error below the timeout layer is the timeout's own.
        Err(_) => UpstreamError::Timeout,
    }
}

/// Sends a GET once more when no answer came back for a reason other than time.
#[derive(Clone)]
struct ReadRetry {
    left: usize,
}

impl tower::retry::Policy<UpstreamRequest, UpstreamResponse, UpstreamError> for ReadRetry {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        request: &mut UpstreamRequest,
        result: &mut Result<UpstreamResponse, UpstreamError>,
    ) -> Option<Self::Future> {
        let unanswered = matches!(
            result,
            Err(UpstreamError::Connect | UpstreamError::Transport)
        );
        if unanswered && request.method == Method::GET && self.left > 0 {
            self.left -= 1;
            Some(std::future::ready(()))
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &UpstreamRequest) -> Option<UpstreamRequest> {
        (request.method == Method::GET).then(|| request.clone())
    }
}

/// One HTTP exchange with a vendor over a pooled connection.
#[derive(Clone)]
pub struct HyperClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    max_body: usize,
}

impl HyperClient {
    pub fn new(connect_timeout: Duration, max_body: usize) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
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
        HyperClient { client, max_body }
    }
}

impl Service<UpstreamRequest> for HyperClient {
    type Response = UpstreamResponse;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamResponse, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        // The pool makes room for each request itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: UpstreamRequest) -> Self::Future {
        let client = self.client.clone();
        let max_body = self.max_body;
        Box::pin(async move {
            let mut builder = Request::builder()
                .method(request.method)
                .uri(request.url.as_str());
            if let Some(headers) = builder.headers_mut() {
                *headers = request.headers;
            }
            let http_request = builder
                .body(Full::new(request.body.unwrap_or_default()))
                .map_err(|_| UpstreamError::Transport)?;
            let response = client.request(http_request).await.map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Connect
                } else {
                    UpstreamError::Transport
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tower::ServiceExt;

    fn counting(
        answer: UpstreamError,
    ) -> (
        impl Service<
                UpstreamRequest,
                Response = UpstreamResponse,
                Error = UpstreamError,
                Future: Send,
            > + Clone,
        Arc<AtomicUsize>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let service = tower::service_fn(move |_req: UpstreamRequest| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Err::<UpstreamResponse, _>(answer) }
        });
        (service, calls)
    }

    fn request(method: Method) -> UpstreamRequest {
        UpstreamRequest {
            method,
            url: "http://127.0.0.1:9/x".into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    #[tokio::test]
    async fn only_an_unanswered_get_is_sent_again_and_only_once() {
        for (method, error, expected) in [
            (Method::GET, UpstreamError::Connect, 2),
            (Method::GET, UpstreamError::Transport, 2),
            (Method::POST, UpstreamError::Connect, 1),
            (Method::PATCH, UpstreamError::Transport, 1),
            (Method::GET, UpstreamError::Timeout, 1),
            (Method::GET, UpstreamError::TooLarge, 1),
        ] {
            let (inner, calls) = counting(error);
            let service = ServiceBuilder::new()
                .retry(ReadRetry { left: 1 })
                .service(inner);
            let result = service.oneshot(request(method.clone())).await;
            assert_eq!(result.unwrap_err(), error);
            assert_eq!(
                calls.load(Ordering::SeqCst),
                expected,
                "{method} failing with {error:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_bounds_each_attempt() {
        let slow = tower::service_fn(|_req: UpstreamRequest| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Err::<UpstreamResponse, _>(UpstreamError::Transport)
        });
        let stack = ServiceBuilder::new()
            .map_err(timed_out_or_failed)
            .timeout(Duration::from_secs(1))
            .service(slow);
        let result = stack.oneshot(request(Method::GET)).await;
        assert_eq!(result.unwrap_err(), UpstreamError::Timeout);
    }
}
