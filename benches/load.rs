//! Load benchmark: the whole proxy against a plain pass-through proxy on the same upstream.
//!
//! Everything runs on loopback: one Grafana simulator holding 200 teams, and in front of it
//! (a) a pass-through proxy that forwards the vendor request as it is, (b) teamgate with the
//! read cache off (full translation on every request), (c) teamgate with the cache on. The
//! load generator is `wrk` (Debian package `wrk`) when it is installed, else a bounded
//! in-process hyper client. Results are printed as figures and ratios; nothing is asserted.
//!
//! Run: `cargo bench --bench load` (optional: `LOAD_SECONDS=10 LOAD_CONNECTIONS=32`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use teamgate_sim::{self as sim, SimRequest};

const CREDENTIAL: &str = "bench-credential";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds = env_u64("LOAD_SECONDS", 8);
    let connections = env_u64("LOAD_CONNECTIONS", 32);
    let upstream = sim::spawn_local(sim::new_vendor("grafana", CREDENTIAL).unwrap())
        .await
        .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {CREDENTIAL}").parse().unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    for i in 0..200 {
        let body = Bytes::from(json!({ "name": format!("Team {i:03}") }).to_string());
        upstream.direct(&SimRequest::new(
            http::Method::POST,
            "/api/teams",
            headers.clone(),
            body,
        ));
    }

    let passthrough = spawn_passthrough(upstream.addr()).await;
    let no_cache = spawn_teamgate(&upstream.base_url(), false).await;
    let cached = spawn_teamgate(&upstream.base_url(), true).await;

    let vendor_path = "/api/teams/search?page=1&perpage=50";
    let canonical_path = "/v1/teams?limit=50";
    println!("load: {seconds} s per run, {connections} connections, loopback, 50 teams per answer");
    let runs = [
        ("pass-through proxy", passthrough, vendor_path),
        ("teamgate, cache off", no_cache, canonical_path),
        ("teamgate, cache on", cached, canonical_path),
    ];
    let mut results = Vec::new();
    for (name, addr, path) in runs {
        let url = format!("http://{addr}{path}");
        let result = match wrk(&url, seconds, connections) {
            Some(r) => r,
            None => in_process(&url, seconds, connections).await,
        };
        println!("{name:<22} {:>9.0} req/s   {}", result.rps, result.detail);
        results.push((name, result.rps));
    }
    let base = results[0].1;
    for (name, rps) in &results[1..] {
        println!("{name:<22} {:.2}x the pass-through throughput", rps / base);
    }
    drop(upstream);
}

struct LoadResult {
    rps: f64,
    detail: String,
}

/// Runs wrk if it is installed; `None` otherwise.
fn wrk(url: &str, seconds: u64, connections: u64) -> Option<LoadResult> {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    let latency = |pct: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(pct))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(|l| format!(", {}", l.trim()))
        .unwrap_or_default();
    Some(LoadResult {
        rps,
        detail: format!(
            "(wrk) p50 {} p99 {}{non_2xx}",
            latency("50%"),
            latency("99%")
        ),
    })
}

/// A bounded closed-loop load from this process, when wrk is missing.
async fn in_process(url: &str, seconds: u64, connections: u64) -> LoadResult {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, done, failed, url) = (
            client.clone(),
            done.clone(),
            failed.clone(),
            url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let request = Request::get(url.as_str())
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                match client.request(request).await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.into_body().collect().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    LoadResult {
        rps: done.load(Ordering::Relaxed) as f64 / seconds as f64,
        detail: format!(
            "(in-process client; wrk not installed) {} failed",
            failed.load(Ordering::Relaxed)
        ),
    }
}

async fn spawn_teamgate(upstream: &str, cache: bool) -> SocketAddr {
    std::env::set_var("TEAMGATE_BENCH_CREDENTIAL", CREDENTIAL);
    let config = format!(
        "default_backend = \"g\"\n[cache]\nenabled = {cache}\n[backends.g]\nmapping = \"{}/mappings/grafana.toml\"\nbase_url = \"{upstream}\"\ncredential_env = \"TEAMGATE_BENCH_CREDENTIAL\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let checked = teamgate::config::check_source(std::path::Path::new("bench.toml"), &config, &[])
        .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = teamgate::run(listener, checked, std::future::pending::<()>()).await;
    });
    addr
}

/// Forwards every request to the upstream as it is, adding the credential: the cost of a
/// proxy that translates nothing.
async fn spawn_passthrough(upstream: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let client = client.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let client = client.clone();
                        async move {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/")
                                .to_string();
                            let forward = Request::builder()
                                .method(req.method().clone())
                                .uri(format!("http://{upstream}{path}"))
                                .header("authorization", format!("Bearer {CREDENTIAL}"))
                                .body(Full::new(
                                    req.into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default(),
                                ))
                                .unwrap();
                            let response = match client.request(forward).await {
                                Ok(r) => {
                                    let (parts, body) = r.into_parts();
                                    let bytes = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    Response::from_parts(parts, Full::new(bytes))
                                }
                                Err(_) => Response::builder()
                                    .status(502)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
