//! Second phase of loading: [`file::MappingFile`] → [`Mapping`], collecting every problem.
//!
//! This file owns the walk over a file and the error collector ([`Ctx`]); by concern:
//!
//! - [`protocol`]: how to talk to the vendor: auth, request options, limits, error rules;
//! - [`objects`]: the field maps of teams, members and users, and an operation's `fields`;
//! - [`operations`]: operations, their steps (and `pages`), the people lookup;
//! - [`checks`]: what only the whole file can show: references between operations, and
//!   declared fields that no write carries.

mod checks;
mod objects;
mod operations;
mod protocol;

use checks::{cross_check, unwritten_fields};
use objects::{context_fields, field, member_map, push, team_declared, team_map, user_map};
use operations::{operation, operation_names, people};
use protocol::{auth, errors, limits, request, rule};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use http::{HeaderName, Method};
use regex::Regex;
use toml::Spanned;

use super::errors::{ErrorFormat, ErrorRule, Outcome};
use super::expr::Expr;
use super::fields::{Field, FieldMap, Kind, TimeFormat, UnknownRole};
use super::file::{self, FieldFile, MappingFile, StatusFile};
use super::template::{TextTemplate, ValueTemplate};
use super::{
    Auth, CheckError, Limits, Mapping, MemberStyle, OperationPlan, Paging, PeopleLookup,
    RequestOptions, Step, StepPages, TokenPlan,
};
use crate::canonical::validate::{DESCRIPTION_MAX, NAME_MAX, TEAM_WRITABLE};
use crate::canonical::Operation;
use crate::error::ErrorCode;

struct Ctx<'a> {
    path: &'a Path,
    source: &'a str,
    errors: Vec<CheckError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    /// Records a problem at `offset`, named by the key in force there: `operations.get_team.
    /// steps[1].method`. A reason that already names its table (`[operations.x]: ...`) is
    /// kept as it is; one that names the bare key (`` `name`: ...``) gets the whole path.
    fn error(&mut self, offset: usize, reason: impl Into<String>) {
        let line = self.line(offset);
        let reason = reason.into();
        let reason = match super::file_errors::key_at(self.source, offset) {
            Some(_) if reason.starts_with('[') => reason,
            Some(key) => {
                let last = key.rsplit('.').next().unwrap_or(&key);
                let last = last.split('[').next().unwrap_or(last);
                match reason.strip_prefix(&format!("`{last}`: ")) {
                    Some(rest) => format!("`{key}`: {rest}"),
                    None => format!("`{key}`: {reason}"),
                }
            }
            None => reason,
        };
        self.errors.push(CheckError {
            file: self.path.to_path_buf(),
            line,
            reason,
        });
    }

    fn expr(&mut self, spanned: &Spanned<String>) -> Option<Expr> {
        match Expr::parse(spanned.get_ref()) {
            Ok(e) => Some(e),
            Err(reason) => {
                self.error(spanned.span().start, reason);
                None
            }
        }
    }

    /// A JSON body template; `label` names it in errors (`body`, `auth.token.body`).
    fn body(
        &mut self,
        spanned: &Option<Spanned<toml::Value>>,
        label: &str,
    ) -> Option<ValueTemplate> {
        let b = spanned.as_ref()?;
        match ValueTemplate::compile(b.get_ref()) {
            Ok(t) => Some(t),
            Err(reason) => {
                self.error(b.span().start, format!("{label}: {reason}"));
                None
            }
        }
    }

    fn opt_expr(&mut self, spanned: &Option<Spanned<String>>) -> Option<Expr> {
        spanned.as_ref().and_then(|s| self.expr(s))
    }

    fn text(&mut self, spanned: &Spanned<String>, allow_credential: bool) -> Option<TextTemplate> {
        match TextTemplate::parse(spanned.get_ref(), allow_credential) {
            Ok(t) => Some(t),
            Err(reason) => {
                self.error(spanned.span().start, reason);
                None
            }
        }
    }

    fn header_name(&mut self, name: &str, offset: usize) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.error(offset, format!("`{name}` is not a valid header name"));
                None
            }
        }
    }

    fn operation(&mut self, spanned: &Spanned<String>) -> Option<Operation> {
        let op = Operation::parse(spanned.get_ref());
        if op.is_none() {
            self.error(
                spanned.span().start,
                format!(
                    "`{}` is not a canonical operation (one of {})",
                    spanned.get_ref(),
                    operation_names()
                ),
            );
        }
        op
    }
}

