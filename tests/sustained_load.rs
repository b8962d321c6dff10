//! Sustained load through the real binary: 20,000 requests and more over 64 keep-alive
//! connections at once, with the default log format captured from stderr (JSON, since stderr
//! is a pipe: every line must be one JSON object).
//!
//! A one-request test cannot see what grows with traffic. A tracing span guard once held
//! across an `.await` made each request's span a child of the requests before it on the same
//! worker thread: nothing failed, but every log line carried the whole chain of request ids
//! (~293 KB a line after ~2,600 requests), stderr grew by gigabytes and the process aborted.
//! So these tests assert on what that bug, and its relatives (leaks, lost or doubled log
//! lines), would change: every log line stays under 2 KB; each `Request answered` line names
//! exactly one request id, the one its request carried, and every request has its line;
//! resident memory does not grow with the traffic; the process is still up and answering;
//! every status is the one its operation must give.
//!
//! Black-box on purpose: only the compiled binary and HTTP over loopback, nothing from the
//! library crate, so that a restructuring of the library cannot make these tests pass
//! vacuously. The vendor simulators run as processes of their own (`teamgate sim`) so that
//! the resident memory measured is the proxy's alone: a simulator keeps a log of the last
//! 10,000 requests it received (for the tests that read it), about 0.9 KB a request, which
//! an embedded simulator would add to the proxy's figure.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Separate keep-alive connections driven at once.
const CONNECTIONS: usize = 64;
/// Requests of the measured run, warm-up not included (rounded up to whole units of work
/// per connection).
const REQUESTS: usize = 20_000;
/// The longest log line allowed. A normal line is about 330 bytes, colour codes included; a
/// line carrying a chain of request ids passes this after a few dozen requests.
const MAX_LOG_LINE: usize = 2048;
/// How much resident memory may grow over the measured run: allocator slack and what the
/// read cache may hold within its bound. A per-request leak of 2 KB does not fit.
const MAX_RSS_GROWTH_KB: u64 = 32 * 1024;
/// The read cache's bound in the mixed test. Answers live through their TTL and stale window
/// (35 s by default), so under load the cache rightly grows up to its bound; entries are
/// weighed by their serialized size but held as parsed JSON (measured: 7 to 8 times the
/// weight in resident memory), so the default 64 MiB would hide any leak. With a small bound
/// the cache is full and evicting early in the run, and what it holds stays well inside
/// the memory budget.
const CACHE_MAX_BYTES: u64 = 1024 * 1024;
/// One request, answer body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole load of one test (warm-up and measured run; about 10 s in a debug build). Past
/// it the workers stop and the test fails, so a server that slows down under load cannot
/// make the suite hang.
const LOAD_DEADLINE: Duration = Duration::from_secs(45);
/// Load requests carry `X-Request-Id: ld-<connection>-<n>`, so the log can be checked
/// against exactly the requests sent.
const LOAD_ID_PREFIX: &str = "ld-";

const BACKENDS: [&str; 2] = ["grafana", "flashcat"];

/// The tests take turns: two proxies under load on two cores would skew each other's figures
/// and time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn reads_with_the_cache_off_keep_logs_and_memory_flat() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    runtime().block_on(async {
        // Cache off: every read runs the whole translation and a simulator call.
        let server = Server::start("reads", false).await;
        let mut setup = Conn::open(server.port, "setup", Arc::new(Tally::default())).await;
        let mut teams = Vec::new();
        for backend in BACKENDS {
            for n in 0..3 {
                let id = setup.create_team(backend, &format!("Read {n}")).await;
                teams.push((backend, id));
            }
        }
        let plan = Arc::new(Workload::Reads { teams });
        // 8 reads a connection warm the proxy up before the "before" figure.
        let report = drive(server, plan, 8, REQUESTS.div_ceil(CONNECTIONS)).await;
        report.print("reads, cache off");
        report.assert_healthy();
    });
}

