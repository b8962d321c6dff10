//! The per-request cost of the fleet features (issue 13): get_team through one replica,
//! cache hit and cache miss, without `[fleet]` and with `[fleet]` on a `redis-server` on
//! loopback (pub/sub invalidation, the vendor budget decided by the Redis script on every
//! vendor call). Also one Redis round trip (`PING`), what reading generations from Redis on
//! every hit would add. Sequential requests on one keep-alive connection; mean wall time per
//! request and this process's CPU time per request (everything runs in it but Redis).
//! Figures only, nothing asserted.
//!
//! Run: `cargo bench --bench fleet` (needs `redis-server`; `FLEET_REQUESTS=20000`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

const CREDENTIAL: &str = "bench-credential";

/// User + system CPU seconds of this process (Linux `/proc/self/stat`, clock ticks of 10 ms
/// on common kernels: only meaningful over thousands of requests).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn replica(sim_url: &str, top: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    std::env::set_var("TEAMGATE_BENCH_FLEET_CREDENTIAL", CREDENTIAL);
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndefault_backend = \"g\"\n{top}\n[backends.g]\nmapping = \"mappings/grafana.toml\"\nbase_url = \"{sim_url}\"\ncredential_env = \"TEAMGATE_BENCH_FLEET_CREDENTIAL\"\ncache_ttl_ms = 600000\n"
    );
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let checked = teamgate::config::check_source(&root.join("bench.toml"), &config, &[])
        .expect("config checks");
    let app = teamgate::App::build(checked).await.expect("app builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    (base, stop)
}

async fn measure(base: &str, path: &str, miss: bool, n: usize) -> (f64, f64) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let send = || {
        let mut b = Request::get(format!("{base}{path}"));
        if miss {
            b = b.header("cache-control", "no-cache");
        }
        let request = b.body(Full::new(Bytes::new())).unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
        }
    };
    for _ in 0..500 {
        send().await;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        send().await;
    }
    let wall = t0.elapsed().as_secs_f64() / n as f64;
    let cpu = (cpu_seconds() - c0) / n as f64;
    (wall * 1e6, cpu * 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("FLEET_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("teamgate-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => {
            eprintln!("redis-server not found: apt-get install -y redis-server");
            return;
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("redis://127.0.0.1:{port}/0");

    let sim = teamgate_sim::spawn_local(teamgate_sim::new_vendor("grafana", CREDENTIAL).unwrap())
        .await
        .unwrap();
    let (plain, _s1) = replica(&sim.base_url(), "").await;
    let fleet_top = format!(
        "[fleet]\nredis_url = \"{url}\"\n[fleet.budgets.g]\nrequests_per_second = 1000000\n"
    );
    let (fleet, _s2) = replica(&sim.base_url(), &fleet_top).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A team to read.
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let made = client
        .request(
            Request::post(format!("{plain}/v1/teams"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(b"{\"name\":\"bench\"}")))
                .unwrap(),
        )
        .await
        .unwrap();
    let body = made.into_body().collect().await.unwrap().to_bytes();
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/teams/{id}");

    // One Redis round trip on loopback.
    let redis_client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for _ in 0..1000 {
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    }
    let ping_wall = t0.elapsed().as_secs_f64() / n as f64 * 1e6;
    let ping_cpu = (cpu_seconds() - c0) / n as f64 * 1e6;

    println!(
        "| case | without [fleet] wall / CPU (us/req) | with [fleet] + Redis wall / CPU (us/req) |"
    );
    println!("|---|---|---|");
    for (name, miss) in [
        ("get_team, cache hit", false),
        ("get_team, cache miss (bypass)", true),
    ] {
        // Interleaved twice; the better round of each.
        let mut best = [(f64::MAX, f64::MAX); 2];
        for _ in 0..2 {
            for (i, base) in [&plain, &fleet].into_iter().enumerate() {
                let (w, c) = measure(base, &path, miss, n).await;
                best[i] = (best[i].0.min(w), best[i].1.min(c));
            }
        }
        println!(
            "| {name} | {:.1} / {:.1} | {:.1} / {:.1} |",
            best[0].0, best[0].1, best[1].0, best[1].1
        );
    }
    println!("| one Redis PING (client side) | | {ping_wall:.1} / {ping_cpu:.1} |");
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
