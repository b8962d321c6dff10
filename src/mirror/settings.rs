//! A mirror's settings as configured, and the check of every backend's mirror settings
//! (`teamgate check`). Below the configuration, which reads them; the mirrors themselves
//! (`super`) are built from them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `mirror_shadow_reads`: `true`, `false` or the fraction of reads compared.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ShadowReads {
    On(bool),
    Fraction(f64),
}

impl Default for ShadowReads {
    fn default() -> Self {
        ShadowReads::On(false)
    }
}

impl ShadowReads {
    /// The fraction of reads compared, 0 to 1.
    pub fn fraction(self) -> f64 {
        match self {
            ShadowReads::On(on) => f64::from(u8::from(on)),
            ShadowReads::Fraction(f) if f.is_finite() => f.clamp(0.0, 1.0),
            ShadowReads::Fraction(_) => 0.0,
        }
    }
}

/// A backend's mirror, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSettings {
    /// The backend that repeats the writes.
    pub target: String,
    /// The fraction of reads also done on the mirror and compared.
    pub shadow_reads: f64,
    /// Jobs waiting at most.
    pub queue: usize,
    /// Attempts per job at most (the first included).
    pub attempts: u32,
    /// The first retry's backoff; it doubles with each attempt.
    pub retry_base: Duration,
    /// The longest backoff.
    pub retry_max: Duration,
}

impl MirrorSettings {
    /// The settings as `teamgate check --print` shows them.
    pub fn effective_toml(&self) -> String {
        format!(
            "mirror = \"{}\"\nmirror_shadow_reads = {}\nmirror_queue = {}\nmirror_attempts = {}\nmirror_retry_ms = {}\nmirror_retry_max_ms = {}\n",
            self.target,
            self.shadow_reads,
            self.queue,
            self.attempts,
            self.retry_base.as_millis(),
            self.retry_max.as_millis()
        )
    }
}

/// One backend's mirror settings as written in the file, for [`check_mirrors`].
pub struct RawMirror<'a> {
    pub name: &'a str,
    /// Where the backend's table starts in the file.
    pub at: usize,
    pub forward_credential: bool,
    /// `mirror = "..."` and where it is.
    pub mirror: Option<(usize, &'a str)>,
    pub shadow_reads: Option<ShadowReads>,
}

/// The problems of the backends' mirror settings, each with where it is in the file: a mirror
/// must be another configured backend that mirrors nothing itself (no chains, hence no cycles),
/// neither side may take the caller's credential (the mirror writes with its own), and shadow
/// reads need a mirror and a fraction from 0 to 1.
pub fn check_mirrors(backends: &[RawMirror<'_>]) -> Vec<(usize, String)> {
    let by_name: BTreeMap<&str, &RawMirror<'_>> = backends.iter().map(|b| (b.name, b)).collect();
    let mut problems = Vec::new();
    for b in backends {
        let name = b.name;
        if let Some(shadow) = b.shadow_reads {
            let ok = match shadow {
                ShadowReads::On(_) => true,
                ShadowReads::Fraction(f) => (0.0..=1.0).contains(&f),
            };
            if !ok {
                problems.push((
                    b.at,
                    format!("backends.{name}.mirror_shadow_reads: use true, false or a fraction from 0 to 1"),
                ));
            }
            if b.mirror.is_none() {
                problems.push((
                    b.at,
                    format!("backends.{name}.mirror_shadow_reads needs `mirror`"),
                ));
            }
        }
        let Some((at, target)) = b.mirror else {
            continue;
        };
        let Some(mirror) = by_name.get(target) else {
            problems.push((
                at,
                format!("backends.{name}.mirror: `{target}` is not a configured backend"),
            ));
            continue;
        };
        if target == name {
            problems.push((
                at,
                format!("backends.{name}.mirror: a backend cannot mirror itself"),
            ));
            continue;
        }
        if let Some((_, next)) = mirror.mirror {
            problems.push((
                at,
                format!("backends.{name}.mirror: `{target}` has a mirror itself (`{next}`); mirrors do not chain"),
            ));
        }
        if b.forward_credential || mirror.forward_credential {
            problems.push((
                at,
                format!("backends.{name}.mirror: neither `{name}` nor `{target}` may use `forward_credential` (the mirror writes with its own configured credential)"),
            ));
        }
    }
    problems
}
