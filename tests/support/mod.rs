//! Test support: start vendor simulators and a proxy in front of them on loopback ports,
//! and talk to the proxy over real HTTP.

#![allow(dead_code)]

pub mod cache_fill;

pub mod openapi;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use teamgate::metrics::Metrics;
use teamgate_sim::{self as sim, SimHandle};
use tokio::sync::oneshot;

/// The credential every test simulator accepts; handed to the proxy through the environment.
pub const CREDENTIAL: &str = "test-credential-9f8e7d";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A proxy with one simulator per backend.
pub struct Harness {
    pub base: String,
    pub sims: BTreeMap<String, SimHandle>,
    pub metrics: Arc<Metrics>,
    client: Client<HttpConnector, Full<Bytes>>,
    _stop: oneshot::Sender<()>,
}

impl Drop for Harness {
    /// Nor does any metric, whatever the test did.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                !self.metrics.render().contains(CREDENTIAL),
                "the vendor credential in /metrics"
            );
        }
    }
}

/// An answer from the proxy.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Starts one simulator per backend name (named as its kind, with `mappings/<kind>.toml`)
/// and a proxy in front of them.
pub async fn start(backends: &[&str]) -> Harness {
    let specs: Vec<(&str, &str, String)> = backends
        .iter()
        .map(|b| (*b, *b, format!("mappings/{b}.toml")))
        .collect();
    let specs: Vec<(&str, &str, &str)> =
        specs.iter().map(|(n, k, m)| (*n, *k, m.as_str())).collect();
    start_backends(&specs).await
}

/// Starts backends given as (name, simulator kind, mapping file).
pub async fn start_backends(backends: &[(&str, &str, &str)]) -> Harness {
    let with_extra: Vec<(&str, &str, &str, &str)> =
        backends.iter().map(|(n, k, m)| (*n, *k, *m, "")).collect();
    start_configured(&with_extra, "").await
}

/// Starts backends given as (name, simulator kind, mapping file, extra backend TOML lines),
/// with `top` (TOML tables such as `[cache]`) appended to the configuration.
pub async fn start_configured(backends: &[(&str, &str, &str, &str)], top: &str) -> Harness {
    let mut sims = BTreeMap::new();
    let mut config = String::from("listen = \"127.0.0.1:0\"\n");
    config.push_str(&format!("default_backend = \"{}\"\n", backends[0].0));
    config.push_str(top);
    config.push('\n');
    for (name, kind, mapping, extra) in backends {
        let vendor = sim::new_vendor(kind, CREDENTIAL).expect("known simulator");
        let handle = sim::spawn_local(vendor).await.expect("simulator starts");
        let var = format!(
            "TEAMGATE_TEST_{}_CREDENTIAL",
            name.to_uppercase().replace('-', "_")
        );
        std::env::set_var(&var, CREDENTIAL);
        config.push_str(&format!(
            "[backends.{name}]\nmapping = \"{mapping}\"\nbase_url = \"{}\"\ncredential_env = \"{var}\"\ntimeout_ms = 5000\n{extra}\n",
            handle.base_url()
        ));
        sims.insert(name.to_string(), handle);
    }
    let proxy = serve_config(&config).await;
    Harness {
        base: proxy.base,
        sims,
        metrics: proxy.metrics,
        client: Client::builder(TokioExecutor::new()).build_http(),
        _stop: proxy.stop,
    }
}

/// A proxy serving in process on a free loopback port; it stops when `stop` is dropped.
pub struct Served {
    pub base: String,
    pub metrics: Arc<Metrics>,
    pub stop: oneshot::Sender<()>,
}

/// Checks `config` (TOML text, paths relative to the repository) and serves it.
pub async fn serve_config(config: &str) -> Served {
    let checked =
        teamgate::config::check_source(&repo_root().join("test-config.toml"), config, &[])
            .unwrap_or_else(|e| panic!("config does not check: {e:?}"));
    let app = teamgate::App::build(checked).await.expect("app builds");
    let metrics = app.metrics.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    Served {
        base,
        metrics,
        stop,
    }
}

impl Harness {
    pub fn sim(&self, backend: &str) -> &SimHandle {
        &self.sims[backend]
    }

    /// Sends a request to the proxy. `path` is sent as written (already encoded).
    pub async fn call(
        &self,
        backend: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("teamgate-backend", backend);
        let bytes = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        self.send(builder.body(Full::new(bytes)).unwrap()).await
    }

    /// Sends a request to the proxy and checks the answer against the proxy's OpenAPI
    /// document (`openapi::check`): an answer the document does not describe fails the test.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Answer {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let response = self.client.request(request).await.expect("proxy answers");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        openapi::check(&method, &path, parts.status, &parts.headers, &bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // No answer, in any test, carries the vendor credential.
        let headers = format!("{:?}", parts.headers);
        assert!(
            !text.contains(CREDENTIAL) && !headers.contains(CREDENTIAL),
            "the vendor credential in an answer to {method} {path}: {text}"
        );
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    /// A GET with extra request headers.
    pub async fn get_with(&self, backend: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.base, path))
            .header("teamgate-backend", backend);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::new(Bytes::new())).unwrap())
            .await
    }

    pub async fn get(&self, backend: &str, path: &str) -> Answer {
        self.call(backend, Method::GET, path, None).await
    }

    pub async fn post(&self, backend: &str, path: &str, body: Value) -> Answer {
        self.call(backend, Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, backend: &str, path: &str, body: Value) -> Answer {
        self.call(backend, Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, backend: &str, path: &str) -> Answer {
        self.call(backend, Method::DELETE, path, None).await
    }

    /// Creates a team and returns its canonical id.
    pub async fn create_team(&self, backend: &str, name: &str) -> String {
        let a = self
            .post(backend, "/v1/teams", serde_json::json!({ "name": name }))
            .await;
        assert_eq!(a.status, 201, "create {name} on {backend}: {}", a.text);
        a.body["id"].as_str().expect("string id").to_string()
    }

    /// The backend's user id of a person, found by email through the canonical API.
    pub async fn user_id(&self, backend: &str, email: &str) -> String {
        let a = self.get(backend, &format!("/v1/users?email={email}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let users = a.body["users"].as_array().expect("users");
        assert_eq!(users.len(), 1, "exactly one user with {email}: {}", a.text);
        users[0]["id"].as_str().expect("string id").to_string()
    }

    /// The backend's description from `/v1/backends`.
    pub async fn describe(&self, backend: &str) -> Value {
        let a = self.get(backend, "/v1/backends").await;
        a.body["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == backend)
            .cloned()
            .expect("backend listed")
    }
}
