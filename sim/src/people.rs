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
