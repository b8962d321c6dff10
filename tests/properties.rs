//! Properties over arbitrary input: no id can change a vendor path, routing and cursors never
//! panic, validation answers every body.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;
use teamgate::canonical::route::{route, Route};
use teamgate::canonical::{cursor, validate, PageRequest};
use teamgate::mapping::template::{Escape, Secrets, TextTemplate};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_id_stays_one_path_segment(id in any::<String>()) {
        let template = TextTemplate::parse("/api/teams/{path.id}/members", false).unwrap();
        let path = template.render(&json!({ "path": { "id": id } }), Secrets::NONE, Escape::PathSegment).unwrap().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        prop_assert_eq!(segments.len(), 5, "{}", path);
        prop_assert!(!path.contains('?') && !path.contains('#'), "{}", path);
        let decoded = percent_encoding::percent_decode_str(segments[3]).decode_utf8().unwrap();
        prop_assert_eq!(decoded.as_ref(), id.as_str());
    }

    #[test]
    fn routing_never_panics_and_keeps_ids_whole(id in any::<String>(), query in any::<String>()) {
        let encoded = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC).to_string();
        let path = format!("/v1/teams/{encoded}/members");
        if let Ok(Route::Operation(request)) = route(&http::Method::GET, &path, Some(&query)) {
            prop_assert_eq!(request.team_id.as_deref(), Some(id.as_str()));
        }
        let _ = route(&http::Method::POST, &query, Some(&query));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused_cleanly(offset in 0usize..1_000_000, limit in 1usize..1000, garbage in any::<String>()) {
        let page = PageRequest { limit, offset };
        prop_assert_eq!(cursor::decode(&cursor::encode(page)).unwrap(), page);
        let _ = cursor::decode(&garbage);
    }

    #[test]
    fn validation_answers_every_body(name in any::<String>(), description in any::<String>(), extra in "[a-z_]{1,12}") {
        let body = json!({ "name": name, "description": description, extra.clone(): 1 });
        let _ = validate::team_input(&body, validate::TeamWrite::Create);
        let _ = validate::member_input(&json!({ "email": name, "user_id": description }));
        if let Ok(input) = validate::team_input(&json!({ "name": name }), validate::TeamWrite::Create) {
            let kept = input["name"].as_str().unwrap();
            prop_assert_eq!(kept, name.trim());
            prop_assert!((1..=100).contains(&kept.chars().count()));
        }
    }
}

#[test]
fn shipped_mappings_still_compile() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")).unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            teamgate::mapping::Mapping::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        }
    }
}
