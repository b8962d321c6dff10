//! Data-driven mapping fixtures: one generic runner for every vendor.
//!
//! Each file in `tests/fixtures/mapping/<mapping>/` holds a canonical request, the vendor
//! exchanges it must cause (each expected request, and the answer the fake vendor gives), and
//! the canonical answer or problem expected. Requests are compared exactly (method, path,
//! query, JSON body; listed headers); answers by subset (every expected member must match).
//! A fixture may try a variant of its mapping with `mapping_edits` (text replacements, each
//! of which must apply), for constructs no shipped mapping uses (`unknown = "refuse"`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Map, Value};
use teamgate::call::Secret;
use teamgate::canonical::{CanonicalRequest, Operation, PageRequest};
use teamgate::mapping::engine::Backend;
use teamgate::mapping::Mapping;
use teamgate::metrics::Metrics;
use teamgate::upstream::{Upstream, UpstreamRequest, UpstreamResponse};

const CREDENTIAL: &str = "fixture-credential";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    /// Text replacements in the shipped mapping for this fixture only (`[from, to]`, each
    /// `from` must occur): a variant of a construct without a mapping file of its own.
    #[serde(default)]
    mapping_edits: Vec<[String; 2]>,
    request: FixtureRequest,
    #[serde(default)]
    exchanges: Vec<Exchange>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureRequest {
    op: String,
    team_id: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    input: Map<String, Value>,
    page: Option<[usize; 2]>,
    /// `?include=vendor`.
    #[serde(default)]
    include_vendor: bool,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Exchange {
    method: String,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    body: Option<Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    respond: Respond,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Respond {
    status: u16,
    body: Option<Value>,
    /// A raw body, for answers that are not JSON.
    raw: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    body: Option<Value>,
    code: Option<String>,
    location: Option<String>,
    /// Whether the answer is marked partial (absent: it must not be).
    #[serde(default)]
    partial: bool,
}

/// Plays the exchanges in order and records what it was asked.
struct Script {
    exchanges: Mutex<Vec<Exchange>>,
    failures: Mutex<Vec<String>>,
}

impl Script {
    fn answer(&self, request: UpstreamRequest) -> UpstreamResponse {
        {
            let next = {
                let mut list = self.exchanges.lock().unwrap();
                if list.is_empty() {
                    None
                } else {
                    Some(list.remove(0))
                }
            };
            let Some(exchange) = next else {
                self.failures.lock().unwrap().push(format!(
                    "unexpected request {} {}",
                    request.method, request.url
                ));
                return UpstreamResponse {
                    status: 599,
                    headers: Default::default(),
                    body: Bytes::new(),
                };
            };
            if let Some(problem) = compare_request(&exchange, &request) {
                self.failures.lock().unwrap().push(problem);
            }
            let body = match (&exchange.respond.body, &exchange.respond.raw) {
                (Some(v), _) => Bytes::from(v.to_string()),
                (None, Some(raw)) => Bytes::from(raw.clone()),
                (None, None) => Bytes::new(),
            };
            UpstreamResponse {
                status: exchange.respond.status,
                headers: Default::default(),
                body,
            }
        }
    }

    /// The script as the engine's upstream client.
    fn upstream(self: &Arc<Self>) -> Upstream {
        let script = self.clone();
        Upstream::new(tower::service_fn(move |request| {
            let answer = script.answer(request);
            async move { Ok(answer) }
        }))
    }
}

fn compare_request(expected: &Exchange, got: &UpstreamRequest) -> Option<String> {
    let url = got
        .url
        .strip_prefix("http://vendor.test")
        .unwrap_or(&got.url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect();
    let body: Option<Value> = got
        .body
        .as_ref()
        .map(|b| serde_json::from_slice(b).expect("bodies are JSON"));
    let mut problems = Vec::new();
    if got.method.as_str() != expected.method {
        problems.push(format!("method {} != {}", got.method, expected.method));
    }
    if path != expected.path {
        problems.push(format!("path {path} != {}", expected.path));
    }
    if query != expected.query {
        problems.push(format!("query {query:?} != {:?}", expected.query));
    }
    if body != expected.body {
        problems.push(format!(
            "body {} != {}",
            json_text(&body),
            json_text(&expected.body)
        ));
    }
    for (name, value) in &expected.headers {
        let actual = got.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if actual != Some(value.as_str()) {
            problems.push(format!("header {name}: {actual:?} != {value:?}"));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{} {}: {}",
            expected.method,
            expected.path,
            problems.join("; ")
        )
    })
}

fn json_text(v: &Option<Value>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into())
}

/// Every member of `expected` is in `actual` with the same value (recursively); arrays must
/// have the same length.
fn subset(expected: &Value, actual: &Value, at: &str, problems: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match a.get(k) {
                    Some(av) => subset(v, av, &format!("{at}.{k}"), problems),
                    None => problems.push(format!("{at}.{k} missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, av, &format!("{at}[{i}]"), problems);
            }
        }
        _ if expected == actual => {}
        _ => problems.push(format!("{at}: expected {expected}, got {actual}")),
    }
}

async fn run(mapping: &Arc<Mapping>, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let fixture: Fixture =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let script = Arc::new(Script {
        exchanges: Mutex::new(fixture.exchanges.clone()),
        failures: Mutex::new(Vec::new()),
    });
    let mut mapping = mapping.clone();
    if !fixture.mapping_edits.is_empty() {
        let mut source = std::fs::read_to_string(&mapping.file).unwrap();
        for [from, to] in &fixture.mapping_edits {
            if !source.contains(from.as_str()) {
                return vec![format!("mapping edit: {from:?} is not in the mapping")];
            }
            source = source.replace(from.as_str(), to);
        }
        match Mapping::parse(&mapping.file, &source) {
            Ok(edited) => mapping = Arc::new(edited),
            Err(e) => return vec![format!("the edited mapping does not load: {e:?}")],
        }
    }
    let backend = Backend::new(
        "fixture".into(),
        mapping.clone(),
        "http://vendor.test",
        Secret::new(CREDENTIAL.into()),
        Map::new(),
        script.upstream(),
        Arc::new(Metrics::new()),
    );
    let op = Operation::parse(&fixture.request.op).expect("known operation");
    let mut request = CanonicalRequest::new(op);
    request.team_id = fixture.request.team_id.clone();
    request.user_id = fixture.request.user_id.clone();
    request.query = fixture.request.query.clone();
    request.input = fixture.request.input.clone();
    request.include_vendor = fixture.request.include_vendor;
    request.page = fixture
        .request
        .page
        .map(|[limit, offset]| PageRequest { limit, offset });
    if op.is_list() && request.page.is_none() {
        request.page = Some(PageRequest {
            limit: 50,
            offset: 0,
        });
    }
    let result = backend.execute(&request).await;
    let mut problems: Vec<String> = script.failures.lock().unwrap().clone();
    let left = script.exchanges.lock().unwrap().len();
    if left > 0 {
        problems.push(format!("{left} expected exchange(s) never happened"));
    }
    match result {
        Ok(answer) => {
            if answer.status != fixture.expect.status {
                problems.push(format!(
                    "status {} != {}",
                    answer.status, fixture.expect.status
                ));
            }
            let body = answer.json().unwrap_or(Value::Null);
            if !fixture.request.include_vendor && has_vendor(&body) {
                problems.push(format!(
                    "`vendor` in an answer that did not ask for it: {body}"
                ));
            }
            if let Some(expected) = &fixture.expect.body {
                subset(
                    expected,
                    &answer.json().unwrap_or(Value::Null),
                    "$",
                    &mut problems,
                );
            }
            if answer.partial != fixture.expect.partial {
                problems.push(format!(
                    "partial {} != {}",
                    answer.partial, fixture.expect.partial
                ));
            }
            if fixture.expect.location.is_some() && answer.location != fixture.expect.location {
                problems.push(format!(
                    "location {:?} != {:?}",
                    answer.location, fixture.expect.location
                ));
            }
            if fixture.expect.code.is_some() {
                problems.push(format!(
                    "expected problem {:?}, got success {:?}",
                    fixture.expect.code,
                    answer.json()
                ));
            }
        }
        Err(problem) => {
            if problem.status() != fixture.expect.status
                || Some(problem.code.as_str()) != fixture.expect.code.as_deref()
            {
                problems.push(format!(
                    "problem {} ({}) != {:?} ({})",
                    problem.code.as_str(),
                    problem.status(),
                    fixture.expect.code,
                    fixture.expect.status
                ));
            }
            // The problem exactly as the server's edge answers it.
            let response = teamgate::server::problem::problem_response(&problem, "rid");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(expected) = &fixture.expect.body {
                subset(expected, &body, "$", &mut problems);
            }
            let text = body.to_string();
            if text.contains(CREDENTIAL) {
                problems.push("the credential leaked into a problem".into());
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_mapping_fixture_holds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/mapping");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mapping = Arc::new(
            Mapping::load(&root.join(format!("mappings/{name}.toml")))
                .unwrap_or_else(|e| panic!("{name}: {e:?}")),
        );
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            count += 1;
            for problem in run(&mapping, &file).await {
                failures.push(format!(
                    "{}: {problem}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(count >= 10, "only {count} fixtures found");
    assert!(
        failures.is_empty(),
        "{} fixture problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether any object in `value` has a `vendor` member (the leftovers).
fn has_vendor(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("vendor") || map.values().any(has_vendor),
        Value::Array(items) => items.iter().any(has_vendor),
        _ => false,
    }
}
