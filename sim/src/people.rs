//! The documented set of people every simulator starts with.
//!
//! People are the same people in every vendor, but their ids are not: each simulator gives
//! them ids of its vendor's shape (see the helpers below), always in this order, so a test or a
//! migration can cross vendors by email. The first person is the account owner / admin.

/// One person known to every simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// Full display name.
    pub name: &'static str,
    /// Email, the key that crosses vendors.
    pub email: &'static str,
    /// Login / username (Grafana `login`).
    pub login: &'static str,
}

/// Everyone, in id order. Index 0 is the account owner.
pub const PEOPLE: &[Person] = &[
    Person {
        name: "Ada Admin",
        email: "ada@example.com",
        login: "ada",
    },
    Person {
        name: "Bob Builder",
        email: "bob@example.com",
        login: "bob",
    },
    Person {
        name: "Carol Chen",
        email: "carol@example.com",
        login: "carol",
    },
    Person {
        name: "Dan Dietrich",
        email: "dan@example.com",
        login: "dan",
    },
    Person {
        name: "Eve Ekström",
        email: "eve@example.com",
        login: "eve",
    },
    Person {
        name: "Frank Ó Fiach",
        email: "frank@example.com",
        login: "frank",
    },
];

/// Grafana user ids: integers; 1 is Grafana's built-in `admin`, so people start at 2.
pub fn grafana_user_id(index: usize) -> i64 {
    index as i64 + 2
}

/// Flashcat person ids: unsigned 64-bit integers of the documented size (`5068740052131`).
pub fn flashcat_person_id(index: usize) -> u64 {
    5_068_740_052_131 + index as u64
}

/// JSON:API user ids: UUIDs, deterministic so tests can name them.
pub fn jsonapi_user_id(index: usize) -> String {
    format!("7d1c5a40-0000-4000-8000-{:012x}", index + 1)
}

/// Opsgenie user ids: UUIDs, deterministic.
pub fn opsgenie_user_id(index: usize) -> String {
    format!("b5a1e8f2-0000-4000-9000-{:012x}", index + 1)
}

/// Squadcast user ids: 24-hex MongoDB ObjectIds, deterministic.
pub fn squadcast_user_id(index: usize) -> String {
    format!("620b2b18f163b1e165f1{:04x}", index + 1)
}

/// PagerDuty user ids: seven upper-case alphanumerics starting with `P`, the shape of the REST
/// API's examples (`PXPGF42`, `P0XJYI9`). Deterministic and distinct for every index below
/// 36^6, so the PagerDuty simulator's synthetic extra users get ids of the same shape.
pub fn pagerduty_user_id(index: usize) -> String {
    pagerduty_id(PAGERDUTY_USER_SALT, index as u64)
}

/// Where user ids start in the id space (teams use another salt, see [`pagerduty_id`]).
const PAGERDUTY_USER_SALT: u64 = 1_102_271_453;

/// The `n`th id of a PagerDuty id sequence: `P` then six base-36 digits of
/// `(salt + n * STEP) mod 36^6`. `STEP` is odd and not a multiple of 3, so it shares no
/// factor with 36 and the map is a bijection on `0..36^6`: distinct `n` give distinct ids. It
/// is large (about 0.7 of the space), so consecutive ids look unrelated, as PagerDuty's do.
pub(crate) fn pagerduty_id(salt: u64, n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const SPACE: u64 = 36 * 36 * 36 * 36 * 36 * 36;
    const STEP: u64 = 1_500_450_271;
    let mut value = (salt % SPACE + (n % SPACE) * STEP) % SPACE;
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    let mut id = String::with_capacity(7);
    id.push('P');
    id.extend(digits.iter().map(|&d| d as char));
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn pagerduty_ids_have_the_documented_shape_and_are_distinct() {
        let ids: Vec<String> = (0..20_000).map(pagerduty_user_id).collect();
        for id in &ids {
            assert_eq!(id.len(), 7, "{id}");
            assert!(id.starts_with('P'), "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{id}"
            );
        }
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert_eq!(pagerduty_user_id(3), pagerduty_user_id(3), "deterministic");
    }
}