pub fn compile(path: &Path, source: &str) -> Result<Mapping, Vec<CheckError>> {
    let raw: MappingFile = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, reason) = super::file_errors::explain(source, e.span(), e.message());
            return Err(vec![CheckError {
                file: path.to_path_buf(),
                line,
                reason,
            }]);
        }
    };
    let mut cx = Ctx {
        path,
        source,
        errors: Vec::new(),
    };
    let auth = auth(&mut cx, &raw.auth);
    let request = request(&mut cx, &raw.request);
    let limits = limits(&mut cx, &raw.limits);
    let (error_format, error_rules) = errors(&mut cx, &raw.errors);
    let team_raw = raw.team.get_ref();
    let team = team_map(&mut cx, team_raw);
    let team_hidden_if = cx.opt_expr(&team_raw.hidden_if);
    let member = match &raw.member {
        Some(m) => member_map(&mut cx, m.get_ref()),
        None => FieldMap::default(),
    };
    let user = match &raw.user {
        Some(u) => user_map(&mut cx, u.get_ref()),
        None => FieldMap::default(),
    };
    let people = raw.people.as_ref().and_then(|p| people(&mut cx, p));
    if let (Some(p), None) = (&raw.people, &raw.member) {
        cx.error(
            p.span().start,
            "[people] fills in members' details but there is no [member] table",
        );
    }
    if team.has("members") && raw.member.is_none() {
        cx.error(
            raw.team.span().start,
            "[team] has `members` but there is no [member] table",
        );
    }
    let mut operations = BTreeMap::new();
    for (name, spanned) in &raw.operations {
        let Some(op) = Operation::parse(name) else {
            cx.error(
                spanned.span().start,
                format!(
                    "[operations.{name}]: `{name}` is not a canonical operation (one of {})",
                    operation_names()
                ),
            );
            continue;
        };
        if let Some(plan) = operation(&mut cx, op, spanned) {
            operations.insert(op, plan);
        }
    }
    cross_check(&mut cx, &raw, &operations);
    unwritten_fields(&mut cx, &raw, &team);
    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| e.line);
        return Err(cx.errors);
    }
    Ok(Mapping {
        file: path.to_path_buf(),
        vendor: raw.vendor.into_inner(),
        about: raw.about,
        auth,
        request,
        limits,
        error_format,
        error_rules,
        team,
        team_hidden_if,
        member,
        user,
        people,
        operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str) -> Vec<(usize, String)> {
        match compile(Path::new("t.toml"), source) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.line, e.reason)).collect(),
        }
    }

    const MINIMAL: &str = r#"vendor = "x"
