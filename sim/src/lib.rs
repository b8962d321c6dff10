//! teamgate-sim: in-memory, stateful test doubles of the vendor team APIs.
//!
//! Each vendor lives in its own file and implements [`Vendor`]: a synchronous handler from a
//! fully read [`SimRequest`] to a [`SimResponse`]. This file owns what every simulator shares:
//! the HTTP server, the request log that tests read, injected faults, and the documented set of
//! people ([`people`]) that every simulator starts with.
//!
//! Simulators are used by the tests, the benches and the demo (`config.toml` embeds them), and
//! run standalone with `teamgate sim <vendor> --listen 127.0.0.1:PORT` (with `--fault SPEC`
//! and `--fault-admin` for fault injection, see [`faults`]). They are test doubles,
//! not product: the teamgate library never imports this crate; the `teamgate` binary hands
//! them to the server for the demo by kind ([`new_vendor`], [`KINDS`]). Only this crate and
//! `mappings/` name vendors.

pub mod faults;
pub mod flashcat;
pub mod grafana;
pub mod jsonapi;
pub mod opsgenie;
pub mod pagerduty;
pub mod people;
pub mod squadcast;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use faults::{Fault, FaultPlan};

/// The simulator kinds that [`new_vendor`] can build.
pub const KINDS: &[&str] = &[
    "grafana",
    "flashcat",
    "jsonapi",
    "opsgenie",
    "pagerduty",
    "squadcast",
];

/// Builds the simulator of `kind`, accepting `credential` as the only valid one.
pub fn new_vendor(kind: &str, credential: &str) -> Option<Box<dyn Vendor>> {
    match kind {
        "grafana" => Some(Box::new(grafana::Grafana::new(credential))),
        "flashcat" => Some(Box::new(flashcat::Flashcat::new(credential))),
        "jsonapi" => Some(Box::new(jsonapi::JsonApi::new(credential))),
        "opsgenie" => Some(Box::new(opsgenie::Opsgenie::new(credential))),
        "pagerduty" => Some(Box::new(pagerduty::PagerDuty::new(credential))),
        "squadcast" => Some(Box::new(squadcast::Squadcast::new(credential))),
        _ => None,
    }
}

/// One vendor's behaviour. Handlers are synchronous and run under the simulator's lock, so a
/// simulator is trivially linearizable: every request sees the state the previous one left.
pub trait Vendor: Send + 'static {
    /// The vendor kind, as in [`KINDS`].
    fn kind(&self) -> &'static str;
    /// Answers one request exactly as the vendor's documents say.
    fn handle(&mut self, req: &SimRequest) -> SimResponse;
    /// Turns a vendor-specific behaviour on or off (for example errors inside HTTP 200).
    /// Returns false for a switch this vendor does not have.
    fn set_switch(&mut self, _name: &str, _on: bool) -> bool {
        false
    }
    /// The person with this email leaves the account (a test hook: people one vendor knows and
    /// another does not). Returns false when the vendor cannot do it or knows no such person.
    fn remove_person(&mut self, _email: &str) -> bool {
        false
    }
    /// An error answer of `status` in the vendor's own error shape, `message` where the
    /// vendor's real errors put theirs (injected faults use it: [`Fault::EchoRequest`],
    /// [`Fault::RateLimitedNoRetryAfter`]). The default is Grafana's `{"message": ...}`.
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        SimResponse::json(status, serde_json::json!({ "message": message }))
    }
}

