//! Two-step auth (declared in the Squadcast mapping): access tokens are fetched with the
//! refresh token, cached, renewed once on a 401, and never shown in answers or logs.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use support::start;

/// Everything the process logs, at debug level, for the "never in the logs" assertions.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || Capture(writer.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn token_fetches(h: &support::Harness) -> usize {
    h.sim("squadcast")
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth/access-token"))
        .count()
}

/// The access tokens the vendor saw, from the Authorization headers in its log.
fn tokens_seen(h: &support::Harness) -> Vec<String> {
    let mut tokens: Vec<String> = h
        .sim("squadcast")
        .requests()
        .iter()
        .filter_map(|r| {
            r.header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_string)
        })
        .collect();
    tokens.dedup();
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_is_fetched_once_and_reused() {
    let logs = captured_logs();
    let h = start(&["squadcast"]).await;
    for name in ["One", "Two", "Three"] {
        h.create_team("squadcast", name).await;
    }
    h.get("squadcast", "/v1/teams").await;
    assert_eq!(token_fetches(&h), 1, "one token for many calls");
    let fetch = h
        .sim("squadcast")
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/oauth/access-token"))
        .unwrap();
    assert_eq!(fetch.header("x-refresh-token"), Some(support::CREDENTIAL));
    assert_eq!(fetch.method, "GET");
    let tokens = tokens_seen(&h);
    assert_eq!(tokens.len(), 1);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        !text.contains(&tokens[0]),
        "the access token is in the logs"
    );
    assert!(
        !text.contains(support::CREDENTIAL),
        "the refresh token is in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once_and_the_call_retried() {
    let logs = captured_logs();
    let h = start(&["squadcast"]).await;
    let id = h.create_team("squadcast", "Before").await;
    assert_eq!(token_fetches(&h), 1);
    // The vendor forgets every token it issued (as when they expire early).
    assert!(h.sim("squadcast").set_switch("revoke_tokens", true));
    h.sim("squadcast").clear_log();
    let a = h.get("squadcast", &format!("/v1/teams/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let log = h.sim("squadcast").requests();
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    // Then the people lookup that fills in the members' emails, with the new token.
    assert_eq!(
        log.len(),
        4,
        "refused call, one refresh, one retry, the people lookup: {paths:?}"
    );
    assert!(log[1].path.ends_with("/oauth/access-token"));
    assert_eq!(log[0].path, log[2].path);
    assert_eq!(log[3].path, "/v3/users");
    assert_eq!(
        log[3].header("authorization"),
        log[2].header("authorization")
    );
    assert_ne!(
        log[0].header("authorization"),
        log[2].header("authorization"),
        "the retry carries the new token"
    );
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("Access token refused"),
        "the logs are captured"
    );
    for token in tokens_seen(&h) {
        assert!(!text.contains(&token), "a token is in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_refresh_token_is_an_upstream_error_without_secrets() {
    let logs = captured_logs();
    let h = start(&["squadcast"]).await;
    assert!(h.sim("squadcast").set_switch("reject_refresh", true));
    let a = h
        .post("squadcast", "/v1/teams", json!({ "name": "Nope" }))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (502, "upstream_error"),
        "{}",
        a.text
    );
    assert_eq!(a.body["upstream"]["status"], 401);
    assert!(!a.text.contains(support::CREDENTIAL));
    assert_eq!(
        token_fetches(&h),
        1,
        "no retry loop on a refused refresh token"
    );
    assert!(
        h.sim("squadcast")
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/v3/teams")),
        "no team call without a token"
    );
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        !text.contains(support::CREDENTIAL),
        "the refresh token is in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_still_refused_after_refresh_is_not_retried_again() {
    let h = start(&["squadcast"]).await;
    h.create_team("squadcast", "Warm").await;
    assert!(h.sim("squadcast").set_switch("expire_tokens", true));
    h.sim("squadcast").clear_log();
    let a = h.get("squadcast", "/v1/teams").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (502, "upstream_error"),
        "{}",
        a.text
    );
    assert_eq!(
        h.sim("squadcast").request_count(),
        3,
        "one refresh, one retry, then the error"
    );
}

/// A vendor whose access tokens live 120 s: teamgate renews 60 s before expiry, so a call at
/// 61 s fetches a new token first. No network: a scripted transport, tokio's clock paused.
#[tokio::test(start_paused = true)]
async fn a_token_is_renewed_shortly_before_it_expires() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use teamgate::upstream::{Upstream, UpstreamRequest, UpstreamResponse};

    #[derive(Default)]
    struct Vendor {
        token_fetches: AtomicUsize,
        calls: AtomicUsize,
    }
    impl Vendor {
        fn answer(&self, request: UpstreamRequest) -> UpstreamResponse {
            let body = if request.url.contains("/oauth/access-token") {
                let n = self.token_fetches.fetch_add(1, Ordering::SeqCst);
                json!({ "data": { "access_token": format!("token-{n}"), "issued_at": 1000, "expires_at": 1120, "refresh_token": "r", "type": "Bearer" } })
            } else {
                self.calls.fetch_add(1, Ordering::SeqCst);
                json!({ "data": [] })
            };
            json_answer(body)
        }
    }
    let vendor = Arc::new(Vendor::default());
    let answering = vendor.clone();
    let upstream = Upstream::new(tower::service_fn(move |request| {
        let answer = answering.answer(request);
        async move { Ok(answer) }
    }));
    let backend = squadcast_backend("refresh", upstream);
    let mut list =
        teamgate::canonical::CanonicalRequest::new(teamgate::canonical::Operation::ListTeams);
    list.page = Some(teamgate::canonical::PageRequest {
        limit: 10,
        offset: 0,
    });
    backend.execute(&list).await.unwrap();
    tokio::time::advance(std::time::Duration::from_secs(59)).await;
    backend.execute(&list).await.unwrap();
    assert_eq!(
        vendor.token_fetches.load(Ordering::SeqCst),
        1,
        "still valid at 59 s"
    );
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    backend.execute(&list).await.unwrap();
    assert_eq!(
        vendor.token_fetches.load(Ordering::SeqCst),
        2,
        "renewed at 61 s, before the 120 s expiry"
    );
    assert_eq!(vendor.calls.load(Ordering::SeqCst), 3);
}

