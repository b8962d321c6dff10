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
//! Retries: only a GET (a read, safe to repeat) is tried again, at most twice: when no answer
//! came back because the connection could not be made or broke (a pooled connection the vendor
//! had closed, say), after a short backoff with jitter; and when the vendor said 429 or 503,
//! after its `Retry-After` (seconds or HTTP-date) when that is short, else after the backoff.
//! A long `Retry-After` goes back to the caller, who owns the deadline. Anything else is
//! answered as it failed: a write is never retried blindly, and a timeout is not repeated (the
//! time is already spent).

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
    /// Not sent: the vendor budget (`crate::fleet::budget`) allows no call in time.
    #[error("the backend's vendor budget is spent")]
    OverBudget { retry_after_secs: u64 },
}

/// The upstream client as the engine holds it: any service from vendor request to answer.
pub type Upstream = BoxCloneSyncService<UpstreamRequest, UpstreamResponse, UpstreamError>;

/// The real client stack for one backend: `timeout` bounds each attempt, answers larger than
/// `max_body` bytes fail.
pub fn client(timeout: Duration, max_body: usize) -> Upstream {
    let stack = ServiceBuilder::new()
        .retry(ReadRetry::new())
        .map_err(timed_out_or_failed)
        .timeout(timeout)
        .service(HyperClient::new(timeout, max_body));
    BoxCloneSyncService::new(stack)
}

/// [`client`] with `each_attempt` around every attempt (below the retry, above the
/// per-attempt timeout): the fleet's vendor budget counts each call sent.
pub fn client_through(
    timeout: Duration,
    max_body: usize,
    each_attempt: impl FnOnce(Upstream) -> Upstream,
) -> Upstream {
    let attempt = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_err(timed_out_or_failed)
            .timeout(timeout)
            .service(HyperClient::new(timeout, max_body)),
    );
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .retry(ReadRetry::new())
            .service(each_attempt(attempt)),
    )
}

/// The error of the timeout layer's stack: the client's own, or the timeout's.
fn timed_out_or_failed(e: BoxError) -> UpstreamError {
    match e.downcast::<UpstreamError>() {
        Ok(e) => *e,
        // The only other error below the timeout layer is the timeout's own.
        Err(_) => UpstreamError::Timeout,
    }
}

/// Tries a GET again when it got no answer, or a 429/503 (see the module doc).
#[derive(Clone)]
struct ReadRetry {
    left: u32,
    attempt: u32,
}

/// Retries of one GET at most.
const READ_RETRIES: u32 = 2;
/// The first backoff; doubled each attempt, ±50 % jitter.
const BACKOFF: Duration = Duration::from_millis(50);
/// A vendor's `Retry-After` longer than this is the caller's to wait, not ours.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(2);

impl ReadRetry {
    fn new() -> ReadRetry {
        ReadRetry {
            left: READ_RETRIES,
            attempt: 0,
        }
    }

    fn backoff(&self) -> Duration {
        let jitter: f64 = rand::random_range(0.5..1.5);
        BACKOFF.mul_f64(f64::from(1u32 << self.attempt.min(8)) * jitter)
    }
}

impl tower::retry::Policy<UpstreamRequest, UpstreamResponse, UpstreamError> for ReadRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut UpstreamRequest,
        result: &mut Result<UpstreamResponse, UpstreamError>,
    ) -> Option<Self::Future> {
        if request.method != Method::GET || self.left == 0 {
            return None;
        }
        let wait = match result {
            Err(UpstreamError::Connect | UpstreamError::Transport) => self.backoff(),
            Ok(answer) if matches!(answer.status, 429 | 503) => {
                match retry_after(&answer.headers, std::time::SystemTime::now()) {
                    Some(wait) if wait <= RETRY_AFTER_MAX => wait,
                    Some(_) => return None,
                    None => self.backoff(),
                }
            }
            _ => return None,
        };
        self.left -= 1;
        self.attempt += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &UpstreamRequest) -> Option<UpstreamRequest> {
        (request.method == Method::GET).then(|| request.clone())
    }
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP-date (RFC 9110 §10.2.3) from `now`.
fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::from(now);
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
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

    #[tokio::test(start_paused = true)]
    async fn only_an_unanswered_get_is_sent_again_and_at_most_twice() {
        for (method, error, expected) in [
            (Method::GET, UpstreamError::Connect, 3),
            (Method::GET, UpstreamError::Transport, 3),
            (Method::POST, UpstreamError::Connect, 1),
            (Method::PATCH, UpstreamError::Transport, 1),
            (Method::GET, UpstreamError::Timeout, 1),
            (Method::GET, UpstreamError::TooLarge, 1),
        ] {
            let (inner, calls) = counting(error);
            let service = ServiceBuilder::new().retry(ReadRetry::new()).service(inner);
            let result = service.oneshot(request(method.clone())).await;
            assert_eq!(result.unwrap_err(), error);
            assert_eq!(
                calls.load(Ordering::SeqCst),
                expected,
                "{method} failing with {error:?}"
            );
        }
    }

    /// A vendor answering `status` with `retry_after` twice, then 200; how many calls it got.
    async fn throttled_then_fine(
        method: Method,
        status: u16,
        retry_after: Option<&str>,
    ) -> (u16, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let retry_after = retry_after.map(str::to_string);
        let inner = tower::service_fn(move |_req: UpstreamRequest| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let retry_after = retry_after.clone();
            async move {
                let mut headers = HeaderMap::new();
                if let Some(v) = retry_after.filter(|_| n < 2) {
                    headers.insert(http::header::RETRY_AFTER, v.parse().unwrap());
                }
                Ok::<_, UpstreamError>(UpstreamResponse {
                    status: if n < 2 { status } else { 200 },
                    headers,
                    body: Bytes::new(),
                })
            }
        });
        let service = ServiceBuilder::new().retry(ReadRetry::new()).service(inner);
        let answer = service.oneshot(request(method)).await.unwrap();
        (answer.status, calls.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_read_waits_a_short_retry_after_and_tries_again() {
        assert_eq!(
            throttled_then_fine(Method::GET, 429, Some("1")).await,
            (200, 3)
        );
        assert_eq!(throttled_then_fine(Method::GET, 503, None).await, (200, 3));
        // A long wait is the caller's: the 429 goes back at once.
        assert_eq!(
            throttled_then_fine(Method::GET, 429, Some("60")).await,
            (429, 1)
        );
        // Never a write.
        assert_eq!(
            throttled_then_fine(Method::POST, 503, Some("0")).await,
            (503, 1)
        );
        assert_eq!(throttled_then_fine(Method::GET, 500, None).await, (500, 1));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
            h
        };
        assert_eq!(retry_after(&header("3"), now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&header("Sun, 06 Nov 1994 08:49:39 GMT"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&header("Sun, 06 Nov 1994 08:49:30 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
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