/// A request as the simulator received it, body already read.
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub method: Method,
    /// The path exactly as received, still percent-encoded.
    pub raw_path: String,
    /// `raw_path` split on `/` (leading empty segment dropped), each segment percent-decoded.
    /// An encoded `%2F` stays inside its segment, as on a real router.
    pub segments: Vec<String>,
    /// The query exactly as received, if any.
    pub raw_query: Option<String>,
    /// The query decoded as `application/x-www-form-urlencoded` pairs.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SimRequest {
    /// Builds a request from its parts; used by the server and by unit tests of a vendor.
    pub fn new(method: Method, path_and_query: &str, headers: HeaderMap, body: Bytes) -> Self {
        let (raw_path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path_and_query.to_string(), None),
        };
        let segments = raw_path
            .split('/')
            .skip(1)
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let query = raw_query.as_deref().map(parse_form).unwrap_or_default();
        SimRequest {
            method,
            raw_path,
            segments,
            raw_query,
            query,
            headers,
            body,
        }
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// The body parsed as JSON; `None` when it is empty or not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The path segments as `&str`, for matching with slice patterns.
    pub fn segs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

fn parse_form(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// A simulator's answer.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl SimResponse {
    /// A JSON answer with `Content-Type: application/json`.
    pub fn json(status: u16, body: Value) -> Self {
        Self::typed(status, "application/json", body)
    }

    /// A JSON answer with the given content type (for example `application/vnd.api+json`).
    pub fn typed(status: u16, content_type: &'static str, body: Value) -> Self {
        SimResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            )],
            body: Bytes::from(body.to_string()),
        }
    }

    /// An answer with no body (for example 204).
    pub fn empty(status: u16) -> Self {
        SimResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header; names and values must be valid (they are constants in the simulators).
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// The body parsed as JSON (for unit tests of a vendor).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A request in the simulator's log, as tests read it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    /// The path exactly as received, still percent-encoded.
    pub path: String,
    /// The query exactly as received.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the simulator received it (after the body was read), for tests that measure
    /// rates at the vendor.
    pub received: std::time::Instant,
}

impl LoggedRequest {
    /// The body as JSON, `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    vendor: Mutex<Box<dyn Vendor>>,
    log: Mutex<VecDeque<LoggedRequest>>,
    fault: Mutex<Option<FaultPlan>>,
    /// Whether the admin routes (`/_sim/...`) are served; see [`SimOptions`].
    admin: bool,
}

/// How a simulator is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimOptions {
    /// Serve the admin routes, off by default. With it, `/_sim/...` belongs to the simulator,
    /// never reaches the vendor, is never logged and never faulted:
    ///
    /// - `GET /_sim/fault`: the fault plan in force, as [`FaultPlan::to_json`] writes it;
    /// - `POST /_sim/fault` `{"fault":"latency","ms":2000}`, `{"fault":"status","status":503}`,
    ///   `{"fault":"echo","status":500}`, `{"fault":"none"}`, with optional `"count": n` and
    ///   `"method": "POST"` ([`FaultPlan::from_json`]): sets it, answers the plan now in force;
    /// - `POST /_sim/switch` `{"name":"errors_in_200","on":true}`: flips a vendor switch
    ///   ([`Vendor::set_switch`]); 404 for a switch the vendor does not have.
    ///
    /// Without it, `/_sim/...` is an unknown path of the vendor's (its own 404).
    pub admin: bool,
}

/// Log entries kept at most; older ones are dropped so a long benchmark or a demo under load
/// cannot grow without bound (an entry is about 1 KB: this bounds a simulator's log near
/// 10 MB). Tests read a few hundred at most.
const LOG_CAPACITY: usize = 10_000;

