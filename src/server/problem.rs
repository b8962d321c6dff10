//! The edge where errors become answers: every [`Error`] that reaches it, from any stage,
//! becomes an RFC 9457 `application/problem+json` response here and nowhere else.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};
use tower::{Layer, Service};

use super::request_id::RequestId;
use super::respond::{text, Body};
use crate::error::Error;

/// The problem+json answer of an error: the one place a failure becomes HTTP.
pub fn problem_response(error: &Error, request_id: &str) -> Response<Body> {
    let mut response = text(
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/problem+json",
        problem_body(error, request_id).to_string(),
    );
    if let Some(secs) = error.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The RFC 9457 members, with the canonical code, the backend and what the vendor said.
fn problem_body(error: &Error, request_id: &str) -> Value {
    let mut body = json!({
        "type": format!("/problems/{}", error.code.as_str()),
        "title": error.code.title(),
        "status": error.code.status(),
        "code": error.code.as_str(),
        "detail": error.detail,
        "backend": error.backend,
        "upstream": error.upstream,
        "request_id": request_id,
    });
    if let Some(map) = body.as_object_mut() {
        for (key, value) in &error.extra {
            map.insert((*key).to_string(), value.clone());
        }
    }
    body
}

/// Turns the errors of the stages below into problem answers; above it nothing fails.
#[derive(Clone, Copy, Default)]
pub struct ProblemLayer;

impl<S> Layer<S> for ProblemLayer {
    type Service = ProblemService<S>;

    fn layer(&self, inner: S) -> ProblemService<S> {
        ProblemService {
            inner,
            unready: None,
        }
    }
}

#[derive(Clone)]
pub struct ProblemService<S> {
    inner: S,
    /// A stage below that said it cannot take requests: the next request answers with it.
    unready: Option<Error>,
}

impl<S, B> Service<Request<B>> for ProblemService<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => {
                self.unready = Some(error);
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        if let Some(error) = self.unready.take() {
            let response = problem_response(&error, &request_id);
            return Box::pin(async move { Ok(response) });
        }
        let answer = self.inner.call(req);
        Box::pin(async move {
            Ok(match answer.await {
                Ok(response) => response,
                Err(error) => problem_response(&error, &request_id),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, UpstreamDetail};
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_problem_has_the_rfc9457_members_the_upstream_detail_and_retry_after() {
        let mut error = Error::new(ErrorCode::RateLimited, "slow down").with_backend("b1");
        error.retry_after = Some(7);
        error.upstream = Some(Box::new(UpstreamDetail {
            status: 429,
            code: Some("RequestTooFrequently".into()),
            message: Some("Too many".into()),
        }));
        let response = problem_response(&error.with_extra("hint", json!(1)), "rid");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["type"], "/problems/rate_limited");
        assert_eq!(body["status"], 429);
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(body["backend"], "b1");
        assert_eq!(body["upstream"]["code"], "RequestTooFrequently");
        assert_eq!(body["request_id"], "rid");
        assert_eq!(body["hint"], 1);
    }
}
