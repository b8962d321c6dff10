//! Readiness and graceful drain, through the real binary: on SIGTERM `/readyz` turns 503 at
//! once, requests are still served during the grace, then the listener closes; requests in
//! flight finish with their answers and the process exits 0.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const CREDENTIAL: &str = "lifecycle-credential";

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

/// A fresh client per call: a new connection, so a closed listener shows.
async fn get(base: &str, path: &str) -> Result<(u16, Value), String> {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Full<Bytes>>();
    let response = client
        .get(format!("{base}{path}").parse().unwrap())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let sim = teamgate_sim::spawn_local(teamgate_sim::new_vendor("grafana", CREDENTIAL).unwrap())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("teamgate-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_backend = \"g\"\n[cache]\nenabled = false\n[server]\ndrain_grace_ms = 1500\nshutdown_timeout_ms = 20000\n[backends.g]\nmapping = \"{}/mappings/grafana.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_LIFECYCLE_CREDENTIAL\"\n",
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
        .env("TEAMGATE_LIFECYCLE_CREDENTIAL", CREDENTIAL)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut guard = Guard(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if matches!(get(&base, "/readyz").await, Ok((200, _))) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "teamgate did not become ready");
    let (_, ready) = get(&base, "/readyz").await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["config_hash"].as_str().unwrap().len(), 16, "{ready}");
    assert_eq!(ready["backends"]["g"]["state"], "ready");

    // 50 requests that each take 3 s at the vendor are in flight when SIGTERM comes.
    sim.set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_secs(3))));
    let mut in_flight = Vec::new();
    for _ in 0..50 {
        let base = base.clone();
        in_flight.push(tokio::spawn(async move {
            get(&base, "/v1/teams?limit=5").await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // During the grace: not ready, but still answering on new connections.
    let (status, body) = get(&base, "/readyz").await.expect("still listening");
    assert_eq!((status, body["status"].as_str()), (503, Some("draining")));
    assert_eq!(get(&base, "/healthz").await.unwrap().0, 200);

    // After the grace the listener is closed: new connections are refused.
    tokio::time::sleep(Duration::from_millis(1700).saturating_sub(signalled.elapsed())).await;
    let refused = get(&base, "/healthz").await;
    assert!(
        refused.is_err(),
        "a new connection after the grace: {refused:?}"
    );

    for request in in_flight {
        let (status, body) = request
            .await
            .unwrap()
            .expect("an in-flight request is answered");
        assert_eq!(status, 200, "{body}");
    }
    let mut child = guard.0.take().unwrap();
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("teamgate did not exit after draining")
    });
    assert!(status.success(), "exit status {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