[team]
id = "$.id"
name = "$.name"
[operations.get_team]
team = "$.steps.get.body"
[[operations.get_team.steps]]
name = "get"
method = "GET"
path = "/teams/{path.id}"
"#;

    #[test]
    fn a_minimal_mapping_compiles() {
        assert_eq!(check(MINIMAL), Vec::<(usize, String)>::new());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let broken = MINIMAL
            .replace("team = \"$.steps.get.body\"", "team = \"steps.get.body\"")
            .replace("method = \"GET\"", "method = \"FETCH\"");
        let errors = check(&broken);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 6);
        assert!(errors[0].1.contains("not a JSONPath"));
        assert_eq!(errors[1].0, 9);
    }

    #[test]
    fn a_canonical_role_may_stand_for_several_vendor_roles() {
        let with_roles = |values: &str| {
            format!(
                "{MINIMAL}[member]\nuser_id = \"$.id\"\nrole = {{ path = \"$.role\", values = {values} }}\n"
            )
        };
        let mapping = compile(
            Path::new("t.toml"),
            &with_roles("{ admin = \"manager\", member = [\"responder\", \"observer\"] }"),
        )
        .unwrap();
        let members = &mapping.member;
        assert_eq!(
            members.vendor_role("member"),
            Some(serde_json::json!("responder"))
        );
        for (vendor, canonical) in [
            ("manager", "admin"),
            ("responder", "member"),
            ("observer", "member"),
        ] {
            let read = members.read(
                serde_json::json!({"id": "u", "role": vendor}),
                &["role"],
                None,
                false,
            );
            assert_eq!(read["role"], canonical, "{vendor}");
        }
        for bad in [
            "{ admin = \"manager\", member = [] }",
            "{ admin = \"manager\", member = [\"responder\", \"manager\"] }",
        ] {
            let errors = check(&with_roles(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        }
    }

    #[test]
    fn vendor_codes_may_be_numbers_and_a_wrong_one_is_explained() {
        let rules = |codes: &str| {
            format!("{MINIMAL}[[errors.rules]]\nvendor_code = {codes}\ncode = \"not_found\"\n")
        };
        for ok in ["2001", "\"InvalidParameter\"", "[\"Unauthorized\", 4010]"] {
            let compiled = compile(Path::new("t.toml"), &rules(ok));
            assert!(compiled.is_ok(), "{ok}: {:?}", compiled.err());
        }
        let mapping = compile(Path::new("t.toml"), &rules("[\"Unauthorized\", 4010]")).unwrap();
        assert_eq!(
            mapping.error_rules[0].vendor_codes,
            ["Unauthorized", "4010"]
        );
        for bad in ["1.5", "true", "[[1]]"] {
            let errors = check(&rules(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            let (line, reason) = &errors[0];
            assert_eq!(*line, 12, "{bad}: {reason}");
            assert!(
                reason.contains("a vendor error code: a string or an integer")
                    && !reason.contains("untagged"),
                "{bad}: {reason}"
            );
        }
    }

    /// The one error of a file that does not deserialize.
    fn one(source: &str) -> (usize, String) {
        let errors = check(source);
        assert_eq!(errors.len(), 1, "{source}\n{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn a_wrong_value_names_its_key_and_the_form_expected() {
        let head = "vendor = \"x\"\n[team]\nid = \"$.id\"\n";
        let named = format!("{head}name = \"$.name\"\n");
        for (source, line, wanted) in [
            (
                format!("{head}name = 5\n"),
                4,
                "`team.name`: expected a JSONPath in quotes (`name = \"$.name\"`) or a table",
            ),
            (
                format!("{head}name = {{ format = \"unix\" }}\n"),
                4,
                "`team.name` needs `path` (`name = { path = \"$.name\" }`)",
            ),
            (
                format!("{head}[team.name]\nformat = \"unix\"\n"),
                4,
                "`team.name` needs `path`",
            ),
            (
                format!("{named}[[errors.rules]]\ncode = \"x\"\n[[errors.rules]]\nstatus = []\ncode = \"x\"\n"),
                8,
                "`errors.rules[2].status`: expected an HTTP status from 100 to 599, one number or a list (`status = 404` or `status = [400, 422]`), found an empty list",
            ),
            (
                format!("{named}[[errors.rules]]\nstatus = 4040\ncode = \"x\"\n"),
                6,
                "`errors.rules[1].status`: expected an HTTP status from 100 to 599",
            ),
            (
                format!("{named}[limits]\nrequests_per_minute = 1.5\n"),
                6,
                "`limits.requests_per_minute`: expected a whole number (`requests_per_minute = 600`), found the number `1.5`",
            ),
            (
                format!("{named}[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nrequire = \"$.x\"\n"),
                8,
                "`operations.get_team.steps[1].require`: expected a list (`require = [\"$.steps.get.body.id\"]`), found the text \"$.x\"",
            ),
            (
                format!("{named}[operations.get_team]\nsteps = 3\n"),
                6,
                "`operations.get_team.steps`: expected a list of tables, each under its own `[[operations.get_team.steps]]` header",
            ),
            (
                format!("{named}[operations.get_team]\nread = 1\n"),
                6,
                "`operations.get_team.read`: expected text in quotes (`read = \"get_team\"`), found the number `1`",
            ),
            (
                format!("{named}[people]\nitems = \"$.x\"\nuser_id = \"$.id\"\n[[people.steps]]\nmethod = 1\n"),
                9,
                "`people.steps[1].method`: expected text in quotes (`method = \"GET\"`)",
            ),
            (
                "vendor = \"x\"\n[team]\nid = \"$.id\"\n".to_string(),
                2,
                "`team` needs `name` (`name = \"$.name\"`)",
            ),
            (
                "[team]\nid = \"$.id\"\nname = \"$.name\"\n".to_string(),
                1,
                "the mapping needs `vendor` (`vendor = \"acme\"`)",
            ),
        ] {
            let (got_line, reason) = one(&source);
            assert_eq!(got_line, line, "{source}\n{reason}");
            assert!(reason.starts_with(wanted), "{source}\n{reason:?}\nlacks {wanted:?}");
        }
    }

    #[test]
    fn the_key_path_survives_awkward_sources() {
        // CRLF line endings, no final newline, a key on the last line.
        let crlf = "vendor = \"x\"\r\n[team]\r\nid = \"$.id\"\r\nname = 5";
        assert_eq!(one(crlf).0, 4);
        assert!(
            one(crlf).1.starts_with("`team.name`: expected a JSONPath"),
            "{:?}",
            one(crlf)
        );
        // Quoted and unicode keys are named as written, a dot inside quotes is no separator.
        let quoted = "vendor = \"x\"\n\"a.b\" = 1\n[team]\nid = \"$.id\"\nname = \"$.name\"\n";
        assert!(
            one(quoted).1.starts_with("`\"a.b\"`: unknown key"),
            "{:?}",
            one(quoted)
        );
        let unicode = "vendor = \"x\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n\"équipe\" = 1\n";
        assert!(
            one(unicode).1.starts_with("`team.\"équipe\"`: unknown key"),
            "{:?}",
            one(unicode)
        );
        // A header-like line inside a multi-line string or array is not a header.
        let hidden = "vendor = \"x\"\nabout = \"\"\"\n[limits]\n\"\"\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nbody = [\n[1],\n]\nwhen = 1\n";
        assert_eq!(
            one(hidden),
            (
                14,
                "`operations.get_team.steps[1].when`: expected text in quotes (`when = \"$.steps.get.body\"`), found the number `1`".to_string()
            )
        );
        // An inline table is named by its outer key.
        let inline = "vendor = \"x\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nquery = { a = 1 }\n";
        assert!(
            one(inline)
                .1
                .starts_with("`operations.get_team.steps[1].query`"),
            "{:?}",
            one(inline)
        );
    }

    #[test]
    fn no_prefix_of_a_broken_file_panics() {
        let broken = "vendor = \"x\"\r\n[team]\nid = { path = \"$.id\", fromat = 1 }\n\"n.m\" = '''\n[x]\n'''\n[[errors.rules]]\nstatus = [400, \"é\"]\n# [[not.a.header]]\n[[operations.get_team.steps]]\nrequire = [\n  1]\n";
        for (at, _) in broken.char_indices() {
            let _ = check(&broken[..at]);
        }
    }
}
