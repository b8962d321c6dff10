//! Words for the errors of the first loading phase (TOML syntax and serde types).
//!
//! `toml` reports such an error with a byte span and serde's wording ("invalid type: string
//! \"ten\", expected i64"), which names neither the key nor the form a user should write. Here
//! the span is turned into the dotted key in force at that place (the table header plus the
//! key on the line, `errors.rules[2].status`), and serde's common wordings into what is
//! expected, with an example. The source is scanned line by line: mapping files are small, and
//! the scan only needs headers, keys and where multi-line values and strings begin and end.

use std::collections::HashMap;
use std::ops::Range;

/// The line (1-based, 0 without a span) and the reason to print for a `toml` error.
pub(super) fn explain(source: &str, span: Option<Range<usize>>, message: &str) -> (usize, String) {
    let message = message.trim();
    let Some(span) = span else {
        return (0, message.to_string());
    };
    let offset = span.start.min(source.len());
    let line = source.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1;
    // toml gives the root table the empty span 0..0 (a top-level key is missing); whatever
    // the first line holds is not the place.
    let place = if span.is_empty() && span.start == 0 {
        Place::default()
    } else {
        locate(source, offset)
    };
    (line, reword(&place, offset, message))
}

/// The dotted key in force at a byte offset of a mapping file (`operations.get_team.steps[1]
/// .method`), for the errors of the second phase, which know a value's span but not its key.
pub(super) fn key_at(source: &str, offset: usize) -> Option<String> {
    let place = locate(source, offset.min(source.len()));
    (!place.key.is_empty()).then(|| place.dotted())
}

/// Where an offset is: the dotted key, and where the value of the line's key starts.
#[derive(Debug, Default)]
struct Place {
    /// Display segments: quoted keys as written, array-of-tables entries with `[n]` (1-based).
    key: Vec<String>,
    /// Byte offset of the value of the key whose statement holds the offset, if any.
    value_start: Option<usize>,
    /// That value is a list (`require = [...]`): an offset past its start is an element.
    value_is_list: bool,
}

impl Place {
    fn dotted(&self) -> String {
        self.key.join(".")
    }

    fn last(&self) -> &str {
        self.key.last().map(String::as_str).unwrap_or("")
    }
}

enum Statement {
    Header(Vec<String>),
    ArrayHeader(Vec<String>),
    /// The key, where its value starts, and whether that value is a list.
    Key(Vec<String>, usize, bool),
    Nothing,
}

fn locate(source: &str, offset: usize) -> Place {
    let mut multiline: Option<&'static str> = None;
    let mut depth = 0usize;
    let mut header: Vec<String> = Vec::new();
    // Entries seen per array-of-tables path, so that `[[errors.rules]]` gets its index.
    let mut counts: HashMap<Vec<String>, usize> = HashMap::new();
    let mut key: Option<(Vec<String>, usize, bool)> = None;
    let mut start = 0usize;
    for raw in source.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        // A line that starts inside a multi-line string or array continues the statement
        // above it; only the others can open a table or set a key.
        if multiline.is_none() && depth == 0 {
            key = None;
            match statement(line, start) {
                Statement::Header(segments) => header = display(&segments, &counts),
                Statement::ArrayHeader(segments) => {
                    counts.retain(|path, _| !path.starts_with(&segments) || *path == segments);
                    *counts.entry(segments.clone()).or_default() += 1;
                    header = display(&segments, &counts);
                }
                Statement::Key(segments, value, list) => key = Some((segments, value, list)),
                Statement::Nothing => {}
            }
        }
        scan(line, &mut multiline, &mut depth);
        start += raw.len();
        if start > offset {
            break;
        }
    }
    let mut place = Place {
        key: header,
        ..Place::default()
    };
    if let Some((segments, value, list)) = key {
        place.key.extend(segments);
        place.value_start = Some(value);
        place.value_is_list = list;
    }
    place
}

fn display(segments: &[String], counts: &HashMap<Vec<String>, usize>) -> Vec<String> {
    (1..=segments.len())
        .map(|n| match counts.get(&segments[..n]) {
            Some(count) => format!("{}[{count}]", segments[n - 1]),
            None => segments[n - 1].clone(),
        })
        .collect()
}