#[test]
fn reads_and_writes_on_two_backends_keep_logs_and_memory_flat() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    runtime().block_on(async {
        let server = Server::start("mixed", true).await;
        let mut setup = Conn::open(server.port, "setup", Arc::new(Tally::default())).await;
        let mut people = Vec::new();
        for backend in BACKENDS {
            // Ids differ per vendor; email is what crosses them.
            let bob = setup.user_id(backend, "bob@example.com").await;
            let carol = setup.user_id(backend, "carol@example.com").await;
            people.push(People { bob, carol });
        }
        let plan = Arc::new(Workload::Mixed { people });
        // One cycle a connection (a team's whole life) warms the proxy up.
        let cycles = REQUESTS.div_ceil(CONNECTIONS * MIXED_CYCLE);
        let report = drive(server, plan, 1, cycles).await;
        report.print("reads and writes, grafana + flashcat, cache on");
        report.assert_healthy();
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ----- the workloads -----

struct People {
    bob: String,
    carol: String,
}

enum Workload {
    /// Reads of a few existing teams, as callers make them; every one answers 200.
    Reads { teams: Vec<(&'static str, String)> },
    /// A team's whole life per unit, alternating backends; `people` follows `BACKENDS`.
    Mixed { people: Vec<People> },
}

/// Requests in one unit of [`Workload::Mixed`].
const MIXED_CYCLE: usize = 12;

impl Workload {
    /// Requests in one unit of work.
    fn unit(&self) -> usize {
        match self {
            Workload::Reads { .. } => 1,
            Workload::Mixed { .. } => MIXED_CYCLE,
        }
    }

    /// Runs unit `i` of connection `worker`.
    async fn run(&self, conn: &mut Conn, worker: usize, i: usize) {
        match self {
            Workload::Reads { teams } => {
                let (backend, id) = &teams[(worker + i) % teams.len()];
                // Mostly get_team; the lists keep paging and filters in the mix.
                let path = match i % 8 {
                    0 => "/v1/teams?limit=10".to_string(),
                    1 => format!("/v1/teams/{id}/members"),
                    2 => "/v1/users?email=carol@example.com".to_string(),
                    _ => format!("/v1/teams/{id}"),
                };
                conn.call(Method::GET, &path, backend, None, 200).await;
            }
            Workload::Mixed { people } => {
                let b = (worker + i) % BACKENDS.len();
                mixed_cycle(conn, BACKENDS[b], &people[b], &format!("w{worker}c{i}")).await;
            }
        }
    }
}

/// Create, read, list, rename, members in and out, delete: [`MIXED_CYCLE`] requests, each
/// expecting the status its operation must give at that point. Names are unique per
/// connection and cycle (and short enough for Flashcat), so connections never collide.
async fn mixed_cycle(conn: &mut Conn, backend: &str, people: &People, name: &str) {
    let create = json!({ "name": name });
    let Some(created) = conn
        .call(Method::POST, "/v1/teams", backend, Some(create), 201)
        .await
    else {
        // Nothing to go on without the team; the unexpected answer is counted already.
        return;
    };
    let Some(id) = created["id"].as_str() else {
        let what = format!("POST /v1/teams on {backend}: no id in {created}");
        conn.tally.unexpected(what);
        return;
    };
    let team = format!("/v1/teams/{id}");
    let members = format!("{team}/members");
    let bob = format!("{members}/{}", people.bob);
    let by_name = format!("/v1/teams?name={name}");
    let rename = json!({ "name": format!("{name}r") });
    let bob_by_email = json!({ "email": "bob@example.com" });
    let carol_by_id = json!({ "user_id": people.carol });
    conn.call(Method::GET, &team, backend, None, 200).await;
    conn.call(Method::GET, &by_name, backend, None, 200).await;
    conn.call(Method::PATCH, &team, backend, Some(rename), 200)
        .await;
    conn.call(
        Method::POST,
        &members,
        backend,
        Some(bob_by_email.clone()),
        201,
    )
    .await;
    conn.call(Method::POST, &members, backend, Some(carol_by_id), 201)
        .await;
    // Adding someone already there answers 200.
    conn.call(Method::POST, &members, backend, Some(bob_by_email), 200)
        .await;
    conn.call(Method::GET, &members, backend, None, 200).await;
    conn.call(Method::DELETE, &bob, backend, None, 204).await;
    conn.call(Method::DELETE, &bob, backend, None, 404).await;
    conn.call(Method::DELETE, &team, backend, None, 204).await;
    conn.call(Method::GET, &team, backend, None, 404).await;
}

// ----- driving the load -----

/// What one test measured.
struct Report {
    warm_up_requests: u64,
    requests: u64,
    expected_requests: u64,
    elapsed: Duration,
    /// Server-side ends of established connections to the proxy, at the first measurement.
    connections_open: usize,
    rss_before_kb: u64,
    rss_after_kb: u64,
    metrics_before: Option<Metrics>,
    metrics_after: Option<Metrics>,
    exited: Option<ExitStatus>,
    healthz_after: bool,
    unexpected: u64,
    samples: Vec<String>,
    log: LogStats,
}

/// Opens the connections, warms the proxy up, measures, runs the load, measures again, stops
/// the proxy and reads what it logged.
async fn drive(mut server: Server, plan: Arc<Workload>, warm_units: usize, units: usize) -> Report {
    let tally = Arc::new(Tally {
        stop: server.alarm.clone(),
        ..Tally::default()
    });
    // Every connection is open before any worker starts and each worker keeps its own to the
    // end, so all of them are open at once, as the connection count below checks.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for worker in 0..CONNECTIONS {
        let prefix = format!("{LOAD_ID_PREFIX}{worker}");
        conns.push(Conn::open(server.port, &prefix, tally.clone()).await);
    }
    let watchdog = {
        let stop = tally.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LOAD_DEADLINE).await;
            stop.store(true, Ordering::SeqCst);
        })
    };
    // The workers wait twice: once warmed up (the "before" figures are taken then), and for
    // the start of the measured run.
    let barrier = Arc::new(Barrier::new(CONNECTIONS + 1));
    let mut workers = Vec::with_capacity(CONNECTIONS);
    for (worker, mut conn) in conns.into_iter().enumerate() {
        let plan = plan.clone();
        let barrier = barrier.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..warm_units {
                plan.run(&mut conn, worker, i).await;
            }
            barrier.wait().await;
            barrier.wait().await;
            for i in warm_units..warm_units + units {
                if conn.tally.stopped() {
                    break;
                }
                plan.run(&mut conn, worker, i).await;
            }
        }));
    }
    tokio::time::timeout(LOAD_DEADLINE + REQUEST_TIMEOUT, barrier.wait())
        .await
        .expect("the warm-up did not end in time");
    let connections_open = established_to(server.port);
    let rss_before_kb = rss_kb(server.proxy.0.id());
    let metrics_before = metrics(server.port).await;
    let warm_up_requests = tally.sent.load(Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::timeout(REQUEST_TIMEOUT, barrier.wait())
        .await
        .expect("the workers did not start");
    // The workers stop at the deadline, and a request in flight then at its own timeout.
    let all_done = async {
        for worker in workers {
            worker.await.expect("a worker panicked");
        }
    };
    tokio::time::timeout(LOAD_DEADLINE + 2 * REQUEST_TIMEOUT, all_done)
        .await
        .expect("the workers did not end in time");
    let elapsed = started.elapsed();
    watchdog.abort();
    let requests = tally.sent.load(Ordering::SeqCst) - warm_up_requests;
    let rss_after_kb = rss_kb(server.proxy.0.id());
    let metrics_after = metrics(server.port).await;
    let healthz_after = get(server.port, "/healthz").await.map(|(s, _)| s) == Some(200);
    let exited = server.proxy.0.try_wait().expect("try_wait on teamgate");
    let unexpected = tally.unexpected.load(Ordering::SeqCst);
    let samples = tally.samples.lock().unwrap().clone();
    let log = server.stop();
    Report {
        warm_up_requests,
        requests,
        expected_requests: (CONNECTIONS * units * plan.unit()) as u64,
        elapsed,
        connections_open,
        rss_before_kb,
        rss_after_kb,
        metrics_before,
        metrics_after,
        exited,
        healthz_after,
        unexpected,
        samples,
        log,
    }
}

