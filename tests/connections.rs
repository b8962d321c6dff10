//! Connection hygiene, over raw TCP against the real server: slow or idle clients cannot take
//! the proxy down. A body trickled at a byte at a time holds no concurrency slot (and times
//! out with 408); probes and metrics are never shed; header reads and idle keep-alive
//! connections time out; past the connection cap new connections wait while open ones are
//! served; a declared oversized body is refused before any `100 Continue`.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(h: &support::Harness) -> String {
    h.base.trim_start_matches("http://").to_string()
}

/// Reads until the connection closes or `limit` passes; what arrived, and whether it closed.
async fn read_for(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&seen).into_owned(), false);
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
    }
}

/// Reads one whole response head and its `Content-Length` body.
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

async fn get(stream: &mut TcpStream, path: &str) -> Option<String> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\nteamgate-backend: grafana\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(stream, Duration::from_secs(3)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_hold_no_slot_and_probes_are_never_shed() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nconcurrency_limit = 4\nbody_timeout_ms = 2500",
    )
    .await;
    // Twice the concurrency limit in clients trickling a body, a byte every 200 ms.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(addr(&h)).await.unwrap();
        stream
            .write_all(b"POST /v1/teams HTTP/1.1\r\nhost: t\r\nteamgate-backend: grafana\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
            read_for(&mut stream, Duration::from_secs(5)).await.0
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for path in ["/v1/teams?limit=5", "/healthz", "/readyz", "/metrics"] {
        let started = Instant::now();
        let a = h.get("grafana", path).await;
        assert_eq!(
            a.status, 200,
            "{path} while slow bodies trickle: {}",
            a.text
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{path} waited");
    }
    for client in slow {
        let answer = client.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a body past its timeout: {answer:?}"
        );
        assert!(answer.contains("request_timeout"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_concurrency_limit_requests_are_shed_with_retry_after_but_probes_answer() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nconcurrency_limit = 1\n[cache]\nenabled = false",
    )
    .await;
    h.sim("grafana")
        .set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_millis(
            1500,
        ))));
    let busy = {
        let base = h.base.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(base.trim_start_matches("http://"))
                .await
                .unwrap();
            get(&mut stream, "/v1/teams?limit=5").await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = h.get("grafana", "/v1/teams?limit=6").await;
    assert_eq!(shed.status, 503, "{}", shed.text);
    assert_eq!(shed.headers["retry-after"], "1");
    assert!(
        h.metrics.render().contains(
            "teamgate_requests_total{backend=\"none\",operation=\"unrouted\",status=\"503\"} 1"
        ),
        "a shed request is counted"
    );
    assert_eq!(h.get("grafana", "/healthz").await.status, 200);
    assert_eq!(h.get("grafana", "/metrics").await.status, 200);
    let first = busy
        .await
        .unwrap()
        .expect("the request in its slot is answered");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nheader_read_timeout_ms = 600",
    )
    .await;
    // Says nothing at all.
    let mut silent = TcpStream::connect(addr(&h)).await.unwrap();
    // Trickles its headers, a byte every 150 ms.
    let mut trickle = TcpStream::connect(addr(&h)).await.unwrap();
    let trickling = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nhost: t\r\n".iter() {
            if trickle.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        read_for(&mut trickle, Duration::from_secs(3)).await
    });
    // Asks once, then stays open without asking again.
    let mut idle = TcpStream::connect(addr(&h)).await.unwrap();
    let first = get(&mut idle, "/healthz").await.expect("answered");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    let (_, closed) = read_for(&mut silent, Duration::from_secs(3)).await;
    assert!(
        closed,
        "a silent connection is closed after the header timeout"
    );
    let (_, closed) = read_for(&mut idle, Duration::from_secs(3)).await;
    assert!(closed, "an idle keep-alive connection is closed");
    let (answer, closed) = trickling.await.unwrap();
    assert!(closed, "a trickling header is cut off: {answer:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_while_open_ones_are_served() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nmax_connections = 3\nheader_read_timeout_ms = 30000",
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr(&h)).await.unwrap();
        let answer = get(&mut stream, "/healthz").await.expect("answered");
        assert!(answer.starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    let mut waiting = TcpStream::connect(addr(&h)).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut waiting, Duration::from_millis(700)).await,
        None,
        "the fourth connection waits"
    );
    let again = get(&mut open[0], "/v1/teams?limit=2")
        .await
        .expect("served");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    drop(open.pop());
    let answer = read_response(&mut waiting, Duration::from_secs(3))
        .await
        .expect("served once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversized_body_is_refused_before_any_100_continue() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nmax_body_bytes = 4096",
    )
    .await;
    let mut stream = TcpStream::connect(addr(&h)).await.unwrap();
    stream
        .write_all(b"POST /v1/teams HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\nexpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut stream, Duration::from_secs(3))
        .await
        .expect("answered without sending the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(h.sim("grafana").request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backend_sheds_only_its_own_traffic() {
    let h = support::start_configured(
        &[
            ("grafana", "grafana", "mappings/grafana.toml", ""),
            ("flashcat", "flashcat", "mappings/flashcat.toml", ""),
        ],
        "[server]\nconcurrency_limit = 6\n[cache]\nenabled = false",
    )
    .await;
    // Each backend may have half the process's slots in flight: 3.
    h.sim("grafana")
        .set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_millis(
            1500,
        ))));
    let mut stalled = Vec::new();
    for i in 0..5 {
        let base = h.base.clone();
        stalled.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(base.trim_start_matches("http://"))
                .await
                .unwrap();
            get(&mut stream, &format!("/v1/teams?limit={}", i + 1)).await
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let other = h.get("flashcat", "/v1/teams?limit=5").await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert!(started.elapsed() < Duration::from_secs(1), "not held up");
    let mut statuses = Vec::new();
    for request in stalled {
        let answer = request.await.unwrap().expect("answered");
        statuses.push(answer[9..12].to_string());
        if answer.starts_with("HTTP/1.1 503") {
            assert!(
                answer.to_ascii_lowercase().contains("retry-after: 1"),
                "{answer}"
            );
            assert!(answer.contains("backend `grafana`"), "{answer}");
        }
    }
    statuses.sort();
    assert_eq!(statuses, ["200", "200", "200", "503", "503"]);
    assert!(
        h.metrics
            .render()
            .contains("teamgate_backend_shed_total{backend=\"grafana\"} 2"),
        "shed calls are counted by backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_is_given_a_rest_then_probed_back() {
    let h = support::start_configured(
        &[(
            "grafana",
            "grafana",
            "mappings/grafana.toml",
            "breaker_failures = 3\nbreaker_open_ms = 400\ncache_ttl_ms = 1",
        )],
        "",
    )
    .await;
    let sim = h.sim("grafana");
    sim.set_fault(Some(teamgate_sim::Fault::Status(500)));
    for _ in 0..3 {
        let a = h.get("grafana", "/v1/teams?limit=3").await;
        assert_eq!(a.status, 502, "the vendor's own failure: {}", a.text);
    }
    sim.clear_log();
    let refused = h.get("grafana", "/v1/teams?limit=3").await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(refused.text.contains("circuit"), "{}", refused.text);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(sim.request_count(), 0, "an open circuit sends nothing");
    sim.set_fault(None);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let probe = h.get("grafana", "/v1/teams?limit=3").await;
    assert_eq!(
        probe.status, 200,
        "the probe finds the vendor back: {}",
        probe.text
    );
    assert_eq!(h.get("grafana", "/v1/teams?limit=4").await.status, 200);
    assert!(h
        .metrics
        .render()
        .contains("teamgate_circuit_refused_total{backend=\"grafana\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_cut_short_by_the_request_timeout_does_not_jam_the_circuit() {
    let h = support::start_configured(
        &[(
            "grafana",
            "grafana",
            "mappings/grafana.toml",
            "breaker_failures = 1\nbreaker_open_ms = 200\ncache_ttl_ms = 1",
        )],
        "[server]\nrequest_timeout_ms = 300",
    )
    .await;
    let sim = h.sim("grafana");
    sim.set_fault(Some(teamgate_sim::Fault::Status(500)));
    assert_eq!(h.get("grafana", "/v1/teams?limit=1").await.status, 502);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The probe: the vendor stalls past the request timeout.
    sim.set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_secs(2))));
    let probe = h.get("grafana", "/v1/teams?limit=2").await;
    assert_eq!(probe.status, 504, "{}", probe.text);
    sim.set_fault(None);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let next = h.get("grafana", "/v1/teams?limit=3").await;
    assert_eq!(next.status, 200, "the next probe runs: {}", next.text);
}

