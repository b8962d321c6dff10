//! Injected faults: what a simulator does instead of, or besides, answering as the vendor.
//!
//! A [`Fault`] says what goes wrong; a [`FaultPlan`] says to which requests it applies (all,
//! or only the next `n`, optionally only those of one method). The server (`lib.rs`) takes the
//! plan's fault for each vendor request, after logging it. Plans are set from tests
//! ([`crate::SimHandle::set_fault`], [`crate::SimHandle::set_fault_for`],
//! [`crate::SimHandle::set_fault_plan`]), from the command line (`teamgate sim <vendor> --fault
//! SPEC`, see [`FaultPlan::parse_spec`]) and, when enabled, from the admin route
//! `POST /_sim/fault` (JSON, see [`FaultPlan::from_json`]), so the same faults drive the tests
//! and manual checks.
//!
//! Whether the vendor acts on a faulted request is part of each fault's contract:
//!
//! | fault | the vendor acts | the client sees |
//! |---|---|---|
//! | `Status`, `MalformedJson`, `RateLimited`, `RateLimitedNoRetryAfter`, `EchoRequest` | no | that answer |
//! | `Latency` | yes, after the delay | the vendor's answer, late |
//! | `Stall` | no | nothing, until it gives up or the simulator stops |
//! | `Reset` | no | the connection closed without an answer |
//! | `ResetAfterRead` | **yes** | the connection closed without an answer |
//! | `TruncatedJson` | **yes** | the vendor's answer, its body cut in half |
//!
//! Errors inside HTTP 200: Flashcat's documented quirk is its vendor switch `errors_in_200`
//! ([`crate::SimHandle::set_switch`], `POST /_sim/switch`, `teamgate sim flashcat --switch
//! errors_in_200`): every Flashcat error, injected ones included, then comes with HTTP 200. On
//! any vendor, `EchoRequest { status: 200 }` is the vendor's error body inside an HTTP 200.

use std::time::Duration;

use http::{Method, Version};
use serde_json::{json, Map, Value};

use crate::SimRequest;

/// What goes wrong with a request. See the module doc for which faults let the vendor act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a generic JSON body (`{"message","status"}`), whatever the vendor.
    Status(u16),
    /// Answer 200 `application/json` with a body that is not JSON.
    MalformedJson,
    /// Answer 429 with `Retry-After: secs` and a generic JSON body.
    RateLimited { retry_after_secs: u64 },
    /// Answer 429 in the vendor's own error shape ([`crate::Vendor::error_body`]), without
    /// `Retry-After` (most of these vendors document none).
    RateLimitedNoRetryAfter,
    /// Wait this long, then answer normally (the vendor state does change).
    Latency(Duration),
    /// Never answer: the request is read and logged, then the connection stays open, silent,
    /// until the client gives up or the simulator is stopped (its handle dropped).
    Stall,
    /// Close the connection without answering; the vendor never acts on the request (a reset
    /// "before reading": the answer is lost and nothing happened).
    Reset,
    /// Apply the request to the vendor, then close the connection without answering: the
    /// realistic lost answer, where the vendor DID act (a write happened) and the client cannot
    /// know it.
    ResetAfterRead,
    /// Apply the request to the vendor and send its answer with the same status and headers
    /// (the right content type), but the body cut to its first half: JSON that does not parse.
    /// An answer without a body (204) stays empty.
    TruncatedJson,
    /// Answer `status` with an error in the vendor's own shape ([`crate::Vendor::error_body`])
    /// whose message quotes the request line and every header, as a WAF or a proxy in front of
    /// the vendor would. The vendor does not act. With a 200, it is an error inside HTTP 200.
    EchoRequest { status: u16 },
}

impl Fault {
    /// The name used in specs, JSON and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Status(_) => "status",
            Fault::MalformedJson => "malformed_json",
            Fault::RateLimited { .. } | Fault::RateLimitedNoRetryAfter => "rate_limited",
            Fault::Latency(_) => "latency",
            Fault::Stall => "stall",
            Fault::Reset => "reset",
            Fault::ResetAfterRead => "reset_after_read",
            Fault::TruncatedJson => "truncated_json",
            Fault::EchoRequest { .. } => "echo",
        }
    }
}

/// A fault and the requests it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    pub fault: Fault,
    /// How many more matching requests it applies to; `None`: every one until cleared. The plan
    /// is cleared when this reaches zero.
    pub remaining: Option<u32>,
    /// Only requests of this method (for example `POST`, to fail a create and not the reads
    /// around it); `None`: every method. Requests of another method pass and do not count.
    pub method: Option<Method>,
    /// How many matching requests still pass untouched before the fault starts ("fail from
    /// the n-th request on": a run interrupted halfway).
    pub after: u32,
}

