//! The configuration file (`config.toml`) and the whole start-up check.
//!
//! ```text
//! config.toml ──serde──▶ RawConfig ──validate──▶ Config ──▶ every mapping file loaded
//!                 └───── every problem, with file and line ─────┴──▶ Vec<CheckError>
//! ```
//!
//! [`check`] is what `teamgate check` runs and what `serve` runs before it binds: it reports
//! every problem of the config and of every mapping at once. Credentials are never in the
//! file: a backend names the environment variable that holds its credential.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::call::CachePolicy;
use crate::mapping::{CheckError, Mapping};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    default_backend: Spanned<String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    cache: RawCache,
    backends: BTreeMap<String, Spanned<RawBackend>>,
    #[serde(default)]
    callers: Vec<Spanned<RawCaller>>,
    /// `[fleet]`: replicas sharing state through Redis (`crate::fleet::config`).
    fleet: Option<crate::fleet::config::RawFleet>,
}

/// `[[callers]]`: an API key (as its SHA-256 in hex), the backends and accesses it is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    name: String,
    key_sha256: String,
    #[serde(default = "all_backends")]
    backends: Vec<String>,
    #[serde(default = "read_and_write")]
    access: Vec<String>,
}

fn all_backends() -> Vec<String> {
    vec!["*".into()]
}

fn read_and_write() -> Vec<String> {
    vec!["read".into(), "write".into()]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    enabled: Option<bool>,
    max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    concurrency_limit: Option<usize>,
    drain_grace_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    idempotency_window_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    mapping: Spanned<String>,
    base_url: Option<Spanned<String>>,
    simulator: Option<Spanned<String>>,
    credential_env: Option<Spanned<String>>,
    #[serde(default)]
    forward_credential: bool,
    timeout_ms: Option<u64>,
    concurrency_limit: Option<usize>,
    max_answer_bytes: Option<usize>,
    breaker_failures: Option<u32>,
    breaker_open_ms: Option<u64>,
    cache_ttl_ms: Option<u64>,
    stale_if_error_ms: Option<u64>,
    /// Mirror mode (`src/mirror/`): another backend that repeats this one's writes.
    mirror: Option<Spanned<String>>,
    mirror_shadow_reads: Option<crate::mirror::settings::ShadowReads>,
    mirror_queue: Option<usize>,
    mirror_attempts: Option<u32>,
    mirror_retry_ms: Option<u64>,
    mirror_retry_max_ms: Option<u64>,
    #[serde(default)]
    options: toml::Table,
}

/// The read cache, process-wide.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    /// Bound on what cached answers weigh, in bytes.
    pub max_bytes: u64,
}

/// Server-wide limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    /// On SIGTERM: how long `/readyz` answers 503 while new requests are still served, so
    /// load balancers notice before the listener closes.
    pub drain_grace: Duration,
    /// After the listener closes: how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request's headers; also how long an idle
    /// HTTP/1.1 keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body (before it takes a concurrency
    /// slot).
    pub body_timeout: Duration,
    /// Open client connections at most; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_window: Duration,
}

impl ServerLimits {
    /// A backend's share of the concurrency limit when its config names none: half, so one
    /// stalled vendor leaves the other half to the rest.
    pub fn backend_share(&self) -> usize {
        (self.concurrency_limit / 2).max(1)
    }
}

/// Where a backend's vendor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A real vendor (or any HTTP server speaking its API).
    BaseUrl(String),
    /// The embedded simulator of this kind, started with the proxy.
    Simulator(String),
}

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub name: String,
    pub mapping_path: PathBuf,
    pub target: Target,
    pub credential_env: Option<String>,
    /// The caller sends the vendor credential (`Teamgate-Upstream-Credential`).
    pub forward_credential: bool,
    pub timeout: Duration,
    /// Calls in flight to this backend at most (a bulkhead: a slow vendor sheds only its own
    /// traffic). `None`: half the server's concurrency limit.
    pub concurrency_limit: Option<usize>,
    /// The largest vendor answer read (larger: 502); with the concurrency limit it bounds the
    /// memory vendor answers can hold at once.
    pub max_answer_bytes: usize,
    /// Vendor failures in a row that open the backend's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probes the vendor.
    pub breaker_open: Duration,
    pub cache: CachePolicy,
    pub options: Map<String, Value>,
    /// `mirror = "NAME"`: the backend that repeats this one's writes (and shadow reads).
    pub mirror: Option<crate::mirror::settings::MirrorSettings>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub default_backend: String,
    pub server: ServerLimits,
    pub cache: CacheSettings,
    pub backends: Vec<BackendConfig>,
    /// `[[callers]]`; empty: no caller authentication.
    pub callers: crate::callers::Callers,
    /// `[fleet]`; `None`: one replica, as before (no budget, no Redis).
    pub fleet: Option<crate::fleet::config::FleetConfig>,
}

