//! Mapping reload: a changed mapping is swapped in; one that does not check leaves the old
//! mappings in service. In-process through `Reloader`, and through `SIGHUP` on the binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

/// A config directory with a copy of the flashcat mapping; `target` says where the vendor is
/// (`simulator = ...` for the binary, `base_url = ...` for an in-process app).
fn workspace(tag: &str, target: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teamgate-reload-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/flashcat.toml"),
    )
    .unwrap();
    std::fs::write(dir.join("flashcat.toml"), mapping).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("default_backend = \"f\"\n[backends.f]\nmapping = \"flashcat.toml\"\n{target}\n"),
    )
    .unwrap();
    dir
}

fn set_name_max(dir: &Path, limit: &str) {
    let path = dir.join("flashcat.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("name_max = ").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    std::fs::write(
        &path,
        format!("{}name_max = {limit}{}", &text[..start], &text[end..]),
    )
    .unwrap();
}

/// `/readyz`: the configuration hash, and the mapping digest of backend `f`.
async fn ready(base: &str) -> (String, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .get(format!("{base}/readyz").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let hash = body["config_hash"].as_str().unwrap().to_string();
    let digest = body["backends"]["f"]["mapping_digest"].as_str().unwrap();
    (hash, digest.to_string())
}

async fn cache_status(base: &str, path: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .get(format!("{base}{path}").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn create(base: &str, name: &str) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("{base}/v1/teams"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "name": name }).to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_good_mappings_in_and_keeps_the_old_on_failure() {
    let credential = "reload-test-credential";
    let sim = teamgate_sim::spawn_local(teamgate_sim::new_vendor("flashcat", credential).unwrap())
        .await
        .unwrap();
    std::env::set_var("TEAMGATE_TEST_RELOAD_CREDENTIAL", credential);
    let dir = workspace(
        "inproc",
        &format!(
            "base_url = \"{}\"\ncredential_env = \"TEAMGATE_TEST_RELOAD_CREDENTIAL\"",
            sim.base_url()
        ),
    );
    let checked = teamgate::config::check(&dir.join("config.toml"), &[]).unwrap();
    let app = teamgate::App::build(checked).await.unwrap();
    let reloader = app.reloader(dir.join("config.toml"));
    let metrics = app.metrics.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(app.serve(listener, std::future::pending::<()>()));

    assert_eq!(create(&base, "eleven-char").await, 201);
    let (first_hash, _) = ready(&base).await;
    assert_eq!(
        cache_status(&base, "/v1/teams?limit=5").await,
        "teamgate; fwd=miss"
    );
    assert_eq!(
        cache_status(&base, "/v1/teams?limit=5").await,
        "teamgate; hit"
    );
    set_name_max(&dir, "10");
    assert_eq!(reloader.reload().unwrap(), 1);
    let (second_hash, digest) = ready(&base).await;
    assert_ne!(
        first_hash, second_hash,
        "/readyz names the new configuration"
    );
    assert!(!digest.is_empty());
    assert!(
        metrics
            .render()
            .contains(&format!("teamgate_config_info{{hash=\"{second_hash}\"}} 1")),
        "the gauge names the configuration in service"
    );
    assert_eq!(
        cache_status(&base, "/v1/teams?limit=5").await,
        "teamgate; fwd=miss",
        "answers read through the old mapping are dropped"
    );
    assert_eq!(
        create(&base, "eleven-chr2").await,
        400,
        "the new limit applies"
    );
    assert_eq!(create(&base, "ten-chars!").await, 201);

    set_name_max(&dir, "\"ten\"");
    let errors = reloader.reload().expect_err("a broken mapping is refused");
    assert_eq!(metrics.reloads(false), 1, "the failed reload is counted");
    assert_eq!(metrics.reloads(true), 1);
    assert_eq!(
        ready(&base).await.0,
        second_hash,
        "the configuration in service did not change"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.file.ends_with("flashcat.toml") && e.line > 0),
        "{errors:?}"
    );
    assert_eq!(
        create(&base, "eleven-chr3").await,
        400,
        "the old (reloaded) mapping stays"
    );
    assert_eq!(create(&base, "ten-chars2").await, 201);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = workspace("sighup", "simulator = \"flashcat\"");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["serve", "--config"])
        .arg(dir.join("config.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let _guard = Guard(child);
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        if client
            .get(format!("{base}/healthz").parse().unwrap())
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "teamgate did not start");
    assert_eq!(create(&base, "eleven-char").await, 201);
    set_name_max(&dir, "10");
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let mut applied = false;
    for i in 0..50 {
        if create(&base, &format!("eleven-ch{i:02}")).await == 400 {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(applied, "SIGHUP did not reload the mapping within 5 s");
    let _ = std::fs::remove_dir_all(&dir);
}