fn statement(line: &str, line_start: usize) -> Statement {
    let trimmed = line.trim_start_matches([' ', '\t', '\u{feff}']);
    if let Some(rest) = trimmed.strip_prefix("[[") {
        return match keys(rest) {
            Some((segments, after)) if after.trim_start().starts_with("]]") => {
                Statement::ArrayHeader(segments)
            }
            _ => Statement::Nothing,
        };
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        return match keys(rest) {
            Some((segments, after)) if after.trim_start().starts_with(']') => {
                Statement::Header(segments)
            }
            _ => Statement::Nothing,
        };
    }
    match keys(trimmed) {
        Some((segments, after)) => match after.trim_start().strip_prefix('=') {
            Some(value) => {
                let value = value.trim_start();
                Statement::Key(
                    segments,
                    line_start + line.len() - value.len(),
                    value.starts_with('['),
                )
            }
            None => Statement::Nothing,
        },
        None => Statement::Nothing,
    }
}

/// A dotted key at the start of `s`, and what follows it. Quoted keys keep their quotes, so
/// `"a.b"` stays one segment and reads as written.
fn keys(s: &str) -> Option<(Vec<String>, &str)> {
    let mut segments = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let len = match rest.as_bytes().first()? {
            b'"' => closing(rest, b'"')?,
            b'\'' => closing(rest, b'\'')?,
            _ => rest
                .find(|c: char| c.is_whitespace() || ".=[]{}#\"',".contains(c))
                .unwrap_or(rest.len()),
        };
        if len == 0 {
            return None;
        }
        segments.push(rest[..len].to_string());
        rest = rest[len..].trim_start_matches([' ', '\t']);
        match rest.strip_prefix('.') {
            Some(more) => rest = more,
            None => return Some((segments, rest)),
        }
    }
}