/// A configuration with every mapping it names, compiled.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub mappings: BTreeMap<String, Arc<Mapping>>,
    /// A digest of the config text and every mapping text: what `/readyz` and
    /// `teamgate_config_info` name as the configuration in service.
    pub hash: String,
    /// A digest of each backend's mapping text, to tell which backends a reload changes.
    pub mapping_digests: BTreeMap<String, String>,
}

/// Environment variables that override the file (for containers), with the key each replaces.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("TEAMGATE_LISTEN", "listen"),
    ("TEAMGATE_DEFAULT_BACKEND", "default_backend"),
    ("TEAMGATE_MAX_BODY_BYTES", "[server] max_body_bytes"),
    ("TEAMGATE_REQUEST_TIMEOUT_MS", "[server] request_timeout_ms"),
    ("TEAMGATE_CONCURRENCY_LIMIT", "[server] concurrency_limit"),
    ("TEAMGATE_DRAIN_GRACE_MS", "[server] drain_grace_ms"),
    (
        "TEAMGATE_SHUTDOWN_TIMEOUT_MS",
        "[server] shutdown_timeout_ms",
    ),
    (
        "TEAMGATE_HEADER_READ_TIMEOUT_MS",
        "[server] header_read_timeout_ms",
    ),
    ("TEAMGATE_BODY_TIMEOUT_MS", "[server] body_timeout_ms"),
    ("TEAMGATE_MAX_CONNECTIONS", "[server] max_connections"),
    ("TEAMGATE_CACHE_ENABLED", "[cache] enabled"),
    ("TEAMGATE_CACHE_MAX_BYTES", "[cache] max_bytes"),
];

/// Puts the values of the set [`ENV_OVERRIDES`] in place of the file's; returns a reason
/// for each value that does not parse (naming its variable).
fn apply_env_overrides(
    raw: &mut RawConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (var, _) in ENV_OVERRIDES {
        let Some(value) = lookup(var) else { continue };
        let value = value.trim().to_string();
        let mut number = |field: &mut Option<u64>| match value.parse::<u64>() {
            Ok(n) => *field = Some(n),
            Err(_) => problems.push(format!("{var}: `{value}` is not a whole number")),
        };
        match *var {
            "TEAMGATE_LISTEN" => match value.parse::<SocketAddr>() {
                Ok(_) => raw.listen = Some(Spanned::new(0..0, value)),
                Err(_) => problems.push(format!(
                    "{var}: `{value}` is not an address such as 0.0.0.0:8080"
                )),
            },
            "TEAMGATE_DEFAULT_BACKEND" => raw.default_backend = Spanned::new(0..0, value),
            "TEAMGATE_MAX_BODY_BYTES" => {
                let mut n = raw.server.max_body_bytes.map(|v| v as u64);
                number(&mut n);
                raw.server.max_body_bytes = n.map(|v| v as usize);
            }
            "TEAMGATE_REQUEST_TIMEOUT_MS" => number(&mut raw.server.request_timeout_ms),
            "TEAMGATE_CONCURRENCY_LIMIT" => {
                let mut n = raw.server.concurrency_limit.map(|v| v as u64);
                number(&mut n);
                raw.server.concurrency_limit = n.map(|v| v as usize);
            }
            "TEAMGATE_DRAIN_GRACE_MS" => number(&mut raw.server.drain_grace_ms),
            "TEAMGATE_SHUTDOWN_TIMEOUT_MS" => number(&mut raw.server.shutdown_timeout_ms),
            "TEAMGATE_HEADER_READ_TIMEOUT_MS" => number(&mut raw.server.header_read_timeout_ms),
            "TEAMGATE_BODY_TIMEOUT_MS" => number(&mut raw.server.body_timeout_ms),
            "TEAMGATE_MAX_CONNECTIONS" => {
                let mut n = raw.server.max_connections.map(|v| v as u64);
                number(&mut n);
                raw.server.max_connections = n.map(|v| v as usize);
            }
            "TEAMGATE_CACHE_ENABLED" => match value.as_str() {
                "true" | "1" => raw.cache.enabled = Some(true),
                "false" | "0" => raw.cache.enabled = Some(false),
                _ => problems.push(format!("{var}: `{value}` is not true or false")),
            },
            "TEAMGATE_CACHE_MAX_BYTES" => number(&mut raw.cache.max_bytes),
            _ => {}
        }
    }
    problems
}

