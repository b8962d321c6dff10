//! The first stage: every request gets an id before anything else can answer it, so a shed,
//! timed-out or failed request answers with one too. The caller's `X-Request-Id` is kept when
//! it is sane; the answer echoes the id.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of a request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The caller's id if it is sane (1..=64 visible ASCII characters), else a new one.
    pub fn of<B>(req: &Request<B>) -> RequestId {
        let id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            // 128 random bits from the thread's generator: no system call per request.
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        RequestId(id)
    }
}

#[derive(Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> RequestIdService<S> {
        RequestIdService { inner }
    }
}

#[derive(Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = RequestId::of(&req);
        let header = HeaderValue::from_str(&id.0).ok();
        req.extensions_mut().insert(id);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(header) = header {
                response.headers_mut().insert(REQUEST_ID_HEADER, header);
            }
            Ok(response)
        })
    }
}