/// A running simulator. Dropping the handle stops its server.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the `base_url` a backend points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received since start or the last [`SimHandle::clear_log`], oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .expect("log lock")
            .iter()
            .cloned()
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.shared.log.lock().expect("log lock").len()
    }

    pub fn clear_log(&self) {
        self.shared.log.lock().expect("log lock").clear();
    }

    /// Injects `fault` into every following request until `set_fault(None)`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.set_fault_plan(fault.map(FaultPlan::always));
    }

    /// Injects `fault` into the next `count` requests only, then answers normally again
    /// ("fail once, then recover"). A count of 0 clears the fault.
    pub fn set_fault_for(&self, fault: Fault, count: u32) {
        self.set_fault_plan((count > 0).then(|| FaultPlan::times(fault, count)));
    }

    /// Sets (or with `None` clears) the fault plan: which fault, how many times, which method.
    pub fn set_fault_plan(&self, plan: Option<FaultPlan>) {
        *self.shared.fault.lock().expect("fault lock") = plan;
    }

    /// The fault plan in force, its count as far as it has run down.
    pub fn fault_plan(&self) -> Option<FaultPlan> {
        self.shared.fault.lock().expect("fault lock").clone()
    }

    /// Turns a vendor switch on or off; false when the vendor has no such switch.
    pub fn set_switch(&self, name: &str, on: bool) -> bool {
        self.shared
            .vendor
            .lock()
            .expect("vendor lock")
            .set_switch(name, on)
    }

    /// The person with `email` leaves this vendor's account ([`Vendor::remove_person`]).
    pub fn remove_person(&self, email: &str) -> bool {
        self.shared
            .vendor
            .lock()
            .expect("vendor lock")
            .remove_person(email)
    }

    /// Sends a request straight to the vendor's handler, bypassing HTTP, the log and faults.
    /// For test set-up (creating fixtures) and unit tests.
    pub fn direct(&self, req: &SimRequest) -> SimResponse {
        self.shared.vendor.lock().expect("vendor lock").handle(req)
    }
}

/// Binds `127.0.0.1:0` and serves `vendor` on it.
pub async fn spawn_local(vendor: Box<dyn Vendor>) -> std::io::Result<SimHandle> {
    spawn_local_with(vendor, SimOptions::default()).await
}

/// Binds `127.0.0.1:0` and serves `vendor` on it with `options`.
pub async fn spawn_local_with(
    vendor: Box<dyn Vendor>,
    options: SimOptions,
) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    spawn_with(vendor, listener, options)
}

/// Serves `vendor` on an already-bound listener until the handle is dropped.
pub fn spawn(vendor: Box<dyn Vendor>, listener: TcpListener) -> std::io::Result<SimHandle> {
    spawn_with(vendor, listener, SimOptions::default())
}

/// Serves `vendor` on an already-bound listener with `options` until the handle is dropped.
/// Dropping the handle also ends every open connection, stalled ones included.
pub fn spawn_with(
    vendor: Box<dyn Vendor>,
    listener: TcpListener,
    options: SimOptions,
) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        vendor: Mutex::new(vendor),
        log: Mutex::new(VecDeque::new()),
        fault: Mutex::new(None),
        admin: options.admin,
    });
    let (stop_tx, mut stop_rx) = watch::channel(());
    let accept_shared = shared.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(_) => continue,
                },
                _ = stop_rx.changed() => return,
            };
            let shared = accept_shared.clone();
            let mut conn_stop = stop_rx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { serve_one(&shared, req).await }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = conn_stop.changed() => {}
                }
            });
        }
    });
    Ok(SimHandle {
        addr,
        shared,
        _stop: stop_tx,
    })
}

/// Bodies larger than this are refused with 413, as a real vendor's front end would.
const MAX_BODY: usize = 1 << 20;

/// An error from the service makes hyper drop the connection without an answer: a reset.
#[derive(Debug, thiserror::Error)]
#[error("injected connection reset")]
struct InjectedReset;

