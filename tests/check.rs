//! `teamgate check`: broken mapping and config files report every problem with file, line and
//! reason, and the exit status says whether any was found.

use std::path::{Path, PathBuf};
use std::process::Command;

use teamgate::mapping::Mapping;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each broken file lists what it must report in `# expect: LINE: TEXT` comments.
fn expectations(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let (line, text) = rest.split_once(": ").expect("# expect: LINE: TEXT");
            (line.parse().expect("line number"), text.to_string())
        })
        .collect()
}

#[test]
fn every_broken_mapping_reports_each_problem_with_its_line() {
    let dir = root().join("tests/fixtures/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let expected = expectations(&source);
        assert!(
            !expected.is_empty(),
            "{} lists no expectation",
            file.display()
        );
        let errors = Mapping::parse(&file, &source).expect_err("a broken mapping must not load");
        let got: Vec<(usize, String)> = errors.iter().map(|e| (e.line, e.reason.clone())).collect();
        assert_eq!(got.len(), expected.len(), "{}: {got:#?}", file.display());
        for ((line, reason), (want_line, want_text)) in got.iter().zip(&expected) {
            assert_eq!(line, want_line, "{}: {reason}", file.display());
            // Every problem names where it is: a dotted key (`errors.rules[2].status`), or
            // the table it is about (`[operations.get_team]`), or the whole file.
            assert!(
                reason.starts_with('`')
                    || reason.starts_with('[')
                    || reason.starts_with("the mapping needs"),
                "{}:{line}: {reason:?} names no key",
                file.display()
            );
            assert!(
                reason.contains(want_text.as_str()),
                "{}:{line}: {reason:?} lacks {want_text:?}",
                file.display()
            );
        }
        assert!(errors.iter().all(|e| e.file == file));
    }
}

#[test]
fn every_shipped_mapping_and_the_shipped_config_check_clean() {
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .current_dir(root())
        .args(["check", "--config", "config.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok"), "{stdout}");
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn check_reports_config_and_mapping_problems_together_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("teamgate-check-{}", std::process::id()));
    let broken = root().join("tests/fixtures/broken/bad_references.toml");
    let config = write_config(
        &dir,
        &format!(
            "listen = \"nowhere\"\ndefault_backend = \"missing\"\n[backends.a]\nmapping = \"{}\"\nsimulator = \"nope\"\n",
            broken.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let config_name = config.display().to_string();
    assert!(
        stdout.contains(&format!("{config_name}:1: listen")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{config_name}:2: default_backend `missing`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{config_name}:5: backends.a.simulator: unknown simulator `nope`"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}:12:", broken.display())),
        "{stdout}"
    );
    assert!(stdout.contains("8 problem(s) found"), "{stdout}");

    // `serve` runs the same check and refuses to start.
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to start"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_real_vendor_needs_its_credential_variable() {
    let dir = std::env::temp_dir().join(format!("teamgate-cred-{}", std::process::id()));
    let config = write_config(
        &dir,
        &format!(
            "default_backend = \"g\"\n[backends.g]\nmapping = \"{}\"\nbase_url = \"http://127.0.0.1:9\"\ncredential_env = \"TEAMGATE_SURELY_UNSET_VAR\"\n",
            root().join("mappings/grafana.toml").display()
        ),
    );
    let errors = teamgate::config::check(&config, &[]).expect_err("missing credential");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 5);
    assert!(errors[0].reason.contains("TEAMGATE_SURELY_UNSET_VAR"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_print_shows_the_configuration_in_effect_without_secrets() {
    let dir = std::env::temp_dir().join(format!("teamgate-print-{}", std::process::id()));
    let config = write_config(
        &dir,
        &format!(
            "default_backend = \"g\"\n[server]\nconcurrency_limit = 50\n[backends.g]\nmapping = \"{}\"\nbase_url = \"https://bot:url-pa55word@grafana.example\"\ncredential_env = \"TEAMGATE_PRINT_TEST_TOKEN\"\n",
            root().join("mappings/grafana.toml").display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["check", "--print", "--config"])
        .arg(&config)
        .env("TEAMGATE_PRINT_TEST_TOKEN", "glsa_the-real-token-value")
        .env("TEAMGATE_CONCURRENCY_LIMIT", "7")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("concurrency_limit = 7"),
        "the environment wins: {stdout}"
    );
    assert!(
        stdout.contains("drain_grace_ms = 5000"),
        "defaults shown: {stdout}"
    );
    assert!(
        stdout.contains("credential_env = \"TEAMGATE_PRINT_TEST_TOKEN\"  # set"),
        "{stdout}"
    );
    assert!(stdout.contains("https://***@grafana.example"), "{stdout}");
    for secret in ["glsa_the-real-token-value", "url-pa55word"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }
    // A bad override names its variable and fails the check.
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["check", "--config"])
        .arg(&config)
        .env("TEAMGATE_PRINT_TEST_TOKEN", "x")
        .env("TEAMGATE_CONCURRENCY_LIMIT", "many")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("TEAMGATE_CONCURRENCY_LIMIT: `many` is not a whole number"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