/// Admin and command-line limits: a latency beyond an hour is a typo, not a test.
const MAX_LATENCY_MS: u64 = 3_600_000;

impl FaultPlan {
    /// `fault` on every request until cleared.
    pub fn always(fault: Fault) -> Self {
        FaultPlan {
            fault,
            remaining: None,
            method: None,
            after: 0,
        }
    }

    /// `fault` on the next `count` requests only.
    pub fn times(fault: Fault, count: u32) -> Self {
        FaultPlan {
            fault,
            remaining: Some(count),
            method: None,
            after: 0,
        }
    }

    /// The same plan, applied only to requests of `method`.
    pub fn only(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// The same plan, starting only after `count` matching requests have passed.
    pub fn after(mut self, count: u32) -> Self {
        self.after = count;
        self
    }

    /// The fault for a request of `method` under the plan in `slot`, counting it down (and
    /// clearing the slot when the count is spent).
    pub(crate) fn take(slot: &mut Option<FaultPlan>, method: &Method) -> Option<Fault> {
        let plan = slot.as_mut()?;
        if plan.method.as_ref().is_some_and(|m| m != method) {
            return None;
        }
        if plan.after > 0 {
            plan.after -= 1;
            return None;
        }
        let fault = plan.fault.clone();
        if let Some(left) = plan.remaining.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                *slot = None;
            }
        }
        Some(fault)
    }

    /// The plan as the admin route shows it; `None` is `{"fault":"none"}`.
    pub fn to_json(plan: Option<&FaultPlan>) -> Value {
        let Some(plan) = plan else {
            return json!({"fault": "none"});
        };
        let mut out = Map::new();
        out.insert("fault".into(), json!(plan.fault.name()));
        match &plan.fault {
            Fault::Status(status) | Fault::EchoRequest { status } => {
                out.insert("status".into(), json!(status));
            }
            Fault::RateLimited { retry_after_secs } => {
                out.insert("retry_after".into(), json!(retry_after_secs));
            }
            Fault::Latency(delay) => {
                out.insert(
                    "ms".into(),
                    json!(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
                );
            }
            _ => {}
        }
        out.insert("count".into(), json!(plan.remaining));
        out.insert(
            "method".into(),
            json!(plan.method.as_ref().map(Method::as_str)),
        );
        Value::Object(out)
    }

    /// Reads the admin route's JSON: `{"fault": NAME, ...parameters, "count"?: n, "method"?: M}`.
    /// `Ok(None)` is `{"fault":"none"}` (clear). Names (`-` and `_` alike):
    ///
    /// - `none`; `stall`; `reset`; `reset_after_read`; `truncated_json`; `malformed_json`;
    /// - `status` with `status` (200..=599);
    /// - `echo` with `status` (default 500; 200 makes it an error inside HTTP 200);
    /// - `rate_limited` with `retry_after` (seconds; without it: no `Retry-After`, the
    ///   vendor's error shape);
    /// - `latency` with `ms`.
    ///
    /// Unknown names, unknown keys and out-of-range values are errors.
    pub fn from_json(value: &Value) -> Result<Option<FaultPlan>, String> {
        let Value::Object(map) = value else {
            return Err(
                "expected a JSON object such as {\"fault\":\"status\",\"status\":503}".into(),
            );
        };
        let name = map
            .get("fault")
            .and_then(Value::as_str)
            .ok_or("`fault` (a string) is required")?
            .to_ascii_lowercase()
            .replace('-', "_");
        let allowed: &[&str] = match name.as_str() {
            "status" | "echo" | "echo_request" => &["status"],
            "rate_limited" => &["retry_after"],
            "latency" => &["ms"],
            _ => &[],
        };
        for key in map.keys() {
            let general = matches!(key.as_str(), "fault" | "count" | "method");
            if !general && !allowed.contains(&key.as_str()) {
                return Err(format!("unknown key `{key}` for fault `{name}`"));
            }
        }
        let number = |key: &str| -> Result<Option<u64>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
            }
        };
        let status = |default: Option<u16>| -> Result<u16, String> {
            match number("status")? {
                Some(s @ 200..=599) => Ok(s as u16),
                Some(s) => Err(format!("`status` {s} is not in 200..=599")),
                None => default.ok_or_else(|| "`status` is required".to_string()),
            }
        };
        let fault = match name.as_str() {
            "none" => return Ok(None),
            "status" => Fault::Status(status(None)?),
            "echo" | "echo_request" => Fault::EchoRequest {
                status: status(Some(500))?,
            },
            "malformed_json" | "malformed" => Fault::MalformedJson,
            "truncated_json" | "truncated" => Fault::TruncatedJson,
            "rate_limited" => match number("retry_after")? {
                Some(retry_after_secs) => Fault::RateLimited { retry_after_secs },
                None => Fault::RateLimitedNoRetryAfter,
            },
            "latency" => match number("ms")? {
                Some(ms) if ms <= MAX_LATENCY_MS => Fault::Latency(Duration::from_millis(ms)),
                Some(ms) => return Err(format!("`ms` {ms} is more than {MAX_LATENCY_MS}")),
                None => return Err("`ms` is required".into()),
            },
            "stall" => Fault::Stall,
            "reset" => Fault::Reset,
            "reset_after_read" => Fault::ResetAfterRead,
            other => return Err(format!("unknown fault `{other}` (known: {FAULT_NAMES})")),
        };
        let remaining = match number("count")? {
            None => None,
            Some(0) => return Err("`count` must be at least 1".into()),
            Some(n) => Some(u32::try_from(n).map_err(|_| "`count` is too large".to_string())?),
        };
        let method = match map.get("method") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("`method` {m:?} is not an HTTP method"))?,
            ),
            Some(_) => return Err("`method` must be a string".into()),
        };
        Ok(Some(FaultPlan {
            fault,
            remaining,
            method,
            after: 0,
        }))
    }

    /// Reads a command-line spec: `NAME[=VALUE][,KEY=VALUE...]`. `VALUE` is the fault's one
    /// parameter (`status=503`, `echo=500`, `latency=2000` in ms, `rate-limited=7` in seconds);
    /// the keys are those of [`FaultPlan::from_json`] (`count`, `method`, `ms`, ...). Examples:
    /// `stall`, `reset-after-read,count=1,method=POST`, `rate-limited` (no `Retry-After`).
    pub fn parse_spec(spec: &str) -> Result<Option<FaultPlan>, String> {
        let mut items = spec.split(',').map(str::trim);
        let first = items.next().unwrap_or("");
        let (name, value) = match first.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (first, None),
        };
        let name = name.to_ascii_lowercase().replace('-', "_");
        let mut map = Map::new();
        map.insert("fault".into(), json!(name));
        if let Some(value) = value {
            let key = match name.as_str() {
                "status" | "echo" | "echo_request" => "status",
                "latency" => "ms",
                "rate_limited" => "retry_after",
                _ => return Err(format!("fault `{name}` takes no value (`{first}`)")),
            };
            map.insert(key.into(), spec_value(value));
        }
        for item in items.filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected KEY=VALUE, got `{item}`"))?;
            map.insert(key.trim().replace('-', "_"), spec_value(value.trim()));
        }
        Self::from_json(&Value::Object(map))
    }
}