impl Report {
    fn print(&self, what: &str) {
        let secs = self.elapsed.as_secs_f64();
        let (upstream, cache_bytes) = match (&self.metrics_before, &self.metrics_after) {
            (Some(b), Some(a)) => (
                (a.upstream_calls - b.upstream_calls).to_string(),
                a.cache_bytes.to_string(),
            ),
            _ => ("?".into(), "?".into()),
        };
        println!(
            "sustained load, {what}:\n  \
             {} requests (after {} to warm up) over {CONNECTIONS} connections ({} open at once) \
             in {secs:.1} s = {:.0} req/s; {upstream} upstream calls; {} unexpected answers\n  \
             log: {} lines, the longest {} bytes; {} 'Request answered' lines\n  \
             RSS {} kB before, {} kB after ({:+} kB); the cache weighs {cache_bytes} bytes after",
            self.requests,
            self.warm_up_requests,
            self.connections_open,
            self.requests as f64 / secs.max(1e-9),
            self.unexpected,
            self.log.lines,
            self.log.max_len,
            self.log.answered,
            self.rss_before_kb,
            self.rss_after_kb,
            self.rss_after_kb as i64 - self.rss_before_kb as i64,
        );
    }

    fn assert_healthy(&self) {
        // The log first: a chain of spans shows there before anything else goes wrong.
        assert!(
            self.log.max_len < MAX_LOG_LINE,
            "a log line of {} bytes (limit {MAX_LOG_LINE}); it begins: {}",
            self.log.max_len,
            self.log.longest
        );
        assert_eq!(
            self.log.not_json,
            0,
            "log lines that are not one JSON object (stderr is a pipe: JSON by default); the first: {}",
            self.log.first_not_json.as_deref().unwrap_or("")
        );
        assert_eq!(
            self.log.answered_without_one_id,
            0,
            "'Request answered' lines that do not name exactly one request id; the first: {}",
            self.log.bad_answered.as_deref().unwrap_or("")
        );
        assert_eq!(
            self.unexpected,
            0,
            "answers with an unexpected status (or none); the first ones:\n{}",
            self.samples.join("\n")
        );
        assert!(
            self.connections_open >= CONNECTIONS,
            "only {} connections were open at once",
            self.connections_open
        );
        assert_eq!(
            self.requests, self.expected_requests,
            "the load did not run to its end within {LOAD_DEADLINE:?}"
        );
        // Every load request has an id of its own, so: one answered line per request, none
        // lost, none twice, none naming another request's id.
        assert_eq!(
            self.log.load_ids.len() as u64,
            self.warm_up_requests + self.requests,
            "distinct load request ids in 'Request answered' lines vs load requests sent"
        );
        assert_eq!(
            self.log.load_ids_repeated, 0,
            "load request ids answered more than once"
        );
        assert!(self.exited.is_none(), "teamgate exited: {:?}", self.exited);
        assert!(
            self.healthz_after,
            "/healthz did not answer 200 after the run"
        );
        assert!(
            self.rss_after_kb <= self.rss_before_kb + MAX_RSS_GROWTH_KB,
            "resident memory grew from {} kB to {} kB (limit +{MAX_RSS_GROWTH_KB} kB)",
            self.rss_before_kb,
            self.rss_after_kb,
        );
    }
}

