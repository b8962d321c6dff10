//! Building HTTP answers: JSON and text bodies, and a canonical success with what the cache
//! said about it (`Cache-Status`, `Age`, `ETag`, or a 304).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::call::Reply;

/// Every answer's body: teamgate reads whole vendor answers, so it answers whole bodies.
pub type Body = Full<Bytes>;

/// A canonical success, with the cache's headers when the cache saw it.
pub fn reply(reply: Reply) -> Response<Body> {
    let Reply { response, cache } = reply;
    let not_modified = cache.as_ref().is_some_and(|c| c.not_modified);
    let mut answer = if not_modified {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
        match response.body {
            Some(body) => encoded_json(status, body),
            None => empty(status),
        }
    };
    let headers = answer.headers_mut();
    if response.partial {
        headers.insert(
            "teamgate-partial",
            HeaderValue::from_static("the follow-up read failed; unknown fields are null"),
        );
    }
    if let Some(location) = response
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(http::header::LOCATION, location);
    }
    if let Some(info) = cache {
        headers.insert("cache-status", HeaderValue::from_static(info.status));
        headers.insert(http::header::AGE, HeaderValue::from(info.age_secs));
        if let Some(v) = info.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            headers.insert(http::header::ETAG, v);
        }
    }
    answer
}

/// A JSON body that is already encoded (a canonical answer, possibly from the cache).
fn encoded_json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn json(status: u16, body: &Value) -> Response<Body> {
    text(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        "application/json",
        body.to_string(),
    )
}

pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
