//! Credentials and access tokens: the configured credential or the one a caller forwarded,
//! the keyed fingerprints that partition caches and token slots, and the two-step token
//! exchange a mapping may declare (`[auth.token]`).
//!
//! Tokens live in one slot per credential fingerprint. A refresh holds its own slot only, so
//! one tenant's slow token endpoint never blocks another tenant's requests; concurrent
//! requests of one tenant share one refresh.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{bad_answer, convert_problem, Backend};
use crate::call::Secret;
use crate::canonical::{CanonicalResponse, Operation};
use crate::error::{Error, ErrorCode, Origin, UpstreamDetail};
use crate::mapping::expr::Expr;
use crate::mapping::template::{Escape, Secrets, TextTemplate};
use crate::mapping::TokenPlan;
use crate::metrics::UpstreamOutcome;
use crate::upstream::UpstreamRequest;

/// Most access tokens kept (one per forwarded credential); the oldest go first past it.
const MAX_TOKENS: usize = 1024;

tokio::task_local! {
    /// The credential a caller forwarded, for the request being run. Scoped to the request's
    /// task so that no template can reach it and no other request can see it.
    static FORWARDED_CREDENTIAL: Secret;
}

/// A token is used for at most this long, whatever the vendor says.
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;
/// When the vendor does not say how long a token lives.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 300;

struct CachedToken {
    value: Secret,
    refresh_at: tokio::time::Instant,
}

/// One async slot per credential fingerprint.
type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// The access tokens of one backend, by credential fingerprint.
#[derive(Default)]
pub(super) struct Tokens {
    slots: Mutex<HashMap<u64, Slot>>,
}

impl Tokens {
    /// The slot of one credential; made on first use. Past [`MAX_TOKENS`], slots that nobody
    /// is using and whose token is due go first, then any that nobody is using.
    fn slot(&self, fingerprint: u64) -> Slot {
        let mut slots = self.slots.lock().expect("token slots");
        if let Some(slot) = slots.get(&fingerprint) {
            return slot.clone();
        }
        if slots.len() >= MAX_TOKENS {
            let now = tokio::time::Instant::now();
            let idle = |slot: &Slot| Arc::strong_count(slot) == 1;
            let due = |slot: &Slot| {
                slot.try_lock()
                    .map(|t| t.as_ref().is_none_or(|t| t.refresh_at <= now))
                    .unwrap_or(false)
            };
            slots.retain(|_, slot| !(idle(slot) && due(slot)));
            if slots.len() >= MAX_TOKENS {
                let victim = slots.iter().find(|(_, s)| idle(s)).map(|(k, _)| *k);
                if let Some(victim) = victim {
                    slots.remove(&victim);
                }
            }
        }
        slots.entry(fingerprint).or_default().clone()
    }
}

impl Tokens {
    /// The access token in use for a credential, if one is cached and its slot is free.
    fn current(&self, fingerprint: u64) -> Option<Secret> {
        let slot = self
            .slots
            .lock()
            .expect("token slots")
            .get(&fingerprint)?
            .clone();
        let token = slot.try_lock().ok()?.as_ref()?.value.clone();
        Some(token)
    }
}

/// Runs `work` with the caller's forwarded credential in place of the configured one.
pub(super) async fn with_forwarded<F: Future>(credential: Secret, work: F) -> F::Output {
    FORWARDED_CREDENTIAL.scope(credential, work).await
}

impl Backend {
    /// A canonical answer with the credential in use and its access token masked wherever
    /// they appear: a vendor may echo a request inside a success (an error inside HTTP 200)
    /// and its words land in the answer's `vendor` fields.
    pub(super) fn mask_secrets(&self, mut response: CanonicalResponse) -> CanonicalResponse {
        let Some(body) = response.body.as_ref() else {
            return response;
        };
        let credential = self.credential();
        // Only backends with two-step auth hold an access token.
        let token = self
            .mapping
            .auth
            .token
            .as_ref()
            .and_then(|_| self.tokens.current(self.fingerprint(&credential)))
            .map(|t| t.expose().to_string());
        let secrets: Vec<&str> = std::iter::once(credential.expose())
            .chain(token.as_deref())
            .filter(|s| s.len() >= 6)
            .collect();
        // The common case, on every answer: a byte search, no UTF-8 check, no copy.
        let found = |s: &&str| memchr::memmem::find(body, s.as_bytes()).is_some();
        if !secrets.iter().any(found) {
            return response;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return response;
        };
        let mut masked = text.to_string();
        for secret in secrets {
            masked = masked.replace(secret, "***");
        }
        response.body = Some(Bytes::from(masked));
        response
    }

    /// The credential of the request being run: the forwarded one, else the configured one.
    pub(super) fn credential(&self) -> Secret {
        FORWARDED_CREDENTIAL
            .try_with(Secret::clone)
            .unwrap_or_else(|_| self.credential.clone())
    }