// ----- one connection -----

/// What the workers count, shared by all of them.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    unexpected: AtomicU64,
    /// The first few unexpected answers, for the failure message.
    samples: Mutex<Vec<String>>,
    /// Raised by the log reader on a bad line, or at the deadline: the workers stop early, so
    /// a regression fails in seconds instead of pushing megabyte lines through the pipe.
    stop: Arc<AtomicBool>,
}

impl Tally {
    fn unexpected(&self, what: String) {
        self.unexpected.fetch_add(1, Ordering::SeqCst);
        let mut samples = self.samples.lock().unwrap();
        if samples.len() < 10 {
            samples.push(what);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A keep-alive HTTP/1.1 connection of its own, one request at a time.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    id_prefix: String,
    seq: u64,
    tally: Arc<Tally>,
}

impl Conn {
    async fn open(port: u16, id_prefix: &str, tally: Arc<Tally>) -> Conn {
        let (sender, host) = handshake(port).await.expect("connect to teamgate");
        Conn {
            sender,
            host,
            id_prefix: id_prefix.to_string(),
            seq: 0,
            tally,
        }
    }

    /// Sends one request with an id of its own. An answer with another status, another id or
    /// none at all is counted as unexpected; the body comes back when all is as expected.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        backend: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Option<Value> {
        if self.tally.stopped() {
            return None;
        }
        self.seq += 1;
        let request_id = format!("{}-{}", self.id_prefix, self.seq);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", &self.host)
            .header("teamgate-backend", backend)
            .header("x-request-id", &request_id);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .expect("a valid request");
        self.tally.sent.fetch_add(1, Ordering::SeqCst);
        let sender = &mut self.sender;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async move {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let echoed = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, echoed, bytes))
        })
        .await;
        let what = format!("{method} {path} on {backend} (request id {request_id})");
        match answer {
            Err(_) => self
                .tally
                .unexpected(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(e)) => self.tally.unexpected(format!("{what}: {e}")),
            Ok(Ok((status, _, bytes))) if status != expected => {
                let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                self.tally
                    .unexpected(format!("{what}: {status}, expected {expected}: {text}"));
            }
            Ok(Ok((_, echoed, _))) if echoed.as_deref() != Some(request_id.as_str()) => self
                .tally
                .unexpected(format!("{what}: answered with request id {echoed:?}")),
            Ok(Ok((_, _, bytes))) => {
                return Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
        }
        None
    }

    async fn create_team(&mut self, backend: &str, name: &str) -> String {
        let body = json!({ "name": name });
        let team = self
            .call(Method::POST, "/v1/teams", backend, Some(body), 201)
            .await
            .unwrap_or_else(|| panic!("create {name} on {backend}: {:?}", self.samples()));
        team["id"].as_str().expect("ids are strings").to_string()
    }

    async fn user_id(&mut self, backend: &str, email: &str) -> String {
        let path = format!("/v1/users?email={email}");
        let users = self
            .call(Method::GET, &path, backend, None, 200)
            .await
            .unwrap_or_else(|| panic!("{path} on {backend}: {:?}", self.samples()));
        users["users"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no user {email} on {backend}: {users}"))
            .to_string()
    }

    fn samples(&self) -> Vec<String> {
        self.tally.samples.lock().unwrap().clone()
    }
}

