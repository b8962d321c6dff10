//! The body stage: reads the request body whole, up to the configured limit (413 past it),
//! and refuses a body that is not JSON (415). The router then sees `Request<Bytes>`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::error::{Error, ErrorCode};

/// Past the limit, this much more is read and dropped before answering 413, so that a client
/// still sending gets the answer instead of a reset; beyond it the connection is closed.
const DRAIN_MAX: usize = 16 << 20;

#[derive(Clone, Copy)]
pub struct BodyLayer {
    max_bytes: usize,
}

impl BodyLayer {
    pub fn new(max_bytes: usize) -> BodyLayer {
        BodyLayer { max_bytes }
    }
}

impl<S> Layer<S> for BodyLayer {
    type Service = BodyService<S>;

    fn layer(&self, inner: S) -> BodyService<S> {
        BodyService {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

#[derive(Clone)]
pub struct BodyService<S> {
    inner: S,
    max_bytes: usize,
}

impl<S, B> Service<Request<B>> for BodyService<S>
where
    S: Service<Request<Bytes>, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // tower's clone-and-swap: the service polled ready is the one that gets the request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max_bytes = self.max_bytes;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = read_bounded(body, max_bytes).await?;
            if !bytes.is_empty() && !declares_json(&parts.headers) {
                return Err(Error::new(
                    ErrorCode::UnsupportedMediaType,
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            inner.call(Request::from_parts(parts, bytes)).await
        })
    }
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn declares_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| {
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        })
}

/// Reads a body of at most `max` bytes; a larger one is `payload_too_large`.
async fn read_bounded<B>(body: B, max: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::invalid("the request body could not be read"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= max {
            collected.extend_from_slice(&data);
        } else if seen > max + DRAIN_MAX {
            break;
        }
    }
    if seen > max {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {max} bytes"),
        ));
    }
    Ok(collected.freeze())
}
