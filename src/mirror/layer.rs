//! The mirror's stage of the request path: it hands a mirrored backend's successful writes
//! (and sampled reads) to its mirror once the backend has answered, and never waits for it.
//!
//! It sits below the read cache (only reads the backend answered are compared) and the
//! idempotency keys (a replayed `POST` is not repeated twice), above the backend guard. A call
//! to a backend without a mirror passes straight through, its future untouched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::Mirrors;
use crate::call::{Call, Reply};
use crate::error::Error;

#[derive(Clone)]
pub struct MirrorLayer {
    mirrors: Arc<Mirrors>,
}

impl MirrorLayer {
    pub fn new(mirrors: Arc<Mirrors>) -> MirrorLayer {
        MirrorLayer { mirrors }
    }
}

impl<S> Layer<S> for MirrorLayer {
    type Service = MirrorService<S>;

    fn layer(&self, inner: S) -> MirrorService<S> {
        MirrorService {
            inner,
            mirrors: self.mirrors.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MirrorService<S> {
    inner: S,
    mirrors: Arc<Mirrors>,
}

type Watched = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

/// The inner future as it is, or wrapped to hand its answer to the mirror.
pub enum MirrorFuture<F> {
    Pass(F),
    Watched(Watched),
}

impl<F> Future for MirrorFuture<F>
where
    F: Future<Output = Result<Reply, Error>> + Unpin,
{
    type Output = Result<Reply, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            MirrorFuture::Pass(f) => Pin::new(f).poll(cx),
            MirrorFuture::Watched(f) => f.as_mut().poll(cx),
        }
    }
}

impl<S> Service<Call> for MirrorService<S>
where
    S: Service<Call, Response = Reply, Error = Error>,
    S::Future: Send + Unpin + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = MirrorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let mirror = match self.mirrors.is_empty() {
            true => None,
            false => self.mirrors.get(&call.backend).cloned(),
        };
        let op = call.request.op;
        let Some(mirror) = mirror.filter(|m| op.is_write() || m.samples(op)) else {
            return MirrorFuture::Pass(self.inner.call(call));
        };
        let request = call.request.clone();
        let answer = self.inner.call(call);
        MirrorFuture::Watched(Box::pin(async move {
            let result = answer.await;
            if let Ok(reply) = &result {
                mirror.observe(request, &reply.response);
            }
            result
        }))
    }
}
