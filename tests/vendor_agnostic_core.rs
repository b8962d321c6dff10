//! The proxy core names no vendor: vendor knowledge lives in `mappings/` and the simulator
//! crate (`sim/`) only. And the product library never imports the simulators: only the
//! binary (`src/main.rs`) hands them to the server, for the demo and `teamgate sim`.

use std::path::Path;

const VENDORS: &[&str] = &[
    "grafana",
    "opsgenie",
    "squadcast",
    "flashcat",
    "flashduty",
    "papershift",
    "pulse",
    "pagerduty",
];

fn walk(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
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

#[test]
fn the_library_does_not_import_the_simulators() {
    fn rust_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "the walk found the sources");
    let importers: Vec<String> = files
        .iter()
        .filter(|f| **f != src.join("main.rs"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("teamgate_sim") || text.contains("teamgate-sim")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        importers.is_empty(),
        "library files naming the simulator crate:\n{}",
        importers.join("\n")
    );
    assert!(
        !src.join("sim").exists(),
        "the simulators live in their own crate (sim/), not in src/"
    );
}