    /// A stable, non-reversible fingerprint of a credential (for cache keys and token slots).
    pub fn fingerprint(&self, credential: &Secret) -> u64 {
        self.fingerprints.hash_one(credential.expose())
    }

    /// The fingerprint of the configured credential.
    pub fn configured_fingerprint(&self) -> u64 {
        self.fingerprint(&self.credential)
    }

    /// The cached access token, or a new one when there is none, it is due for refresh, or it
    /// is the one the vendor just refused. The lock makes concurrent refreshes one fetch.
    pub(super) async fn access_token(
        &self,
        plan: &TokenPlan,
        refused: Option<&Secret>,
        caller: Operation,
    ) -> Result<Secret, Error> {
        let credential = self.credential();
        let slot = self.tokens.slot(self.fingerprint(&credential));
        // Only this credential's requests wait here while its token is fetched.
        let mut token = slot.lock().await;
        if let Some(current) = token.as_ref() {
            let is_refused = refused.is_some_and(|r| r.expose() == current.value.expose());
            if !is_refused && tokio::time::Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        let fresh = self.fetch_token(plan, &credential, caller).await?;
        let value = fresh.value.clone();
        *token = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        plan: &TokenPlan,
        credential: &Secret,
        caller: Operation,
    ) -> Result<CachedToken, Error> {
        let secrets = Secrets {
            credential: credential.expose(),
            token: "",
        };
        let render = |t: &TextTemplate, escape| -> Result<Option<String>, Error> {
            t.render(&Value::Null, secrets, escape)
                .map_err(convert_problem)
        };
        let path = render(&plan.path, Escape::PathSegment)?.unwrap_or_default();
        let mut pairs = Vec::new();
        for (key, template) in &plan.query {
            if let Some(v) = render(template, Escape::None)? {
                pairs.push((key.as_str(), v));
            }
        }
        let url = self.vendor_url(&path, &pairs);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("teamgate"),
        );
        for (name, template) in &plan.headers {
            if let Some(v) = render(template, Escape::None)? {
                let mut value = HeaderValue::from_str(&v)
                    .map_err(|_| Error::internal("the credential cannot be sent in a header"))?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
        }
        let body = match &plan.body {
            Some(t) => t
                .render(&Value::Null)
                .map_err(convert_problem)?
                .map(|v| Bytes::from(v.to_string())),
            None => None,
        };
        if body.is_some() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let request = UpstreamRequest {
            method: plan.method.clone(),
            url,
            headers,
            body,
        };
        let answer = self.send(caller, request).await?;
        // Neither the token nor the vendor's message is repeated: only the status.
        if !(200..300).contains(&answer.status) {
            self.metrics
                .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
            let (code, detail) = match answer.status {
                401 | 403 => (
                    ErrorCode::UpstreamError,
                    format!("the backend refused its credential when asked for an access token (HTTP {})", answer.status),
                ),
                status => (
                    ErrorCode::from_upstream_status(status),
                    format!("the backend's access-token endpoint answered HTTP {status}"),
                ),
            };
            let mut problem = Error::new(code, detail).from_origin(Origin::Vendor);
            // A throttled or unavailable token endpoint says when to come back, like any step.
            let retry_after = answer
                .headers
                .get(self.mapping.error_format.retry_after_header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            problem.retry_after = retry_after.or((code == ErrorCode::RateLimited).then_some(1));
            problem.upstream = Some(Box::new(UpstreamDetail {
                status: answer.status,
                code: None,
                message: None,
            }));
            return Err(problem);
        }
        let parsed: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(_) => {
                self.metrics
                    .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
                return Err(bad_answer("the access-token answer is not valid JSON"));
            }
        };
        let Some(Value::String(token)) = plan.token.eval(&parsed).ok().flatten() else {
            self.metrics
                .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
            return Err(bad_answer("the access-token answer has no token"));
        };
        self.metrics
            .upstream(&self.name, caller.name(), UpstreamOutcome::Ok);
        let number = |e: &Option<Expr>| {
            e.as_ref()
                .and_then(|e| e.eval(&parsed).ok().flatten())
                .and_then(|v| v.as_u64())
        };
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Prefer a lifetime (expires_at - issued_at, or expires_in) over comparing the
        // vendor's clock with ours.
        let lifetime = match (
            number(&plan.expires_at),
            number(&plan.issued_at),
            number(&plan.expires_in),
        ) {
            (Some(expires), Some(issued), _) => expires.saturating_sub(issued),
            (_, _, Some(secs)) => secs,
            (Some(expires), None, None) => expires.saturating_sub(now_unix),
            _ => DEFAULT_TOKEN_LIFETIME_SECS,
        };
        let usable = lifetime
            .saturating_sub(plan.refresh_before_secs)
            .min(MAX_TOKEN_LIFETIME_SECS);
        Ok(CachedToken {
            value: Secret::new(token),
            refresh_at: tokio::time::Instant::now() + std::time::Duration::from_secs(usable),
        })
    }
}
