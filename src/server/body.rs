//! The body stage: reads the request body whole, up to the configured limit (413 past it, and
//! at once when a client waiting for `100 Continue` declares more: none is granted), within the
//! body timeout (408), and refuses a body that is not JSON (415). The stages below see
//! `Request<Bytes>`.
//!
//! It runs before the concurrency limit and waits for the stages below to be ready only once
//! the body is in: a client trickling its body holds no concurrency slot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

use crate::error::{Error, ErrorCode};

/// Past the limit, this much more is read and dropped before answering 413, so that a client
/// still sending gets the answer instead of a reset; beyond it the connection is closed.
const DRAIN_MAX: usize = 16 << 20;

#[derive(Clone, Copy)]
pub struct BodyLayer {
    max_bytes: usize,
    timeout: Duration,
}

impl BodyLayer {
    pub fn new(max_bytes: usize, timeout: Duration) -> BodyLayer {
        BodyLayer { max_bytes, timeout }
    }
}

impl<S> Layer<S> for BodyLayer {
    type Service = BodyService<S>;

    fn layer(&self, inner: S) -> BodyService<S> {
        BodyService {
            inner,
            limits: *self,
        }
    }
}

#[derive(Clone)]
pub struct BodyService<S> {
    inner: S,
    limits: BodyLayer,
}

impl<S, B> Service<Request<B>> for BodyService<S>
where
    S: Service<Request<Bytes>, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Ready at once: the stages below are asked only when the body is in (see `call`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let BodyLayer { max_bytes, timeout } = self.limits;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            // A client that waits for `100 Continue` is refused before it sends a byte; one
            // already sending is read (and its excess dropped, up to a bound) so that it gets
            // the answer instead of a reset.
            let declared = declared_length(&parts.headers).unwrap_or(0);
            let waits = expects_continue(&parts.headers);
            if declared > max_bytes as u64 && (waits || declared > (max_bytes + DRAIN_MAX) as u64) {
                return Err(too_large(max_bytes));
            }
            let bytes = tokio::time::timeout(timeout, read_bounded(body, max_bytes))
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "the request body did not arrive within {} ms",
                            timeout.as_millis()
                        ),
                    )
                })??;
            if !bytes.is_empty() && !declares_json(&parts.headers) {
                return Err(Error::new(
                    ErrorCode::UnsupportedMediaType,
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            inner.oneshot(Request::from_parts(parts, bytes)).await
        })
    }
}

/// The body length the client declares.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Expect: 100-continue`: the client sends the body only once told to.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

fn too_large(max: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {max} bytes"),
    )
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
        return Err(too_large(max));
    }
    Ok(collected.freeze())
}
