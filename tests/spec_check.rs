//! The spec check: every request a mapping sends to a vendor is judged against that vendor's
//! own OpenAPI / Swagger document, so we know the real vendor would accept it, not only our
//! simulator.
//!
//! The checker lives in `spec_check/spec.rs` (reading a document, finding the operation) and
//! `spec_check/check.rs` (parameters, credentials, body schema); its own tests are in
//! `spec_check/checker_tests.rs`.

#[allow(dead_code)] // used by the traffic test that comes next
#[path = "spec_check/check.rs"]
mod check;
#[cfg(test)]
#[path = "spec_check/checker_tests.rs"]
mod checker_tests;
#[allow(dead_code)]
#[path = "spec_check/spec.rs"]
mod spec;
