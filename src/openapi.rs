//! The OpenAPI 3.1 description of the canonical API, served at `GET /openapi.json`.

use std::sync::OnceLock;

use serde_json::{json, Value};

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "teamgate canonical Team API", "version": "1" },
            "paths": {},
        })
    })
}
