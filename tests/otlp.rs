//! OpenTelemetry export (the `otlp` feature), through the real binary: a fake collector on
//! loopback receives the spans over OTLP/HTTP (protobuf), in the caller's trace; what is still
//! buffered at SIGTERM is sent before the process exits.
//!
//! The body is not decoded: the trace and span ids travel as raw bytes in the protobuf, so
//! the test looks for those bytes.
#![cfg(feature = "otlp")]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

const CREDENTIAL: &str = "otlp-credential";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Stops the child we started, whatever happens in the test.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One POST the collector received.
#[derive(Clone)]
struct Export {
    path: String,
    content_type: String,
    body: Bytes,
}

/// A fake OTLP/HTTP collector: records every request, answers 200 with an empty (valid)
/// protobuf response.
async fn collector() -> (SocketAddr, Arc<Mutex<Vec<Export>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await?.to_bytes();
                        log.lock().unwrap().push(Export {
                            path,
                            content_type,
                            body,
                        });
                        let mut answer = Response::new(Full::new(Bytes::new()));
                        answer.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, hyper::Error>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first export (POST to /v1/traces) whose body holds `needle`, waiting at most `limit`.
async fn export_with(seen: &Mutex<Vec<Export>>, needle: &[u8], limit: Duration) -> Option<Export> {
    let deadline = Instant::now() + limit;
    loop {
        let found = seen
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.path == "/v1/traces" && contains(&e.body, needle))
            .cloned();
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Proxy {
    base: String,
    guard: Guard,
    sim: teamgate_sim::SimHandle,
    dir: std::path::PathBuf,
}

/// teamgate (built with `otlp`) in front of a Grafana simulator, exporting to `collector`;
/// `schedule_delay_ms` is the batch processor's export interval.
async fn start(name: &str, collector: SocketAddr, schedule_delay_ms: u64) -> Proxy {
    let sim = teamgate_sim::spawn_local(teamgate_sim::new_vendor("grafana", CREDENTIAL).unwrap())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("teamgate-otlp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_backend = \"g\"\n[cache]\nenabled = false\n[server]\ndrain_grace_ms = 100\n[backends.g]\nmapping = \"{}/mappings/grafana.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_OTLP_CREDENTIAL\"\n",
            env!("CARGO_MANIFEST_DIR"),
            sim.base_url()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("TEAMGATE_OTLP_CREDENTIAL", CREDENTIAL)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms.to_string())
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if matches!(get(&base, "/readyz", None).await, Ok(200)) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "teamgate did not become ready");
    Proxy {
        base,
        guard,
        sim,
        dir,
    }
}

async fn get(base: &str, path: &str, traceparent: Option<&str>) -> Result<u16, String> {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Full<Bytes>>();
    let mut request = Request::get(format!("{base}{path}"));
    if let Some(parent) = traceparent {
        request = request.header("traceparent", parent);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(request.body(Full::new(Bytes::new())).unwrap()),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// The vendor call's `traceparent`, as the simulator saw it: (trace id, parent span id).
fn vendor_traceparent(sim: &teamgate_sim::SimHandle) -> (String, String) {
    let requests = sim.requests();
    let call = requests
        .iter()
        .find(|r| r.path.starts_with("/api/teams"))
        .expect("the vendor was called");
    let parent = call.header("traceparent").expect("a traceparent");
    let parts: Vec<&str> = parent.split('-').collect();
    assert_eq!(parts.len(), 4, "{parent}");
    (parts[1].to_string(), parts[2].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_in_the_callers_trace() {
    let (collector_addr, seen) = collector().await;
    let proxy = start("continue", collector_addr, 200).await;
    let parent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let status = get(&proxy.base, "/v1/teams?limit=5", Some(&parent))
        .await
        .unwrap();
    assert_eq!(status, 200);

    let export = export_with(&seen, &hex_bytes(TRACE_ID), Duration::from_secs(20))
        .await
        .expect("the collector received the request's trace within 20 s");
    assert_eq!(export.content_type, "application/x-protobuf");
    assert!(contains(&export.body, b"teamgate"), "the service name");
    assert!(contains(&export.body, b"request"), "the request span");
    assert!(
        contains(&export.body, &hex_bytes(CALLER_SPAN)),
        "the caller's span is the request span's parent"
    );
    // The vendor's parent is the exported `upstream` span, in the same trace.
    let (vendor_trace, vendor_parent) = vendor_traceparent(&proxy.sim);
    assert_eq!(vendor_trace, TRACE_ID);
    let upstream = export_with(&seen, &hex_bytes(&vendor_parent), Duration::from_secs(10))
        .await
        .expect("the vendor call's parent span is exported");
    assert!(contains(&upstream.body, b"upstream"));
    drop(proxy.guard);
    let _ = std::fs::remove_dir_all(&proxy.dir);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_trace_is_exported_at_shutdown() {
    let (collector_addr, seen) = collector().await;
    // Exports every 10 minutes: only the flush at shutdown can send this span in time.
    let proxy = start("shutdown", collector_addr, 600_000).await;
    let status = get(&proxy.base, "/v1/teams?limit=5", None).await.unwrap();
    assert_eq!(status, 200);
    // No caller context: the exported root's trace is the one the vendor was given.
    let (vendor_trace, vendor_parent) = vendor_traceparent(&proxy.sim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing is exported before the interval or the shutdown"
    );

    let mut guard = proxy.guard;
    let mut child = guard.0.take().unwrap();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("teamgate did not exit within 10 s of SIGTERM")
    });
    assert!(status.success(), "exit status {status:?}");

    // Received before the process exited: no waiting here.
    let export = export_with(&seen, &hex_bytes(&vendor_trace), Duration::ZERO)
        .await
        .expect("the buffered spans were sent before exit");
    assert!(contains(&export.body, &hex_bytes(&vendor_parent)));
    let _ = std::fs::remove_dir_all(&proxy.dir);
}
