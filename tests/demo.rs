//! The README's first command: `teamgate serve` with the shipped `config.toml` serves every
//! backend from embedded simulators, with nothing else running.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// Stops the child we started, whatever happens in the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_config_serves_every_backend_from_simulators() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--config",
            "config.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("TEAMGATE_GRAFANA_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Guard(child);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let base = format!("http://127.0.0.1:{port}");
    let call = |method: &str, path: &str, backend: &str, body: Option<Value>| {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("teamgate-backend", backend);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            ))
        }
    };
    // Wait (bounded) for the server to come up.
    let mut up = false;
    for _ in 0..100 {
        if let Ok((200, _)) = call("GET", "/healthz", "grafana", None).await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "teamgate did not start within 10 s");
    let (status, backends) = call("GET", "/v1/backends", "grafana", None).await.unwrap();
    assert_eq!(status, 200);
    let names: Vec<&str> = backends["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "flashcat",
            "grafana",
            "jsonapi",
            "opsgenie",
            "pagerduty",
            "squadcast"
        ]
    );
    for backend in names {
        let (status, team) = call(
            "POST",
            "/v1/teams",
            backend,
            Some(json!({ "name": "Demo" })),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{backend}: {team}");
        let (status, users) = call("GET", "/v1/users?email=ada@example.com", backend, None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{backend}: {users}");
        assert_eq!(
            users["users"].as_array().unwrap().len(),
            1,
            "{backend}: {users}"
        );
    }
}