/// The length of a quoted key or string at the start of `s`, quotes included.
fn closing(s: &str, quote: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Follows strings, comments and brackets through one line, so that the next line is known to
/// start a statement or to continue one.
fn scan(line: &str, multiline: &mut Option<&'static str>, depth: &mut usize) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(delimiter) = *multiline {
            match line[i..].find(delimiter) {
                Some(at) => {
                    i += at + delimiter.len();
                    *multiline = None;
                    continue;
                }
                None => return,
            }
        }
        let rest = &line[i..];
        match bytes[i] {
            b'#' => return,
            b'"' if rest.starts_with("\"\"\"") => {
                *multiline = Some("\"\"\"");
                i += 3;
            }
            b'\'' if rest.starts_with("'''") => {
                *multiline = Some("'''");
                i += 3;
            }
            quote @ (b'"' | b'\'') => i += closing(rest, quote).unwrap_or(rest.len()),
            b'[' | b'{' => {
                *depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                *depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// serde's wording, parsed: `invalid type: FOUND, expected EXPECTED` and its kin.
fn reword(place: &Place, offset: usize, message: &str) -> String {
    let key = place.dotted();
    let named = |text: String| {
        if key.is_empty() {
            text
        } else {
            format!("`{key}`: {text}")
        }
    };
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        if let Some((found, expected)) = split_expected(rest) {
            return named(format!(
                "expected {}, found {}",
                form(place, offset, expected, found),
                found_words(found)
            ));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((length, expected)) = split_expected(rest) {
            let found = match length {
                "0" => "an empty list".to_string(),
                n => format!("a list of {n}"),
            };
            return named(format!(
                "expected {}, found {found}",
                form(place, offset, expected, "")
            ));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let mut full = place.key.clone();
            // The span is on the unknown key itself, unless it sits in an inline table.
            if unquoted(place.last()) != field {
                full.push(quoted(field));
            }
            let allowed = match expected.trim_start_matches(", ") {
                "there are no fields" => "this table takes no keys".to_string(),
                e => e.replace("expected one of", "the keys here are"),
            };
            return format!("`{}`: unknown key; {allowed}", full.join("."));
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(field) = rest.strip_suffix('`') {
            let example = missing_example(place, field);
            let table = if key.is_empty() {
                "the mapping".to_string()
            } else {
                format!("`{key}`")
            };
            return format!("{table} needs `{field}` ({example})");
        }
    }
    if let Some(field) = message
        .strip_prefix("duplicate field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return named(format!("`{field}` is given twice; give it once"));
    }
    named(message.to_string())
}

/// `FOUND, expected EXPECTED`. The last `, expected ` is the separator: what was found may be
/// the user's text and contain those words, the expected forms written here do not.
fn split_expected(rest: &str) -> Option<(&str, &str)> {
    rest.rsplit_once(", expected ")
}

fn found_words(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    if let Some(number) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        return format!("the number {number}");
    }
    match found {
        "map" => "a table".to_string(),
        "sequence" => "a list".to_string(),
        other => other.to_string(),
    }
}

/// What `expected` means in a mapping file, with an example for this key. The expected forms
/// written for mapping types (`status`, fields, `vendor_code`) already carry their examples.
fn form(place: &Place, offset: usize, expected: &str, found: &str) -> String {
    if expected.contains('`') {
        return expected.to_string();
    }
    let name = bare(place.last());
    let in_list = place.value_is_list && place.value_start.is_some_and(|start| offset > start);
    let (words, sample) = match expected {
        "i8" | "i16" | "i32" | "i64" | "isize" => ("a whole number", number_sample(name)),
        "u8" | "u16" | "u32" | "u64" | "usize" => {
            ("a whole number, 0 or more", number_sample(name))
        }
        "f32" | "f64" => ("a number", number_sample(name)),
        "a boolean" => ("`true` or `false`", "true".to_string()),
        "a string" if in_list => {
            return format!(
                "a list of texts in quotes (`{name} = {}`)",
                list_sample(name)
            );
        }
        "a string" => ("text in quotes", text_sample(place, name)),
        // The keys whose lists are of tables: a list of text would mislead as their example.
        "a sequence" if found == "map" || matches!(name, "steps" | "rules" | "errors") => {
            return format!(
                "a list of tables, each under its own `[[{}]]` header",
                place.dotted()
            );
        }
        "a sequence" => ("a list", list_sample(name)),
        "a map" => ("a table", "{ ... }".to_string()),
        e if e.starts_with("struct ") => {
            return format!("a table (`[{}]` with its keys below it)", place.dotted());
        }
        other => return other.to_string(),
    };
    format!("{words} (`{name} = {sample}`)")
}

fn bare(segment: &str) -> &str {
    match segment.find('[') {
        Some(at) if !segment.starts_with(['"', '\'']) => &segment[..at],
        _ => segment,
    }
}

fn number_sample(name: &str) -> String {
    match name {
        "requests_per_minute" => "600",
        "requests_per_second" => "10",
        "batch_max" => "50",
        "refresh_before_secs" => "60",
        _ => "100",
    }
    .to_string()
}

fn text_sample(place: &Place, name: &str) -> String {
    let in_step_or_token = place
        .key
        .iter()
        .any(|k| bare(k) == "steps" || bare(k) == "token");
    match name {
        "method" => "\"GET\"",
        "path" if in_step_or_token => "\"/teams/{path.id}\"",
        "path" => "\"$.name\"",
        "code" => "\"not_found\"",
        "read" | "then" | "resolve_user" => "\"get_team\"",
        "vendor" => "\"acme\"",
        "format" => "\"unix\"",
        "paging" => "\"pages\"",
        "style" => "\"checked\"",
        "name" if in_step_or_token => "\"get\"",
        _ => "\"$.steps.get.body\"",
    }
    .to_string()
}

fn list_sample(name: &str) -> String {
    match name {
        "operations" => "[\"get_team\"]",
        "ok_codes" => "[\"0\"]",
        _ => "[\"$.steps.get.body.id\"]",
    }
    .to_string()
}

fn missing_example(place: &Place, field: &str) -> String {
    let in_step_or_token = place
        .key
        .iter()
        .any(|k| bare(k) == "steps" || bare(k) == "token");
    match field {
        "path" if !in_step_or_token => {
            let name = bare(place.last());
            format!("`{name} = {{ path = \"$.{name}\" }}`")
        }
        "team" => "`[team]` with `id = \"$.id\"` and `name = \"$.name\"`".to_string(),
        "id" | "name" | "user_id" | "email" | "username" if !in_step_or_token => {
            format!("`{field} = \"$.{field}\"`")
        }
        "items" | "token" => format!("`{field} = \"$.steps.get.body\"`"),
        other => {
            let sample_place = Place {
                key: {
                    let mut k = place.key.clone();
                    k.push(other.to_string());
                    k
                },
                ..Place::default()
            };
            format!("`{other} = {}`", text_sample(&sample_place, other))
        }
    }
}

fn unquoted(segment: &str) -> &str {
    segment
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| {
            segment
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
        })
        .unwrap_or(segment)
}

/// A key as it would be written: bare when TOML allows it, quoted otherwise.
fn quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
