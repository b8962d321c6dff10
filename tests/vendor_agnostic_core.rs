//! The proxy core names no vendor: vendor knowledge lives in `mappings/` and `src/sim/` only.

use std::path::Path;

const VENDORS: &[&str] = &[
    "grafana",
    "opsgenie",
    "squadcast",
    "flashcat",
    "flashduty",
    "papershift",
    "pulse",
];

fn walk(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "sim") {
                continue;
            }
            walk(&path, hits);
        } else {
            let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
            for (n, line) in text.lines().enumerate() {
                for vendor in VENDORS {
                    if line.contains(vendor) {
                        hits.push(format!("{}:{}: {vendor}", path.display(), n + 1));
                    }
                }
            }
        }
    }
}

#[test]
fn no_vendor_name_in_src_outside_the_simulators() {
    let mut hits = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut hits,
    );
    assert!(
        hits.is_empty(),
        "vendor names in the core:\n{}",
        hits.join("\n")
    );
}