async fn serve_one(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, InjectedReset> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ))
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let version = parts.version;
    let sim_req = SimRequest::new(parts.method, &path_and_query, parts.headers, body);
    if shared.admin && sim_req.segments.first().is_some_and(|s| s == ADMIN_SEGMENT) {
        return Ok(into_response(admin(shared, &sim_req)));
    }
    log_request(shared, &sim_req);

    let fault = {
        let mut plan = shared.fault.lock().expect("fault lock");
        FaultPlan::take(&mut plan, &sim_req.method)
    };
    let vendor = || shared.vendor.lock().expect("vendor lock");
    let answer = match fault {
        None => vendor().handle(&sim_req),
        Some(Fault::Status(status)) => SimResponse::json(
            status,
            serde_json::json!({"message": "injected fault", "status": status}),
        ),
        Some(Fault::MalformedJson) => SimResponse {
            status: StatusCode::OK,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from_static(b"{\"data\": [tru"),
        },
        Some(Fault::RateLimited { retry_after_secs }) => {
            SimResponse::json(429, serde_json::json!({"message": "Too many requests"}))
                .with_header("retry-after", &retry_after_secs.to_string())
        }
        Some(Fault::RateLimitedNoRetryAfter) => vendor().error_body(429, "Too many requests"),
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            vendor().handle(&sim_req)
        }
        Some(Fault::Stall) => {
            // Ends when the client closes the connection (hyper drops this future) or the
            // simulator stops (the connection task is dropped).
            let never: Infallible = std::future::pending().await;
            match never {}
        }
        Some(Fault::Reset) => return Err(InjectedReset),
        Some(Fault::ResetAfterRead) => {
            vendor().handle(&sim_req);
            return Err(InjectedReset);
        }
        Some(Fault::TruncatedJson) => {
            let mut answer = vendor().handle(&sim_req);
            answer.body = answer.body.slice(..answer.body.len() / 2);
            answer
        }
        Some(Fault::EchoRequest { status }) => {
            let echo = faults::echo_text(version, &sim_req);
            vendor().error_body(status, &echo)
        }
    };
    Ok(into_response(answer))
}

fn into_response(answer: SimResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    for (name, value) in answer.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// The first path segment of the admin routes (served only with [`SimOptions::admin`]).
const ADMIN_SEGMENT: &str = "_sim";

/// The admin routes; see [`SimOptions::admin`]. Answers are plain JSON, errors `{"error"}`.
fn admin(shared: &Shared, req: &SimRequest) -> SimResponse {
    let error =
        |status: u16, text: &str| SimResponse::json(status, serde_json::json!({ "error": text }));
    let segs = req.segs();
    let is_post = req.method == Method::POST;
    match segs.as_slice() {
        [_, "fault"] if req.method == Method::GET => {
            let plan = shared.fault.lock().expect("fault lock");
            SimResponse::json(200, FaultPlan::to_json(plan.as_ref()))
        }
        [_, "fault"] if is_post => {
            let Some(body) = req.json() else {
                return error(
                    400,
                    "the body must be JSON, e.g. {\"fault\":\"status\",\"status\":503}",
                );
            };
            match FaultPlan::from_json(&body) {
                Ok(plan) => {
                    let shown = FaultPlan::to_json(plan.as_ref());
                    *shared.fault.lock().expect("fault lock") = plan;
                    SimResponse::json(200, shown)
                }
                Err(text) => error(400, &text),
            }
        }
        [_, "switch"] if is_post => {
            let body = req.json().unwrap_or(Value::Null);
            let (Some(name), Some(on)) = (body["name"].as_str(), body["on"].as_bool()) else {
                return error(400, "expected {\"name\": SWITCH, \"on\": true|false}");
            };
            if shared
                .vendor
                .lock()
                .expect("vendor lock")
                .set_switch(name, on)
            {
                SimResponse::json(200, serde_json::json!({ "name": name, "on": on }))
            } else {
                error(404, &format!("this vendor has no switch {name:?}"))
            }
        }
        [_, "fault"] => error(405, "use GET or POST").with_header("allow", "GET, POST"),
        [_, "switch"] => error(405, "use POST").with_header("allow", "POST"),
        _ => error(404, "admin routes: GET|POST /_sim/fault, POST /_sim/switch"),
    }
}

fn log_request(shared: &Shared, req: &SimRequest) {
    let entry = LoggedRequest {
        method: req.method.to_string(),
        path: req.raw_path.clone(),
        query: req.raw_query.clone(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        received: std::time::Instant::now(),
    };
    let mut log = shared.log.lock().expect("log lock");
    if log.len() >= LOG_CAPACITY {
        log.pop_front();
    }
    log.push_back(entry);
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