/// The fault names [`FaultPlan::from_json`] knows, for error messages.
pub const FAULT_NAMES: &str = "none, status, echo, malformed_json, truncated_json, rate_limited, \
                               latency, stall, reset, reset_after_read";

/// A spec value as JSON: a number when it is one, text otherwise.
fn spec_value(text: &str) -> Value {
    text.parse::<u64>()
        .map_or_else(|_| json!(text), |n| json!(n))
}

/// The request as a WAF or proxy echoes it: the request line, then every header, each line
/// ended by CRLF, exactly as received (credentials included: that is the point).
pub(crate) fn echo_text(version: Version, req: &SimRequest) -> String {
    let mut text = format!("{} {}", req.method, req.raw_path);
    if let Some(query) = &req.raw_query {
        text.push('?');
        text.push_str(query);
    }
    text.push_str(&format!(" {version:?}\r\n"));
    for (name, value) in &req.headers {
        text.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_vendor, spawn_local_with, SimHandle, SimOptions, KINDS};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    const CREDENTIAL: &str = "sim-fault-credential-7c1d";
    /// Every wait of these tests is bounded by this.
    const BOUND: Duration = Duration::from_secs(5);

    /// An answer as read off the wire.
    #[derive(Debug)]
    struct Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Raw {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }

        fn json(&self) -> Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Writes one HTTP/1.1 request (`Connection: close`) and reads until the simulator closes.
    /// `None`: the connection closed without a byte of answer.
    async fn exchange(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<Raw> {
        let mut stream = connect_and_send(addr, method, target, headers, body).await;
        let mut buf = Vec::new();
        let read = timeout(BOUND, stream.read_to_end(&mut buf))
            .await
            .expect("the simulator answers or closes within the bound");
        // A reset may surface as ECONNRESET rather than a clean end of stream.
        if read.is_err() && buf.is_empty() {
            return None;
        }
        parse(&buf)
    }

    async fn connect_and_send(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> TcpStream {
        let mut stream = timeout(BOUND, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        stream.write_all(head.as_bytes()).await.expect("send");
        stream
    }

    fn parse(buf: &[u8]) -> Option<Raw> {
        if buf.is_empty() {
            return None;
        }
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Raw {
            status,
            headers,
            body: buf[split + 4..].to_vec(),
        })
    }

    async fn sim(kind: &str, admin: bool) -> SimHandle {
        let vendor = new_vendor(kind, CREDENTIAL).expect("known kind");
        spawn_local_with(vendor, SimOptions { admin })
            .await
            .expect("simulator starts")
    }

    /// Headers that get a request past the vendor's authentication and content-type checks
    /// (Flashcat's `app_key` goes in the query, see [`authed_target`]).
    fn auth_headers(kind: &str) -> Vec<(&'static str, String)> {
        let (authorization, content_type) = match kind {
            "opsgenie" => (format!("GenieKey {CREDENTIAL}"), "application/json"),
            "pagerduty" => (format!("Token token={CREDENTIAL}"), "application/json"),
            "jsonapi" => (format!("Bearer {CREDENTIAL}"), "application/vnd.api+json"),
            _ => (format!("Bearer {CREDENTIAL}"), "application/json"),
        };
        vec![
            ("authorization", authorization),
            ("content-type", content_type.to_string()),
        ]
    }

    fn authed_target(kind: &str, path: &str) -> String {
        if kind == "flashcat" {
            format!("{path}?app_key={CREDENTIAL}")
        } else {
            path.to_string()
        }
    }

    fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// The message of an error answer, read where the vendor's real errors put it, after
    /// checking the rest of the vendor's error shape.
    fn vendor_message(kind: &str, status: u16, raw: &Raw) -> String {
        let body = raw.json();
        let text = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("{kind}: no message in {body}"))
                .to_string()
        };
        match kind {
            "grafana" => text(&body["message"]),
            "opsgenie" => {
                assert!(body["took"].is_number(), "{body}");
                assert!(body["requestId"].is_string(), "{body}");
                text(&body["message"])
            }
            "pagerduty" => {
                let code = body["error"]["code"].as_u64().expect("an integer code");
                assert_eq!(code, u64::from(crate::pagerduty::code_for_status(status)));
                text(&body["error"]["message"])
            }
            "squadcast" => {
                assert_eq!(body["meta"]["status"], json!(status), "{body}");
                text(&body["meta"]["error_message"])
            }
            "jsonapi" => {
                let error = &body["errors"][0];
                assert_eq!(error["status"], json!(status.to_string()), "{body}");
                assert!(error["title"].is_string(), "{body}");
                assert_eq!(raw.header("content-type"), Some("application/vnd.api+json"));
                text(&error["detail"])
            }
            "flashcat" => {
                assert!(body["request_id"].is_string(), "{body}");
                assert!(body["error"]["code"].is_string(), "{body}");
                assert!(raw.header("flashcat-request-id").is_some());
                text(&body["error"]["message"])
            }
            other => panic!("unknown kind {other}"),
        }
    }

    #[test]
    fn plans_read_from_json_and_from_command_line_specs() {
        let cases = [
            (json!({"fault":"latency","ms":2000}), "latency=2000"),
            (json!({"fault":"status","status":503}), "status=503"),
            (json!({"fault":"echo","status":500}), "echo=500"),
            (
                json!({"fault":"rate_limited","retry_after":7}),
                "rate-limited=7",
            ),
            (json!({"fault":"rate_limited"}), "rate_limited"),
            (json!({"fault":"stall"}), "stall"),
            (json!({"fault":"reset"}), "reset"),
            (json!({"fault":"truncated_json"}), "truncated-json"),
            (json!({"fault":"malformed_json"}), "malformed-json"),
            (
                json!({"fault":"reset_after_read","count":1,"method":"post"}),
                "reset-after-read,count=1,method=POST",
            ),
        ];
        for (body, spec) in cases {
            let from_json = FaultPlan::from_json(&body).unwrap();
            let from_spec = FaultPlan::parse_spec(spec).unwrap();
            assert_eq!(from_json, from_spec, "{body} vs {spec}");
            let plan = from_json.expect("a fault");
            // What the admin route shows reads back as the same plan.
            let shown = FaultPlan::to_json(Some(&plan));
            assert_eq!(FaultPlan::from_json(&shown).unwrap(), Some(plan), "{shown}");
        }
        assert_eq!(
            FaultPlan::parse_spec("latency=250").unwrap().unwrap().fault,
            Fault::Latency(Duration::from_millis(250))
        );
        assert_eq!(
            FaultPlan::parse_spec("echo").unwrap().unwrap().fault,
            Fault::EchoRequest { status: 500 }
        );
        assert_eq!(
            FaultPlan::parse_spec("rate-limited")
                .unwrap()
                .unwrap()
                .fault,
            Fault::RateLimitedNoRetryAfter
        );
        let plan = FaultPlan::parse_spec("status=502,count=3,method=get")
            .unwrap()
            .unwrap();
        assert_eq!(
            plan,
            FaultPlan::times(Fault::Status(502), 3).only(Method::GET)
        );
        assert_eq!(
            FaultPlan::from_json(&json!({"fault":"none"})).unwrap(),
            None
        );
        assert_eq!(FaultPlan::parse_spec("none").unwrap(), None);
        assert_eq!(FaultPlan::to_json(None), json!({"fault":"none"}));
        for bad in [
            json!({"fault":"explode"}),
            json!({"fault":"status"}),
            json!({"fault":"status","status":99}),
            json!({"fault":"status","status":"503"}),
            json!({"fault":"latency"}),
            json!({"fault":"latency","ms":3_600_001}),
            json!({"fault":"stall","ms":5}),
            json!({"fault":"reset","count":0}),
            json!({"fault":"reset","method":"NOT A METHOD"}),
            json!({"status":503}),
            json!("status"),
        ] {
            assert!(FaultPlan::from_json(&bad).is_err(), "{bad} accepted");
        }
        for bad in [
            "stall=5",
            "status=abc",
            "status=503,count",
            "latency=1,color=red",
            "",
        ] {
            assert!(FaultPlan::parse_spec(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_plan_counts_down_only_the_requests_it_applies_to() {
        let mut slot = Some(FaultPlan::times(Fault::Reset, 2).only(Method::POST));
        assert_eq!(FaultPlan::take(&mut slot, &Method::GET), None);
        assert_eq!(
            slot.as_ref().unwrap().remaining,
            Some(2),
            "a GET does not count"
        );
        assert_eq!(
            FaultPlan::take(&mut slot, &Method::POST),
            Some(Fault::Reset)
        );
        assert_eq!(
            FaultPlan::take(&mut slot, &Method::POST),
            Some(Fault::Reset)
        );
        assert_eq!(slot, None, "spent");
        assert_eq!(FaultPlan::take(&mut slot, &Method::POST), None);
        let mut always = Some(FaultPlan::always(Fault::Stall));
        for _ in 0..3 {
            assert_eq!(
                FaultPlan::take(&mut always, &Method::GET),
                Some(Fault::Stall)
            );
        }
        assert!(always.is_some());
    }

    #[tokio::test]
    async fn stall_never_answers_and_ends_with_the_simulator() {
        let handle = sim("grafana", false).await;
        handle.set_fault(Some(Fault::Stall));
        let mut stream = connect_and_send(handle.addr(), "GET", "/api/teams/search", &[], "").await;
        let started = Instant::now();
        let mut buf = Vec::new();
        // The client gives up after its own bound: nothing arrived.
        let waited = timeout(Duration::from_millis(300), stream.read_to_end(&mut buf)).await;
        assert!(waited.is_err(), "a stalled request was answered: {buf:?}");
        assert!(buf.is_empty());
        assert!(started.elapsed() < BOUND);
        assert_eq!(handle.request_count(), 1, "the request was read and logged");
        // Stopping the simulator ends the stalled connection.
        drop(handle);
        let ended = timeout(BOUND, stream.read_to_end(&mut buf)).await;
        assert!(ended.is_ok(), "the connection outlived the simulator");
        assert!(buf.is_empty(), "no answer, even at the end: {buf:?}");
    }

    #[tokio::test]
    async fn a_stalled_connection_ends_when_the_client_gives_up() {
        let handle = sim("grafana", false).await;
        handle.set_fault(Some(Fault::Stall));
        // The handle and the accept loop hold the shared state; each open connection and each
        // request in flight holds it too.
        let idle = Arc::strong_count(&handle.shared);
        let stream = connect_and_send(handle.addr(), "GET", "/api/teams/search", &[], "").await;
        let deadline = Instant::now() + BOUND;
        while handle.request_count() == 0 {
            assert!(Instant::now() < deadline, "the request never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            Arc::strong_count(&handle.shared) > idle,
            "stalled in flight"
        );
        drop(stream);
        while Arc::strong_count(&handle.shared) > idle {
            assert!(
                Instant::now() < deadline,
                "the stalled request outlived its client"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn reset_after_read_acts_on_the_vendor_but_never_answers() {
        let handle = sim("grafana", false).await;
        let auth = auth_headers("grafana");
        let headers = borrowed(&auth);
        let search = |name: &str| {
            let req = SimRequest::new(
                Method::GET,
                &format!("/api/teams/search?name={name}"),
                http::HeaderMap::from_iter([(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_str(&format!("Bearer {CREDENTIAL}")).unwrap(),
                )]),
                bytes::Bytes::new(),
            );
            handle.direct(&req).json_body()["totalCount"]
                .as_u64()
                .unwrap()
        };

        handle.set_fault(Some(Fault::ResetAfterRead));
        let answer = exchange(
            handle.addr(),
            "POST",
            "/api/teams",
            &headers,
            r#"{"name":"Lost"}"#,
        )
        .await;
        assert!(answer.is_none(), "answered: {answer:?}");
        assert_eq!(search("Lost"), 1, "the vendor acted: the team exists");

        // `Reset` is the other case: nothing happened.
        handle.set_fault(Some(Fault::Reset));
        let answer = exchange(
            handle.addr(),
            "POST",
            "/api/teams",
            &headers,
            r#"{"name":"Never"}"#,
        )
        .await;
        assert!(answer.is_none(), "answered: {answer:?}");
        assert_eq!(search("Never"), 0, "the vendor never saw it");
        assert_eq!(handle.request_count(), 2, "both were read and logged");
    }

    #[tokio::test]
    async fn truncated_json_is_the_real_answer_cut_in_half() {
        for kind in KINDS {
            let handle = sim(kind, false).await;
            let auth = auth_headers(kind);
            let headers = borrowed(&auth);
            let (method, path, body) = match *kind {
                "grafana" => ("GET", "/api/org/users", ""),
                "opsgenie" => ("GET", "/v2/users", ""),
                "pagerduty" => ("GET", "/users", ""),
                "squadcast" => ("GET", "/v3/oauth/access-token", ""),
                "jsonapi" => ("GET", "/api/v1/users", ""),
                _ => ("POST", "/member/list", "{}"),
            };
            let mut headers = headers.clone();
            headers.push(("x-refresh-token", CREDENTIAL));
            let target = authed_target(kind, path);
            let full = exchange(handle.addr(), method, &target, &headers, body)
                .await
                .expect("answered");
            assert_eq!(full.status, 200, "{kind}: {}", full.text());
            full.json();

            handle.set_fault(Some(Fault::TruncatedJson));
            let cut = exchange(handle.addr(), method, &target, &headers, body)
                .await
                .expect("answered");
            assert_eq!(cut.status, 200, "{kind}");
            assert_eq!(cut.header("content-type"), full.header("content-type"));
            assert!(!cut.body.is_empty(), "{kind}");
            assert!(
                serde_json::from_slice::<Value>(&cut.body).is_err(),
                "{kind}: {}",
                cut.text()
            );
            // The same answer, cut: compare the part before any per-request field.
            let same = full.body.len().abs_diff(cut.body.len() * 2) <= 1;
            assert!(
                same,
                "{kind}: {} of {} bytes",
                cut.body.len(),
                full.body.len()
            );
            if *kind == "grafana" || *kind == "jsonapi" {
                assert!(full.body.starts_with(&cut.body), "{kind}: {}", cut.text());
            }
        }
    }

    #[tokio::test]
    async fn truncated_json_lets_the_vendor_act() {
        let handle = sim("grafana", false).await;
        let auth = auth_headers("grafana");
        handle.set_fault_for(Fault::TruncatedJson, 1);
        let cut = exchange(
            handle.addr(),
            "POST",
            "/api/teams",
            &borrowed(&auth),
            r#"{"name":"Half"}"#,
        )
        .await
        .expect("answered");
        assert_eq!(cut.status, 200);
        assert!(serde_json::from_slice::<Value>(&cut.body).is_err());
        let list = exchange(
            handle.addr(),
            "GET",
            "/api/teams/search?name=Half",
            &borrowed(&auth),
            "",
        )
        .await
        .expect("answered");
        assert_eq!(list.json()["totalCount"], json!(1), "{}", list.text());
    }

    #[tokio::test]
    async fn rate_limited_with_and_without_retry_after() {
        for kind in KINDS {
            let handle = sim(kind, false).await;
            handle.set_fault(Some(Fault::RateLimitedNoRetryAfter));
            let raw = exchange(handle.addr(), "GET", "/anything", &[], "")
                .await
                .expect("answered");
            assert_eq!(raw.status, 429, "{kind}");
            assert_eq!(raw.header("retry-after"), None, "{kind}");
            let message = vendor_message(kind, 429, &raw);
            assert!(message.contains("Too many requests"), "{kind}: {message}");

            handle.set_fault(Some(Fault::RateLimited {
                retry_after_secs: 7,
            }));
            let raw = exchange(handle.addr(), "GET", "/anything", &[], "")
                .await
                .expect("answered");
            assert_eq!(raw.status, 429, "{kind}");
            assert_eq!(raw.header("retry-after"), Some("7"), "{kind}");
        }
    }

    #[tokio::test]
    async fn echo_quotes_the_request_line_and_headers_in_each_vendors_error_shape() {
        let secret = "Bearer echo-s3cret-abcdef";
        for kind in KINDS {
            let handle = sim(kind, false).await;
            for status in [500, 503, 403] {
                handle.set_fault(Some(Fault::EchoRequest { status }));
                let raw = exchange(
                    handle.addr(),
                    "POST",
                    "/v3/teams?app_key=k3y&x=1",
                    &[("authorization", secret), ("x-custom", "yes")],
                    "{}",
                )
                .await
                .expect("answered");
                assert_eq!(raw.status, status, "{kind}");
                let message = vendor_message(kind, status, &raw);
                for quoted in [
                    "POST /v3/teams?app_key=k3y&x=1 HTTP/1.1\r\n",
                    &format!("authorization: {secret}\r\n"),
                    "x-custom: yes\r\n",
                    "content-length: 2\r\n",
                ] {
                    assert!(
                        message.contains(quoted),
                        "{kind}: {quoted:?} not in {message:?}"
                    );
                }
            }
            // The vendor never acted, and every request was logged.
            assert_eq!(handle.request_count(), 3, "{kind}");
        }
    }

    #[tokio::test]
    async fn flashcat_errors_in_200_switch_turns_injected_errors_into_http_200() {
        let handle = sim("flashcat", false).await;
        assert!(handle.set_switch("errors_in_200", true));
        handle.set_fault(Some(Fault::EchoRequest { status: 500 }));
        let raw = exchange(handle.addr(), "POST", "/team/list?app_key=k", &[], "{}")
            .await
            .expect("answered");
        assert_eq!(raw.status, 200);
        assert_eq!(raw.json()["error"]["code"], json!("InternalError"));
        assert!(vendor_message("flashcat", 200, &raw).starts_with("POST /team/list?app_key=k"));
        // An echo inside a 200 without the switch: still a failure's code.
        assert!(handle.set_switch("errors_in_200", false));
        handle.set_fault(Some(Fault::EchoRequest { status: 200 }));
        let raw = exchange(handle.addr(), "POST", "/team/list?app_key=k", &[], "{}")
            .await
            .expect("answered");
        assert_eq!(raw.status, 200);
        assert_eq!(raw.json()["error"]["code"], json!("InternalError"));
        // The same with the echo fault's own status 200, on any vendor.
        let handle = sim("grafana", false).await;
        handle.set_fault(Some(Fault::EchoRequest { status: 200 }));
        let raw = exchange(handle.addr(), "GET", "/api/teams/1", &[], "")
            .await
            .expect("answered");
        assert_eq!(raw.status, 200);
        assert!(vendor_message("grafana", 200, &raw).starts_with("GET /api/teams/1 "));
    }

    #[tokio::test]
    async fn count_limited_faults_stop_after_n() {
        let handle = sim("grafana", false).await;
        let auth = auth_headers("grafana");
        let headers = borrowed(&auth);
        let get = || exchange(handle.addr(), "GET", "/api/teams/search", &headers, "");
        handle.set_fault_for(Fault::Status(503), 2);
        assert_eq!(get().await.expect("answered").status, 503);
        assert_eq!(handle.fault_plan().unwrap().remaining, Some(1));
        assert_eq!(get().await.expect("answered").status, 503);
        assert_eq!(handle.fault_plan(), None, "spent");
        assert_eq!(get().await.expect("answered").status, 200);

        // Only POSTs: a GET passes untouched and does not count.
        handle.set_fault_plan(Some(
            FaultPlan::times(Fault::Status(502), 1).only(Method::POST),
        ));
        assert_eq!(get().await.expect("answered").status, 200);
        let post = |name: &'static str| {
            exchange(
                handle.addr(),
                "POST",
                "/api/teams",
                &headers,
                if name == "A" {
                    r#"{"name":"A"}"#
                } else {
                    r#"{"name":"B"}"#
                },
            )
        };
        assert_eq!(post("A").await.expect("answered").status, 502);
        assert_eq!(post("B").await.expect("answered").status, 200);
        assert_eq!(handle.fault_plan(), None);
        // A count of 0 is no fault at all.
        handle.set_fault_for(Fault::Reset, 0);
        assert_eq!(handle.fault_plan(), None);
    }

    #[tokio::test]
    async fn the_admin_route_is_served_only_when_enabled() {
        let set = r#"{"fault":"status","status":503,"count":1}"#;
        for kind in KINDS {
            // Off (the default): just an unknown path of the vendor's, logged like any other.
            let handle = sim(kind, false).await;
            let auth = auth_headers(kind);
            let target = authed_target(kind, "/_sim/fault");
            let raw = exchange(handle.addr(), "POST", &target, &borrowed(&auth), set)
                .await
                .expect("answered");
            assert_eq!(raw.status, 404, "{kind}: {}", raw.text());
            vendor_message(kind, 404, &raw);
            assert_eq!(handle.fault_plan(), None, "{kind}");
            assert_eq!(handle.request_count(), 1, "{kind}");

            // On: the simulator's own, never logged, never faulted.
            let handle = sim(kind, true).await;
            let addr = handle.addr();
            let raw = exchange(addr, "POST", "/_sim/fault", &[], set)
                .await
                .expect("answered");
            assert_eq!(raw.status, 200, "{kind}: {}", raw.text());
            let shown = json!({"fault":"status","status":503,"count":1,"method":null});
            assert_eq!(raw.json(), shown);
            let raw = exchange(addr, "GET", "/_sim/fault", &[], "")
                .await
                .expect("answered");
            assert_eq!(raw.json(), shown, "{kind}");
            assert_eq!(
                handle.fault_plan(),
                Some(FaultPlan::times(Fault::Status(503), 1))
            );
            let raw = exchange(addr, "GET", "/whatever", &[], "")
                .await
                .expect("answered");
            assert_eq!(
                raw.status, 503,
                "{kind}: the fault applies to the vendor's requests"
            );
            let raw = exchange(addr, "GET", "/_sim/fault", &[], "")
                .await
                .expect("answered");
            assert_eq!(raw.json(), json!({"fault":"none"}), "{kind}: spent");

            // Faults never touch the admin route.
            handle.set_fault(Some(Fault::Reset));
            let raw = exchange(addr, "POST", "/_sim/fault", &[], r#"{"fault":"none"}"#)
                .await
                .expect("the admin route answers under a fault");
            assert_eq!(raw.status, 200, "{kind}");
            assert_eq!(handle.fault_plan(), None, "{kind}");

            for (method, path, body, status) in [
                ("POST", "/_sim/fault", "not json", 400),
                ("POST", "/_sim/fault", r#"{"fault":"explode"}"#, 400),
                ("POST", "/_sim/fault", r#"{"fault":"latency"}"#, 400),
                ("DELETE", "/_sim/fault", "", 405),
                (
                    "POST",
                    "/_sim/switch",
                    r#"{"name":"no_such_switch","on":true}"#,
                    404,
                ),
                ("POST", "/_sim/switch", r#"{"name":"x"}"#, 400),
                ("GET", "/_sim/switch", "", 405),
                ("GET", "/_sim/other", "", 404),
            ] {
                let raw = exchange(addr, method, path, &[], body)
                    .await
                    .expect("answered");
                assert_eq!(raw.status, status, "{kind}: {method} {path} {body}");
                assert!(raw.json()["error"].is_string(), "{kind}: {}", raw.text());
            }
            assert_eq!(
                handle.fault_plan(),
                None,
                "{kind}: refused plans change nothing"
            );
            assert_eq!(
                handle.request_count(),
                1,
                "{kind}: only the vendor request was logged"
            );
        }
    }

    #[tokio::test]
    async fn the_admin_route_flips_vendor_switches() {
        let handle = sim("flashcat", true).await;
        let raw = exchange(
            handle.addr(),
            "POST",
            "/_sim/switch",
            &[],
            r#"{"name":"errors_in_200","on":true}"#,
        )
        .await
        .expect("answered");
        assert_eq!(raw.status, 200, "{}", raw.text());
        assert_eq!(raw.json(), json!({"name":"errors_in_200","on":true}));
        // A wrong key is now an error inside HTTP 200.
        let raw = exchange(
            handle.addr(),
            "POST",
            "/team/list?app_key=wrong",
            &[("content-type", "application/json")],
            "{}",
        )
        .await
        .expect("answered");
        assert_eq!(raw.status, 200);
        assert_eq!(raw.json()["error"]["code"], json!("Unauthorized"));
    }
}
