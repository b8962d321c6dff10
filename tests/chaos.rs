//! Chaos, per backend: several clients run thousands of random canonical writes while the
//! simulator injects random one-shot faults (resets before and after acting, unreadable
//! answers, 5xx, 429). Clients retry creates with an `Idempotency-Key`, as a careful client
//! would. Afterwards the vendor's state must be what the acknowledged answers imply: no
//! acknowledged write lost, none applied twice.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use teamgate_sim::Fault;

const CLIENTS: usize = 4;
const OPERATIONS_PER_CLIENT: usize = 500;

/// What a client knows of one of its teams from the answers it got.
#[derive(Default)]
struct Known {
    id: Option<String>,
    /// Acknowledged created (201) and not acknowledged deleted.
    exists: Option<bool>,
    /// Members by user id: Some(true) acknowledged added, Some(false) acknowledged removed,
    /// absent when an unacknowledged change may have happened.
    members: BTreeMap<String, bool>,
}

fn request(
    h: &support::Harness,
    backend: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> Request<http_body_util::Full<bytes::Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", h.base))
        .header("teamgate-backend", backend)
        .header("cache-control", "no-cache");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    let bytes = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            bytes::Bytes::from(v.to_string())
        }
        None => bytes::Bytes::new(),
    };
    builder.body(http_body_util::Full::new(bytes)).unwrap()
}

async fn client(
    h: Arc<support::Harness>,
    backend: &'static str,
    client: usize,
    users: Vec<String>,
) -> BTreeMap<String, Known> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64 * 7919 + 1);
    let mut teams: BTreeMap<String, Known> = BTreeMap::new();
    for op in 0..OPERATIONS_PER_CLIENT {
        let existing: Vec<String> = teams
            .iter()
            .filter(|(_, k)| k.exists == Some(true) && k.id.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let choice = rng.random_range(0..10);
        if existing.is_empty() || choice < 3 {
            // Create, retried with its key until an answer says what happened.
            let name = format!("c{client}-t{op}");
            let known = teams.entry(name.clone()).or_default();
            for _ in 0..4 {
                let a = h
                    .send(request(
                        &h,
                        backend,
                        Method::POST,
                        "/v1/teams",
                        Some(json!({ "name": name })),
                        Some(&name),
                    ))
                    .await;
                if a.status == 201 {
                    known.exists = Some(true);
                    known.id = a.body["id"].as_str().map(str::to_string);
                    break;
                }
            }
        } else if choice < 4 {
            let name = &existing[rng.random_range(0..existing.len())];
            let known = teams.get_mut(name).unwrap();
            let id = known.id.clone().unwrap();
            let a = h
                .send(request(
                    &h,
                    backend,
                    Method::DELETE,
                    &format!("/v1/teams/{id}"),
                    None,
                    None,
                ))
                .await;
            known.exists = match a.status.as_u16() {
                204 => Some(false),
                404 => known.exists,
                _ => None,
            };
        } else {
            let name = &existing[rng.random_range(0..existing.len())];
            let known = teams.get_mut(name).unwrap();
            let id = known.id.clone().unwrap();
            let user = users[rng.random_range(0..users.len())].clone();
            let add = rng.random_bool(0.6);
            let a = if add {
                h.send(request(
                    &h,
                    backend,
                    Method::POST,
                    &format!("/v1/teams/{id}/members"),
                    Some(json!({ "user_id": user })),
                    None,
                ))
                .await
            } else {
                h.send(request(
                    &h,
                    backend,
                    Method::DELETE,
                    &format!("/v1/teams/{id}/members/{user}"),
                    None,
                    None,
                ))
                .await
            };
            match (add, a.status.as_u16()) {
                (true, 200 | 201) => {
                    known.members.insert(user, true);
                }
                (false, 204) => {
                    known.members.insert(user, false);
                }
                // Not a member: the vendor says so, a fact as good as an acknowledgement.
                (false, 404) if a.text.contains("not a member") => {
                    known.members.insert(user, false);
                }
                _ => {
                    known.members.remove(&user);
                }
            }
        }
    }
    teams
}

