//! The mapping engine as a tower [`Service`]: a [`Call`] in, the backend's canonical answer
//! out. It is the innermost stage of the request path; the upstream client sits below it,
//! inside each backend.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::registry::Backends;
use crate::call::{Call, Reply};
use crate::error::Error;

/// Runs calls on the backends they name.
#[derive(Clone)]
pub struct Engine {
    backends: Arc<Backends>,
}

impl Engine {
    pub fn new(backends: Arc<Backends>) -> Engine {
        Engine { backends }
    }
}

impl Service<Call> for Engine {
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Each backend bounds its own work; the engine itself is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let served = self.backends.get(&call.backend);
        Box::pin(async move {
            let Some(served) = served else {
                // The router picked it from the same registry, and reloads keep every name.
                return Err(Error::internal(format!(
                    "backend `{}` is not configured",
                    call.backend
                )));
            };
            let backend = served.backend;
            let run = async {
                match call.credential {
                    Some(credential) => backend.execute_as(&call.request, credential).await,
                    None => backend.execute(&call.request).await,
                }
            };
            let response = match call.trace {
                Some(trace) => super::engine::with_trace(trace, run).await?,
                None => run.await?,
            };
            Ok(Reply::uncached(response))
        })
    }
}