/// A new HTTP/1.1 connection to the proxy, and the `Host` to send on it.
async fn handshake(port: u16) -> Option<(SendRequest<Full<Bytes>>, String)> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    // Runs until the sender is dropped or the server closes the connection.
    tokio::spawn(connection);
    Some((sender, format!("127.0.0.1:{port}")))
}

/// One GET on a fresh connection: status and body, or `None` (bounded; never panics).
async fn get(port: u16, path: &str) -> Option<(u16, Bytes)> {
    let attempt = async {
        let (mut sender, host) = handshake(port).await?;
        let request = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// Figures from `/metrics` that explain the memory figures.
struct Metrics {
    upstream_calls: u64,
    cache_bytes: u64,
}

async fn metrics(port: u16) -> Option<Metrics> {
    let (200, body) = get(port, "/metrics").await? else {
        return None;
    };
    let text = String::from_utf8_lossy(&body);
    let value = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let mut figures = Metrics {
        upstream_calls: 0,
        cache_bytes: 0,
    };
    for line in text.lines() {
        if line.starts_with("teamgate_upstream_requests_total{") {
            figures.upstream_calls += value(line);
        } else if line.starts_with("teamgate_cache_bytes ") {
            figures.cache_bytes = value(line);
        }
    }
    Some(figures)
}

// ----- the processes under test -----

/// A process we started, killed by its handle when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The proxy with a config of our own in front of two simulator processes, its stderr read on
/// a thread. Dropping it stops the three processes and removes the config.
struct Server {
    proxy: Guard,
    port: u16,
    /// Dropped after `proxy` (field order), so the proxy never outlives its vendors.
    _simulators: Vec<Guard>,
    config: PathBuf,
    /// Raised by the log reader on a line that breaks the rules.
    alarm: Arc<AtomicBool>,
    log: Option<JoinHandle<LogStats>>,
}

impl Server {
    async fn start(name: &str, cache: bool) -> Server {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let unique = format!("{name}-{}-{nanos}", std::process::id());
        let credential = format!("sustained-load-{unique}");
        let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\n\
             default_backend = \"grafana\"\n\n\
             [server]\n\
             # High enough that load shedding never answers in the server's place.\n\
             concurrency_limit = 1024\n\
             # Stopped with SIGTERM: no grace to wait out, the log written out whole.\n\
             drain_grace_ms = 0\n\n\
             [cache]\n\
             enabled = {cache}\n\
             max_bytes = {CACHE_MAX_BYTES}\n"
        );
        let mut simulators = Vec::new();
        for backend in BACKENDS {
            let port = free_port();
            let simulator = Command::new(env!("CARGO_BIN_EXE_teamgate"))
                .args(["sim", backend, "--listen", &format!("127.0.0.1:{port}")])
                .env("TEAMGATE_SIM_CREDENTIAL", &credential)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a simulator");
            simulators.push(Guard(simulator));
            wait_for_port(port, &mut simulators.last_mut().expect("just pushed").0).await;
            // Debug formatting quotes and escapes the path as a TOML basic string wants it.
            let mapping = mappings
                .join(format!("{backend}.toml"))
                .display()
                .to_string();
            config.push_str(&format!(
                "\n[backends.{backend}]\n\
                 mapping = {mapping:?}\n\
                 base_url = \"http://127.0.0.1:{port}\"\n\
                 credential_env = \"TEAMGATE_SUSTAINED_LOAD_CREDENTIAL\"\n"
            ));
        }
        let config_path = std::env::temp_dir().join(format!("teamgate-sustained-{unique}.toml"));
        std::fs::write(&config_path, config).expect("write the config");
        let port = free_port();
        // The default log level and format: TEAMGATE_LOG is left unset on purpose.
        let mut proxy = Command::new(env!("CARGO_BIN_EXE_teamgate"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("TEAMGATE_LOG")
            .env("TEAMGATE_SUSTAINED_LOAD_CREDENTIAL", &credential)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start teamgate");
        let stderr = proxy.stderr.take().expect("piped stderr");
        let alarm = Arc::new(AtomicBool::new(false));
        let log = {
            let alarm = alarm.clone();
            std::thread::spawn(move || read_log(stderr, &alarm))
        };
        let mut server = Server {
            proxy: Guard(proxy),
            port,
            _simulators: simulators,
            config: config_path,
            alarm,
            log: Some(log),
        };
        for _ in 0..100 {
            if get(port, "/healthz").await.map(|(s, _)| s) == Some(200) {
                return server;
            }
            if let Ok(Some(status)) = server.proxy.0.try_wait() {
                let log = server.stop();
                panic!(
                    "teamgate exited at start ({status}); a line of its log: {}",
                    log.longest
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("teamgate did not answer /healthz within 10 s");
    }

    /// Stops the proxy as an orchestrator does (SIGTERM; SIGKILL only if it has not exited
    /// within 10 s) and returns what it logged: its log writer is off the request path, so
    /// the lines still buffered at the signal must be written out before it exits.
    fn stop(&mut self) -> LogStats {
        let pid = self.proxy.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.proxy.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.proxy.0.kill();
        let _ = self.proxy.0.wait();
        self.log
            .take()
            .map(|reader| reader.join().expect("the log reader panicked"))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits (bounded) until something accepts connections on `port`.
async fn wait_for_port(port: u16, process: &mut Child) {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = process.try_wait() {
            panic!("a simulator exited at start ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a simulator did not listen on {port} within 10 s");
}

// ----- the log -----

/// Figures about stderr; the lines themselves are not kept (there are tens of thousands).
#[derive(Default)]
struct LogStats {
    lines: u64,
    max_len: usize,
    /// The beginning of the longest line.
    longest: String,
    /// Lines saying `Request answered`.
    answered: u64,
    answered_without_one_id: u64,
    bad_answered: Option<String>,
    /// Lines that are not one JSON object (the default format when stderr is not a terminal).
    not_json: u64,
    first_not_json: Option<String>,
    /// Distinct ids of load requests in `Request answered` lines.
    load_ids: HashSet<String>,
    load_ids_repeated: u64,
}

/// Reads stderr line by line to its end, which is the process's end.
fn read_log(stderr: ChildStderr, alarm: &AtomicBool) -> LogStats {
    let mut stats = LogStats::default();
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            raw.pop();
        }
        stats.lines += 1;
        // The length as written, colour codes included: that is what fills a log file.
        let len = raw.len();
        let line = strip_ansi(&raw);
        if len > stats.max_len {
            stats.max_len = len;
            stats.longest = line.chars().take(400).collect();
        }
        if len >= MAX_LOG_LINE {
            alarm.store(true, Ordering::SeqCst);
        }
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line).is_err() {
            stats.not_json += 1;
            if stats.first_not_json.is_none() {
                stats.first_not_json = Some(line.chars().take(400).collect());
            }
        }
        if line.contains("Request answered") {
            stats.answered += 1;
            match request_ids(&line)[..] {
                [id] => {
                    if id.starts_with(LOAD_ID_PREFIX) && !stats.load_ids.insert(id.to_string()) {
                        stats.load_ids_repeated += 1;
                    }
                }
                _ => {
                    stats.answered_without_one_id += 1;
                    if stats.bad_answered.is_none() {
                        stats.bad_answered = Some(line.chars().take(400).collect());
                    }
                    alarm.store(true, Ordering::SeqCst);
                }
            }
        }
    }
    stats
}

/// Drops ANSI escape sequences (`ESC [ ... final byte`): the default format colours its
/// output even into a pipe, field names included.
fn strip_ansi(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b && raw.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                i += 1;
            }
            i += 1;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every request id in a line, in order: `"request_id":"…"` in JSON lines, `request_id=…` in
/// human ones. A span that chained into another request's would show two (or a wrong one).
fn request_ids(line: &str) -> Vec<&str> {
    let json = line.match_indices("\"request_id\":\"").map(|(at, key)| {
        let value = &line[at + key.len()..];
        &value[..value.find('"').unwrap_or(value.len())]
    });
    let human = line.match_indices(" request_id=").map(|(at, key)| {
        let value = &line[at + key.len()..];
        &value[..value.find([' ', '}', ',', ':']).unwrap_or(value.len())]
    });
    json.chain(human).collect()
}

// ----- the process, from /proc -----

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS in /proc status")
}

/// Established TCP connections whose local end is `port` (the server's ends), from
/// `/proc/net/tcp`.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            // `st` 01 is ESTABLISHED.
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
        })
        .count()
}