async fn chaos(backend: &'static str) {
    // The circuit breaker is tested elsewhere; here it would refuse the final read-back.
    let mapping = format!("mappings/{backend}.toml");
    let h = Arc::new(
        support::start_configured(
            &[(
                backend,
                backend,
                mapping.as_str(),
                "breaker_failures = 10000",
            )],
            "",
        )
        .await,
    );
    let users: Vec<String> = h.get(backend, "/v1/users?limit=100").await.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .take(4)
        .collect();
    assert!(users.len() >= 2, "{backend}: people to add");
    let done = Arc::new(AtomicBool::new(false));
    let injector = {
        let (h, done) = (h.clone(), done.clone());
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let mut injected = 0u32;
            // Bounded: the clients end, or some minutes pass.
            for _ in 0..200_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                if rng.random_bool(0.5) {
                    let fault = match rng.random_range(0..6) {
                        0 => Fault::Status(503),
                        1 => Fault::Status(500),
                        2 => Fault::Reset,
                        3 => Fault::ResetAfterRead,
                        4 => Fault::TruncatedJson,
                        _ => Fault::RateLimitedNoRetryAfter,
                    };
                    h.sim(backend).set_fault_for(fault, 1);
                    injected += 1;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            injected
        })
    };
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(tokio::spawn(client(h.clone(), backend, c, users.clone())));
    }
    let mut known = BTreeMap::new();
    for c in clients {
        known.extend(c.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let injected = injector.await.unwrap();
    h.sim(backend).set_fault(None);
    assert!(
        injected > 50,
        "{backend}: faults were injected ({injected})"
    );

    // The vendor's state, read through the proxy without faults and without the cache.
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("/v1/teams?cursor={c}"),
            None => "/v1/teams?limit=100".to_string(),
        };
        let a = h
            .send(request(&h, backend, Method::GET, &path, None, None))
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        for team in a.body["teams"].as_array().unwrap() {
            let name = team["name"].as_str().unwrap().to_string();
            names
                .entry(name)
                .or_default()
                .push(team["id"].as_str().unwrap().to_string());
        }
        cursor = a.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let mut checked_members = 0;
    for (name, k) in &known {
        let found = names.get(name).map_or(0, Vec::len);
        assert!(
            found <= 1,
            "{backend}: team {name} was created {found} times"
        );
        match k.exists {
            Some(true) => assert_eq!(found, 1, "{backend}: acknowledged team {name} is lost"),
            Some(false) => assert_eq!(
                found, 0,
                "{backend}: acknowledged deletion of {name} undone"
            ),
            None => {}
        }
        if k.exists != Some(true) || found != 1 {
            continue;
        }
        let id = &names[name][0];
        let a = h
            .send(request(
                &h,
                backend,
                Method::GET,
                &format!("/v1/teams/{id}/members"),
                None,
                None,
            ))
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        let present: BTreeSet<String> = a.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["user_id"].as_str().map(str::to_string))
            .collect();
        for (user, member) in &k.members {
            assert_eq!(
                present.contains(user),
                *member,
                "{backend}: team {name}: acknowledged {} of {user} not in the vendor's state",
                if *member { "addition" } else { "removal" }
            );
            checked_members += 1;
        }
    }
    let acknowledged = known.values().filter(|k| k.exists.is_some()).count();
    println!(
        "{backend}: {} operations, {injected} faults injected, {acknowledged} teams with a known outcome, {checked_members} member facts checked",
        CLIENTS * OPERATIONS_PER_CLIENT
    );
    assert!(
        acknowledged > 100,
        "{backend}: enough acknowledged writes to mean something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_grafana() {
    chaos("grafana").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_flashcat() {
    chaos("flashcat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_jsonapi() {
    chaos("jsonapi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_opsgenie() {
    chaos("opsgenie").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_squadcast() {
    chaos("squadcast").await;
}