/// Callers that hang up while their calls wait on the vendor say nothing of the vendor: many
/// abandoned calls in a row leave the circuit closed (a load generator stopping with 64
/// requests in flight used to open it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_hanging_up_mid_call_do_not_open_the_circuit() {
    let h = support::start_configured(
        &[(
            "grafana",
            "grafana",
            "mappings/grafana.toml",
            "breaker_failures = 2\nbreaker_open_ms = 60000\ncache_ttl_ms = 1",
        )],
        "",
    )
    .await;
    let sim = h.sim("grafana");
    sim.set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_millis(
        400,
    ))));
    for i in 0..6 {
        let mut stream = TcpStream::connect(addr(&h)).await.unwrap();
        let request = format!(
            "GET /v1/teams?limit={} HTTP/1.1\r\nhost: x\r\nteamgate-backend: grafana\r\n\r\n",
            i + 1
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(stream);
    }
    // Every abandoned call has reached the vendor and been dropped by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sim.request_count() >= 6, "the calls reached the vendor");
    sim.set_fault(None);
    let after = h.get("grafana", "/v1/teams?limit=9").await;
    assert_eq!(
        after.status, 200,
        "the circuit stayed closed: {}",
        after.text
    );
    assert!(!h
        .metrics
        .render()
        .contains("teamgate_circuit_refused_total{backend=\"grafana\"} 1"));
}
