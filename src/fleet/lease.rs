//! Fleet-wide locks with a lease, and idempotency records shared through Redis.
//!
//! - [`Leases`]: `SET key token NX PX lease` to take a lock, a compare-and-delete script to
//!   give it back (only by its holder). A replica that dies holding a lock holds it for
//!   `lock_lease_ms` at most (keep it above `request_timeout_ms`, which bounds the vendor work
//!   done under a lock). Used for per-team read-modify-write (`mapping::engine::locks`) and
//!   for one request at a time per idempotency key.
//! - [`SharedKeys`]: what an idempotency key's first request came to (an answer, or
//!   "outcome unknown"), kept in Redis for the idempotency window so another replica answers
//!   the retry. A refusal by the vendor (4xx) is kept by the replica that saw it only: the
//!   vendor refuses the retry the same way.
//!
//! Redis down or failing: the lock is taken in process only (the replica's own mutex is
//! always taken first), and records are kept in process only; nothing fails.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::Link;
use crate::canonical::CanonicalResponse;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The first wait between two tries for a held lock; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MAX: Duration = Duration::from_millis(100);

/// Fleet-wide locks under one prefix.
#[derive(Clone)]
pub struct Leases {
    link: Arc<Link>,
    prefix: String,
    lease: Duration,
    release: Arc<redis::Script>,
}

/// A fleet-wide lock held; given back when dropped (or when its lease ends).
pub struct Lease {
    link: Arc<Link>,
    key: String,
    token: String,
    release: Arc<redis::Script>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = self.link.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        let release = self.release.clone();
        runtime.spawn(async move {
            let mut invocation = release.prepare_invoke();
            invocation.key(&key).arg(&token);
            let _: Option<i64> = link
                .run("lock", |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                })
                .await;
        });
    }
}

impl Leases {
    pub(super) fn new(link: Arc<Link>, prefix: String, lease: Duration) -> Leases {
        Leases {
            link,
            prefix,
            lease,
            release: Arc::new(redis::Script::new(RELEASE)),
        }
    }

    /// Takes the lock `name` (waiting while another replica holds it, until `deadline` or,
    /// without one, one lease); `None` when Redis is down or failed, or the wait ran out:
    /// the caller goes on under its process-local lock.
    pub async fn acquire(&self, name: &str, deadline: Option<Instant>) -> Option<Lease> {
        let key = format!("{}:lock:{name}", self.prefix);
        let token = format!("{:032x}", rand::random::<u128>());
        let until = deadline.unwrap_or_else(|| Instant::now() + self.lease);
        let lease_ms = self.lease.as_millis() as u64;
        let mut wait = RETRY_FIRST;
        loop {
            if !self.link.is_up() {
                return None;
            }
            let (k, t) = (key.clone(), token.clone());
            let taken: Option<Option<String>> = self
                .link
                .run("lock", |mut conn| async move {
                    redis::cmd("SET")
                        .arg(&k)
                        .arg(&t)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                })
                .await;
            match taken {
                None => return None,
                Some(Some(_)) => {
                    return Some(Lease {
                        link: self.link.clone(),
                        key,
                        token,
                        release: self.release.clone(),
                    })
                }
                Some(None) => {}
            }
            let jitter: f64 = rand::random_range(0.5..1.5);
            let next = Instant::now() + wait.mul_f64(jitter);
            if next >= until {
                tracing::warn!(
                    "Fleet: a lock stayed held past the deadline; going on under the local lock"
                );
                return None;
            }
            tokio::time::sleep_until(next).await;
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}

/// What an idempotency key's first request came to, as kept in Redis.
#[derive(Debug, Clone)]
pub struct SharedRecord {
    /// The fingerprint of the first request.
    pub request: u64,
    /// The answer; `None`: sent, outcome unknown.
    pub response: Option<CanonicalResponse>,
}

/// Idempotency keys shared by the fleet.
pub struct SharedKeys {
    leases: Leases,
    window: Duration,
}

impl SharedKeys {
    pub(super) fn new(leases: Leases, window: Duration) -> SharedKeys {
        SharedKeys { leases, window }
    }

    /// The fleet-wide name of a call's idempotency key: backend, whose credential (the
    /// configured one, or a SHA-256 prefix of the forwarded one: the same in every replica,
    /// unlike the process's cache partition), operation and key.
    pub fn key_of(call: &crate::call::Call) -> String {
        let who = match &call.credential {
            Some(credential) => {
                let digest =
                    ring::digest::digest(&ring::digest::SHA256, credential.expose().as_bytes());
                digest.as_ref()[..12]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
            None => "configured".to_string(),
        };
        format!(
            "{}:{who}:{}:{}",
            call.backend,
            call.request.op.name(),
            call.idempotency_key.as_deref().unwrap_or("")
        )
    }

    /// One request per key in the whole fleet at a time.
    pub async fn lock(&self, key: &str) -> Option<Lease> {
        self.leases
            .acquire(&format!("idem:{key}"), super::budget::deadline())
            .await
    }

    /// The record another replica (or this one) kept for `key`.
    pub async fn load(&self, key: &str) -> Option<SharedRecord> {
        let name = format!("{}:idem:{key}", self.leases.prefix);
        let text: String = self
            .leases
            .link
            .run("idempotency", |mut conn| async move {
                redis::cmd("GET")
                    .arg(&name)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await??;
        decode(&text)
    }

    /// Keeps `record` for the idempotency window.
    pub async fn save(&self, key: &str, record: &SharedRecord) {
        let name = format!("{}:idem:{key}", self.leases.prefix);
        let text = encode(record);
        let ms = self.window.as_millis() as u64;
        let _: Option<()> = self
            .leases
            .link
            .run("idempotency", |mut conn| async move {
                redis::cmd("SET")
                    .arg(&name)
                    .arg(text)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await
            })
            .await;
    }
}

fn encode(record: &SharedRecord) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let response = record.response.as_ref().map(|r| {
        json!({
            "status": r.status,
            "body": r.body.as_ref().map(|b| b64.encode(b)),
            "location": r.location,
            "partial": r.partial,
        })
    });
    json!({ "request": record.request.to_string(), "response": response }).to_string()
}

fn decode(text: &str) -> Option<SharedRecord> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let value: Value = serde_json::from_str(text).ok()?;
    let request = value["request"].as_str()?.parse().ok()?;
    let response = match &value["response"] {
        Value::Null => None,
        r => Some(CanonicalResponse {
            status: u16::try_from(r["status"].as_u64()?).ok()?,
            body: match r["body"].as_str() {
                Some(b) => Some(b64.decode(b).ok()?.into()),
                None => None,
            },
            location: r["location"].as_str().map(str::to_string),
            partial: r["partial"].as_bool().unwrap_or(false),
        }),
    };
    Some(SharedRecord { request, response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_round_trip() {
        let record = SharedRecord {
            request: u64::MAX - 3,
            response: Some(CanonicalResponse {
                status: 201,
                body: Some(bytes::Bytes::from_static(b"{\"id\":\"7\"}")),
                location: Some("/v1/teams/7".into()),
                partial: true,
            }),
        };
        let back = decode(&encode(&record)).unwrap();
        assert_eq!(back.request, record.request);
        let (a, b) = (back.response.unwrap(), record.response.unwrap());
        assert_eq!(
            (a.status, a.body, a.location, a.partial),
            (b.status, b.body, b.location, b.partial)
        );
        let uncertain = decode(&encode(&SharedRecord {
            request: 1,
            response: None,
        }))
        .unwrap();
        assert!(uncertain.response.is_none());
    }
}