/// Tokens are kept per credential slot: while one tenant's token endpoint hangs, another
/// tenant (a different forwarded credential) gets its token and its answer. With one lock
/// over every slot, the second tenant would wait for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_slow_token_refresh_never_blocks_another_tenant() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use teamgate::call::Secret;
    use teamgate::upstream::{Upstream, UpstreamRequest};

    let release = Arc::new(tokio::sync::Notify::new());
    let token_fetches = Arc::new(AtomicUsize::new(0));
    let (gate, fetches) = (release.clone(), token_fetches.clone());
    let upstream = Upstream::new(tower::service_fn(move |request: UpstreamRequest| {
        let (gate, fetches) = (gate.clone(), fetches.clone());
        async move {
            let body = if request.url.contains("/oauth/access-token") {
                fetches.fetch_add(1, Ordering::SeqCst);
                let tenant = request.headers["x-refresh-token"].to_str().unwrap();
                if tenant == "slow-tenant" {
                    gate.notified().await;
                }
                json!({ "data": { "access_token": format!("token-of-{tenant}"), "issued_at": 1000, "expires_at": 4600 } })
            } else {
                json!({ "data": [] })
            };
            Ok(json_answer(body))
        }
    }));
    let backend = Arc::new(squadcast_backend("configured", upstream));
    let mut list =
        teamgate::canonical::CanonicalRequest::new(teamgate::canonical::Operation::ListTeams);
    list.page = Some(teamgate::canonical::PageRequest {
        limit: 10,
        offset: 0,
    });
    let slow = {
        let (backend, list) = (backend.clone(), list.clone());
        tokio::spawn(async move {
            backend
                .execute_as(&list, Secret::new("slow-tenant".into()))
                .await
        })
    };
    // The slow tenant is inside its token fetch before the other one starts.
    for _ in 0..200 {
        if token_fetches.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(token_fetches.load(Ordering::SeqCst), 1);
    let fast = tokio::time::timeout(
        Duration::from_secs(5),
        backend.execute_as(&list, Secret::new("fast-tenant".into())),
    )
    .await
    .expect("the other tenant is not blocked by the slow refresh");
    assert_eq!(fast.unwrap().status, 200);
    assert!(!slow.is_finished(), "the slow tenant is still waiting");
    release.notify_one();
    let slow = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slow.unwrap().status, 200);
    assert_eq!(token_fetches.load(Ordering::SeqCst), 2);
}

/// A 200 answer with a JSON body, from a scripted vendor.
fn json_answer(body: serde_json::Value) -> teamgate::upstream::UpstreamResponse {
    teamgate::upstream::UpstreamResponse {
        status: 200,
        headers: Default::default(),
        body: body.to_string().into(),
    }
}

/// The Squadcast mapping on a scripted vendor, with `credential` as its refresh token.
fn squadcast_backend(
    credential: &str,
    upstream: teamgate::upstream::Upstream,
) -> teamgate::mapping::engine::Backend {
    let mapping =
        teamgate::mapping::Mapping::load(&support::repo_root().join("mappings/squadcast.toml"))
            .unwrap();
    teamgate::mapping::engine::Backend::new(
        "s".into(),
        Arc::new(mapping),
        "http://vendor.invalid",
        teamgate::call::Secret::new(credential.into()),
        Default::default(),
        upstream,
        Arc::new(teamgate::metrics::Metrics::new()),
    )
}