impl Checked {
    /// The configuration in effect (file, environment overrides and defaults), as TOML, for
    /// `teamgate check --print`. No secret: credentials are only named by their variable, and
    /// a password in a URL is masked.
    pub fn effective_toml(&self) -> String {
        use std::fmt::Write;
        let c = &self.config;
        let ms = |d: Duration| d.as_millis();
        let mut out = String::new();
        let _ = writeln!(out, "# {} (config hash {})", c.path.display(), self.hash);
        let _ = writeln!(out, "listen = \"{}\"", c.listen);
        let _ = writeln!(out, "default_backend = \"{}\"", c.default_backend);
        let _ = writeln!(out, "\n[server]");
        let _ = writeln!(out, "max_body_bytes = {}", c.server.max_body_bytes);
        let _ = writeln!(out, "request_timeout_ms = {}", ms(c.server.request_timeout));
        let _ = writeln!(out, "concurrency_limit = {}", c.server.concurrency_limit);
        let _ = writeln!(out, "drain_grace_ms = {}", ms(c.server.drain_grace));
        let _ = writeln!(
            out,
            "shutdown_timeout_ms = {}",
            ms(c.server.shutdown_timeout)
        );
        let _ = writeln!(
            out,
            "header_read_timeout_ms = {}",
            ms(c.server.header_read_timeout)
        );
        let _ = writeln!(out, "body_timeout_ms = {}", ms(c.server.body_timeout));
        let _ = writeln!(out, "max_connections = {}", c.server.max_connections);
        let _ = writeln!(
            out,
            "idempotency_window_ms = {}",
            ms(c.server.idempotency_window)
        );
        let _ = writeln!(out, "\n[cache]");
        let _ = writeln!(out, "enabled = {}", c.cache.enabled);
        let _ = writeln!(out, "max_bytes = {}", c.cache.max_bytes);
        for b in &c.backends {
            let _ = writeln!(out, "\n[backends.{}]", b.name);
            let _ = writeln!(out, "mapping = \"{}\"", b.mapping_path.display());
            match &b.target {
                Target::BaseUrl(url) => {
                    let _ = writeln!(out, "base_url = \"{}\"", mask_userinfo(url));
                }
                Target::Simulator(kind) => {
                    let _ = writeln!(out, "simulator = \"{kind}\"");
                }
            }
            if let Some(var) = &b.credential_env {
                let state = match std::env::var_os(var) {
                    Some(_) => "set",
                    None => "not set",
                };
                let _ = writeln!(out, "credential_env = \"{var}\"  # {state}");
            }
            let _ = writeln!(out, "forward_credential = {}", b.forward_credential);
            let _ = writeln!(out, "timeout_ms = {}", ms(b.timeout));
            let limit = b.concurrency_limit.unwrap_or(c.server.backend_share());
            let _ = writeln!(out, "concurrency_limit = {limit}");
            let _ = writeln!(out, "max_answer_bytes = {}", b.max_answer_bytes);
            let _ = writeln!(out, "breaker_failures = {}", b.breaker_failures);
            let _ = writeln!(out, "breaker_open_ms = {}", ms(b.breaker_open));
            let _ = writeln!(out, "cache_ttl_ms = {}", ms(b.cache.ttl));
            let _ = writeln!(out, "stale_if_error_ms = {}", ms(b.cache.stale_if_error));
            if let Some(m) = &b.mirror {
                out.push_str(&m.effective_toml());
            }
            if !b.options.is_empty() {
                let _ = writeln!(out, "options = {}", Value::Object(b.options.clone()));
            }
        }
        if let Some(fleet) = &c.fleet {
            crate::fleet::config::print(fleet, &mut out);
        }
        out
    }
}

/// Each backend's mirror settings as written, for [`crate::mirror::settings::check_mirrors`].
fn raw_mirrors(raw: &RawConfig) -> Vec<crate::mirror::settings::RawMirror<'_>> {
    raw.backends
        .iter()
        .map(|(name, b)| {
            let b_at = b.span().start;
            let b = b.get_ref();
            crate::mirror::settings::RawMirror {
                name,
                at: b_at,
                forward_credential: b.forward_credential,
                mirror: b
                    .mirror
                    .as_ref()
                    .map(|m| (m.span().start, m.get_ref().as_str())),
                shadow_reads: b.mirror_shadow_reads,
            }
        })
        .collect()
}

