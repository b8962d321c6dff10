//! Caller authentication, for deployments beyond one local service: optional `[[callers]]`
//! in the config, each an API key stored as its SHA-256 (never the key), allowed a set of
//! backends and `read` and/or `write`. Off when none is configured (the local sidecar).
//!
//! A caller sends `Authorization: Bearer <key>`. No key, or one that matches no caller: 401
//! `unauthenticated`. A known caller asking for a backend or an access it was not given: 403
//! `forbidden`. Admin routes (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`) stay open
//! for probes and scrapes.

use http::HeaderMap;

use crate::canonical::Operation;
use crate::error::{Error, ErrorCode};

/// One configured caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    /// SHA-256 of the key.
    pub key_sha256: [u8; 32],
    /// Backend names, or `*` for all.
    pub backends: Vec<String>,
    pub read: bool,
    pub write: bool,
}

/// The configured callers; empty: authentication is off.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    callers: Vec<Caller>,
}

impl Callers {
    pub fn new(callers: Vec<Caller>) -> Callers {
        Callers { callers }
    }

    pub fn enabled(&self) -> bool {
        !self.callers.is_empty()
    }

    /// Whether the request's caller may run `op` on `backend`.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        backend: &str,
        op: Operation,
    ) -> Result<(), Error> {
        if !self.enabled() {
            return Ok(());
        }
        let key = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Unauthenticated,
                    "an API key is required: Authorization: Bearer <key>",
                )
            })?;
        let digest = sha256(key);
        // Every caller is compared, in constant time, so the time taken says nothing.
        let caller = self
            .callers
            .iter()
            .fold(None, |found, c| match same(&c.key_sha256, &digest) {
                true => Some(c),
                false => found,
            })
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown API key"))?;
        let backend_allowed = caller.backends.iter().any(|b| b == "*" || b == backend);
        let access_allowed = if op.is_write() {
            caller.write
        } else {
            caller.read
        };
        if !backend_allowed || !access_allowed {
            let what = if op.is_write() { "write" } else { "read" };
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!(
                    "caller `{}` may not {what} on backend `{backend}`",
                    caller.name
                ),
            ));
        }
        Ok(())
    }
}

pub fn sha256(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callers() -> Callers {
        Callers::new(vec![
            Caller {
                name: "reader".into(),
                key_sha256: sha256("read-key-123"),
                backends: vec!["a".into()],
                read: true,
                write: false,
            },
            Caller {
                name: "admin".into(),
                key_sha256: sha256("admin-key-456"),
                backends: vec!["*".into()],
                read: true,
                write: true,
            },
        ])
    }

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        headers
    }

    #[test]
    fn keys_backends_and_access_are_checked() {
        let c = callers();
        let code = |h: &HeaderMap, b: &str, op| c.authorize(h, b, op).map_err(|e| e.code);
        assert_eq!(
            code(&HeaderMap::new(), "a", Operation::GetTeam),
            Err(ErrorCode::Unauthenticated)
        );
        assert_eq!(
            code(&bearer("nope"), "a", Operation::GetTeam),
            Err(ErrorCode::Unauthenticated)
        );
        assert_eq!(
            code(&bearer("read-key-123"), "a", Operation::GetTeam),
            Ok(())
        );
        assert_eq!(
            code(&bearer("read-key-123"), "a", Operation::CreateTeam),
            Err(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(&bearer("read-key-123"), "b", Operation::GetTeam),
            Err(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(&bearer("admin-key-456"), "b", Operation::DeleteTeam),
            Ok(())
        );
        assert_eq!(
            Callers::default()
                .authorize(&HeaderMap::new(), "a", Operation::DeleteTeam)
                .map_err(|e| e.code),
            Ok(())
        );
    }
}