/// `https://user:password@host/...` with the user information masked.
fn mask_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at))
            if at > scheme_end && !url[scheme_end + 3..at].contains('/') =>
        {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The first 16 hex digits of the SHA-256 of `parts`, each length-prefixed.
fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    context
        .finish()
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads the config and every mapping; all problems or the checked whole. `simulators` are
/// the embedded vendor kinds this build offers (`simulator = "<kind>"`); none for a library
/// user whose backends all have a `base_url`.
pub fn check(path: &Path, simulators: &[&str]) -> Result<Checked, Vec<CheckError>> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        vec![CheckError {
            file: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read the config file: {e}"),
        }]
    })?;
    check_source(path, &source, simulators)
}

/// [`check`] on config text (`path` names it and anchors relative mapping paths).
pub fn check_source(
    path: &Path,
    source: &str,
    simulators: &[&str],
) -> Result<Checked, Vec<CheckError>> {
    let mut errors = Vec::new();
    let line_of = |offset: usize| source[..offset.min(source.len())].matches('\n').count() + 1;
    let mut raw: RawConfig = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(vec![CheckError {
                file: path.to_path_buf(),
                line: e.span().map(|s| line_of(s.start)).unwrap_or(0),
                reason: e.message().trim().to_string(),
            }])
        }
    };
    // Overrides come from no line of the file: line 0, and the reason names the variable.
    for reason in apply_env_overrides(&mut raw, &|name| std::env::var(name).ok()) {
        errors.push(CheckError {
            file: path.to_path_buf(),
            line: 0,
            reason,
        });
    }
    let mut error = |offset: usize, reason: String| {
        errors.push(CheckError {
            file: path.to_path_buf(),
            line: line_of(offset),
            reason,
        })
    };

    let listen = match &raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(l) => l.get_ref().parse().unwrap_or_else(|_| {
            error(
                l.span().start,
                format!(
                    "listen: `{}` is not an address such as 127.0.0.1:8080",
                    l.get_ref()
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut backends = Vec::new();
    for (name, spanned) in &raw.backends {
        let at = spanned.span().start;
        let b = spanned.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            error(
                at,
                format!("backend name `{name}` must be letters, digits, `-` or `_`"),
            );
        }
        let target = match (&b.base_url, &b.simulator) {
            (Some(url), None) => {
                let u = url.get_ref();
                if !(u.starts_with("http://") || u.starts_with("https://"))
                    || u.parse::<http::Uri>().is_err()
                {
                    error(
                        url.span().start,
                        format!("backends.{name}.base_url: `{u}` is not an http(s) URL"),
                    );
                }
                Target::BaseUrl(u.clone())
            }
            (None, Some(kind)) => {
                if !simulators.contains(&kind.get_ref().as_str()) {
                    let known = match simulators {
                        [] => "this build embeds none".to_string(),
                        kinds => format!("known: {}", kinds.join(", ")),
                    };
                    error(
                        kind.span().start,
                        format!(
                            "backends.{name}.simulator: unknown simulator `{}` ({known})",
                            kind.get_ref()
                        ),
                    );
                }
                Target::Simulator(kind.get_ref().clone())
            }
            _ => {
                error(
                    at,
                    format!("backends.{name}: set exactly one of `base_url` or `simulator`"),
                );
                Target::Simulator(String::new())
            }
        };
        let credential_env = b.credential_env.as_ref().map(|e| e.get_ref().clone());
        if let (Target::BaseUrl(_), None, false) =
            (&target, &b.credential_env, b.forward_credential)
        {
            error(
                at,
                format!("backends.{name}: set `credential_env` (or `forward_credential = true`)"),
            );
        }
        if let (Target::BaseUrl(_), Some(var)) = (&target, &b.credential_env) {
            if std::env::var_os(var.get_ref()).is_none() {
                error(
                    var.span().start,
                    format!(
                        "backends.{name}: environment variable `{}` (its credential) is not set",
                        var.get_ref()
                    ),
                );
            }
        }
        let options = match serde_json::to_value(&b.options) {
            Ok(Value::Object(map)) => map,
            _ => {
                error(at, format!("backends.{name}.options cannot be read"));
                Map::new()
            }
        };
        backends.push(BackendConfig {
            name: name.clone(),
            mapping_path: base.join(b.mapping.get_ref()),
            target,
            credential_env,
            forward_credential: b.forward_credential,
            timeout: Duration::from_millis(b.timeout_ms.unwrap_or(10_000).clamp(1, 600_000)),
            concurrency_limit: b.concurrency_limit.map(|n| n.clamp(1, 1 << 20)),
            max_answer_bytes: b
                .max_answer_bytes
                .unwrap_or(8 << 20)
                .clamp(1 << 10, 256 << 20),
            breaker_failures: b.breaker_failures.unwrap_or(5).clamp(1, 10_000),
            breaker_open: Duration::from_millis(
                b.breaker_open_ms.unwrap_or(10_000).clamp(10, 3_600_000),
            ),
            cache: CachePolicy {
                ttl: Duration::from_millis(b.cache_ttl_ms.unwrap_or(5_000).min(86_400_000)),
                stale_if_error: Duration::from_millis(
                    b.stale_if_error_ms.unwrap_or(30_000).min(86_400_000),
                ),
            },
            options,
            mirror: b
                .mirror
                .as_ref()
                .map(|m| crate::mirror::settings::MirrorSettings {
                    target: m.get_ref().clone(),
                    shadow_reads: b.mirror_shadow_reads.unwrap_or_default().fraction(),
                    queue: b.mirror_queue.unwrap_or(10_000).clamp(1, 1 << 20),
                    attempts: b.mirror_attempts.unwrap_or(8).clamp(1, 1_000),
                    retry_base: Duration::from_millis(
                        b.mirror_retry_ms.unwrap_or(500).clamp(1, 600_000),
                    ),
                    retry_max: Duration::from_millis(
                        b.mirror_retry_max_ms.unwrap_or(60_000).clamp(1, 3_600_000),
                    ),
                }),
        });
    }
    for reason in crate::mirror::settings::check_mirrors(&raw_mirrors(&raw)) {
        error(reason.0, reason.1);
    }
    if backends.is_empty() {
        error(0, "no backend is configured ([backends.NAME])".into());
    }
    if !raw.backends.contains_key(raw.default_backend.get_ref()) {
        error(
            raw.default_backend.span().start,
            format!(
                "default_backend `{}` is not a configured backend",
                raw.default_backend.get_ref()
            ),
        );
    }
    let server = ServerLimits {
        max_body_bytes: raw
            .server
            .max_body_bytes
            .unwrap_or(1 << 20)
            .clamp(1024, 64 << 20),
        request_timeout: Duration::from_millis(
            raw.server
                .request_timeout_ms
                .unwrap_or(30_000)
                .clamp(1, 600_000),
        ),
        concurrency_limit: raw
            .server
            .concurrency_limit
            .unwrap_or(1024)
            .clamp(1, 1 << 20),
        drain_grace: Duration::from_millis(raw.server.drain_grace_ms.unwrap_or(5_000).min(600_000)),
        shutdown_timeout: Duration::from_millis(
            raw.server
                .shutdown_timeout_ms
                .unwrap_or(30_000)
                .clamp(1, 3_600_000),
        ),
        header_read_timeout: Duration::from_millis(
            raw.server
                .header_read_timeout_ms
                .unwrap_or(10_000)
                .clamp(100, 600_000),
        ),
        body_timeout: Duration::from_millis(
            raw.server
                .body_timeout_ms
                .unwrap_or(10_000)
                .clamp(100, 600_000),
        ),
        max_connections: raw.server.max_connections.unwrap_or(4096).clamp(1, 1 << 20),
        idempotency_window: Duration::from_millis(
            raw.server
                .idempotency_window_ms
                .unwrap_or(86_400_000)
                .clamp(1_000, 7 * 86_400_000),
        ),
    };
    let mut callers = Vec::new();
    for spanned in &raw.callers {
        let at = spanned.span().start;
        let c = spanned.get_ref();
        let digest: Option<Vec<u8>> = (c.key_sha256.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&c.key_sha256[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        let Some(digest) = digest else {
            error(
                at,
                format!(
                    "callers `{}`: key_sha256 must be 64 hex digits (the SHA-256 of the key)",
                    c.name
                ),
            );
            continue;
        };
        for b in &c.backends {
            if b != "*" && !raw.backends.contains_key(b) {
                error(
                    at,
                    format!("callers `{}`: backend `{b}` is not configured", c.name),
                );
            }
        }
        for a in &c.access {
            if a != "read" && a != "write" {
                error(
                    at,
                    format!("callers `{}`: access `{a}` is not read or write", c.name),
                );
            }
        }
        let mut key_sha256 = [0u8; 32];
        key_sha256.copy_from_slice(&digest);
        callers.push(crate::callers::Caller {
            name: c.name.clone(),
            key_sha256,
            backends: c.backends.clone(),
            read: c.access.iter().any(|a| a == "read"),
            write: c.access.iter().any(|a| a == "write"),
        });
    }
    let names: Vec<&str> = raw.backends.keys().map(String::as_str).collect();
    let fleet = raw.fleet.as_ref().map(|f| {
        crate::fleet::config::validate(
            f,
            &names,
            server.request_timeout,
            &|v| std::env::var(v).ok(),
            &mut error,
        )
    });
    // Every mapping file once, however many backends share it.
    let mut mappings = BTreeMap::new();
    let mut mapping_digests = BTreeMap::new();
    let mut loaded: BTreeMap<PathBuf, (Arc<Mapping>, String)> = BTreeMap::new();
    for backend in &backends {
        if let Some((m, d)) = loaded.get(&backend.mapping_path) {
            mappings.insert(backend.name.clone(), m.clone());
            mapping_digests.insert(backend.name.clone(), d.clone());
            continue;
        }
        let text = match std::fs::read_to_string(&backend.mapping_path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(CheckError {
                    file: backend.mapping_path.clone(),
                    line: 0,
                    reason: format!("cannot read the mapping file: {e}"),
                });
                continue;
            }
        };
        match Mapping::parse(&backend.mapping_path, &text) {
            Ok(m) => {
                let m = Arc::new(m);
                let d = digest([text.as_str()]);
                loaded.insert(backend.mapping_path.clone(), (m.clone(), d.clone()));
                mappings.insert(backend.name.clone(), m);
                mapping_digests.insert(backend.name.clone(), d);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let hash = digest(std::iter::once(source).chain(mapping_digests.values().map(String::as_str)));
    Ok(Checked {
        hash,
        mapping_digests,
        config: Config {
            path: path.to_path_buf(),
            listen,
            default_backend: raw.default_backend.into_inner(),
            server,
            cache: CacheSettings {
                enabled: raw.cache.enabled.unwrap_or(true),
                max_bytes: raw
                    .cache
                    .max_bytes
                    .unwrap_or(64 << 20)
                    .clamp(1 << 10, 1 << 40),
            },
            backends,
            callers: crate::callers::Callers::new(callers),
            fleet,
        },
        mappings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(source: &str) -> RawConfig {
        toml::from_str(source).unwrap()
    }

    #[test]
    fn environment_values_replace_the_files_and_bad_ones_name_their_variable() {
        let mut config = raw("listen = \"127.0.0.1:8080\"\ndefault_backend = \"a\"\n[server]\nconcurrency_limit = 10\n[backends]\n");
        let env = |name: &str| match name {
            "TEAMGATE_LISTEN" => Some("0.0.0.0:9090".to_string()),
            "TEAMGATE_CONCURRENCY_LIMIT" => Some("77".to_string()),
            "TEAMGATE_CACHE_ENABLED" => Some("false".to_string()),
            "TEAMGATE_DRAIN_GRACE_MS" => Some("soon".to_string()),
            "TEAMGATE_MAX_CONNECTIONS" => Some("3000".to_string()),
            "TEAMGATE_HEADER_READ_TIMEOUT_MS" => Some("1500".to_string()),
            "TEAMGATE_BODY_TIMEOUT_MS" => Some("2500".to_string()),
            _ => None,
        };
        let problems = apply_env_overrides(&mut config, &env);
        assert_eq!(config.listen.unwrap().into_inner(), "0.0.0.0:9090");
        assert_eq!(config.server.concurrency_limit, Some(77));
        assert_eq!(config.cache.enabled, Some(false));
        assert_eq!(config.server.max_connections, Some(3000));
        assert_eq!(config.server.header_read_timeout_ms, Some(1500));
        assert_eq!(config.server.body_timeout_ms, Some(2500));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("TEAMGATE_DRAIN_GRACE_MS: `soon`"));
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_userinfo("https://bot:hunter2@vendor.example/api"),
            "https://***@vendor.example/api"
        );
        assert_eq!(
            mask_userinfo("https://vendor.example/a@b"),
            "https://vendor.example/a@b"
        );
    }
}
