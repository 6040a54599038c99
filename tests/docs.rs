//! The docs against the repository: every key of `config/default.toml` is named in
//! `docs/configuration.md`, and every relative link, `#anchor` and backticked repository
//! path in `README.md` and `docs/*.md` resolves.
//!
//! Plain text processing, no Markdown crate: fenced code blocks are skipped, inline code
//! spans are found by matching backtick runs (a span may wrap lines, not cross a blank
//! line), headings (ATX `#` headings only; the docs use no setext ones) become anchors
//! with GitHub's slug rules. Run with `cargo test --test docs`.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level directories: a backticked word starting with one of them is a repository
/// path and must exist.
const REPO_DIRS: &[&str] =
    &["src/", "actors/", "config/", "tests/", "benches/", "scripts/", "contrib/", "docs/", "fuzz/", "clients/"];

/// Top-level files checked when a backticked word names one of them.
const REPO_FILES: &[&str] = &["Cargo.toml", "Cargo.lock", "README.md", "rustfmt.toml", "LICENSE-MIT", "LICENSE-APACHE"];

/// Tables keyed by a name the user chooses (`[gns3.servers.<name>]`): the docs may write
/// the key with `<name>` instead of the name `config/default.toml` uses.
const NAMED_TABLES: &[&str] = &["gns3.servers"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Configuration keys

/// Every key of a TOML document as a dotted path (`redis.host`,
/// `gns3.servers.default.retry.jitter`). An empty table is a key of its own
/// (`events.priorities`); an array of tables contributes `name[].key` for the keys of its
/// tables (`sinks[].url`); any other array is one key. Commented-out keys (the examples
/// of `[[sinks]]`, `[[auth.tokens]]` and `[events.priorities]` in `config/default.toml`)
/// are not keys of the document and are not required here; the docs name them anyway.
fn config_keys(toml: &str) -> BTreeSet<String> {
    let cfg = config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .unwrap_or_else(|e| panic!("the TOML does not parse: {e}"));
    let value: serde_json::Value = cfg.try_deserialize().unwrap_or_else(|e| panic!("the TOML does not convert: {e}"));
    let mut keys = BTreeSet::new();
    walk_keys("", &value, &mut keys);
    keys
}

fn walk_keys(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    use serde_json::Value;
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                walk_keys(&join(k), v, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            for item in items {
                walk_keys(&format!("{prefix}[]"), item, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// The ways a key may be written in the docs: as it is, or with `<name>` for the table
/// name of a `NAMED_TABLES` table.
fn documented_forms(key: &str) -> Vec<String> {
    let mut forms = vec![key.to_owned()];
    for table in NAMED_TABLES {
        if let Some((_, tail)) = key.strip_prefix(&format!("{table}.")).and_then(|rest| rest.split_once('.')) {
            forms.push(format!("{table}.<name>.{tail}"));
        }
    }
    forms
}

/// The keys that no code span of `doc` names (in any of their documented forms).
fn undocumented_keys(keys: &BTreeSet<String>, doc: &str) -> Vec<String> {
    let lines = unfenced(doc);
    let named: BTreeSet<String> = code_spans(&lines).0.into_iter().map(|s| s.text).collect();
    keys.iter().filter(|k| !documented_forms(k).iter().any(|f| named.contains(f))).cloned().collect()
}

#[test]
fn every_default_toml_key_is_in_configuration_md() {
    let root = root();
    let keys = config_keys(&read(&root.join("config/default.toml")));
    assert!(keys.len() > 100, "only {} keys found in config/default.toml: is the parser right?", keys.len());
    let missing = undocumented_keys(&keys, &read(&root.join("docs/configuration.md")));
    assert!(
        missing.is_empty(),
        "{} key(s) of config/default.toml are not in docs/configuration.md. Add a row to the table of the \
         key's section under \"## Every key\", with the full dotted key in backticks (gns3.servers keys as \
         `gns3.servers.<name>.…`):\n{}",
        missing.len(),
        missing.iter().map(|k| format!("  - `{k}` (section [{}])", section_of(k))).collect::<Vec<_>>().join("\n")
    );
}

fn section_of(key: &str) -> &str {
    key.rsplit_once('.').map_or(key, |(section, _)| section)
}

// ---------------------------------------------------------------------------------------
// Markdown: fences, code spans, links, headings

/// The document's lines with fenced code blocks blanked (line numbers stay right).
fn unfenced(text: &str) -> Vec<String> {
    let mut fence: Option<(char, usize)> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let run = |c: char| t.chars().take_while(|&x| x == c).count();
        match fence {
            Some((c, n)) => {
                if run(c) >= n && t.trim_start_matches(c).trim().is_empty() {
                    fence = None;
                }
                out.push(String::new());
            }
            None => {
                let opened = ['`', '~'].into_iter().map(|c| (c, run(c))).find(|&(_, n)| n >= 3);
                if let Some(f) = opened {
                    fence = Some(f);
                    out.push(String::new());
                } else {
                    out.push(line.to_owned());
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
struct Span {
    /// 1-based line where the span starts.
    line: usize,
    text: String,
}

/// The inline code spans of the (unfenced) lines, and the text with those spans blanked
/// (so a `[x](y)` inside backticks is not taken for a link). A run of N backticks opens a
/// span closed by the next run of exactly N, within the same paragraph.
fn code_spans(lines: &[String]) -> (Vec<Span>, String) {
    let text = lines.join("\n");
    let bytes = text.as_bytes();
    let mut masked = bytes.to_vec();
    let mut spans = Vec::new();
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let start = i + n;
        let mut j = start;
        let mut close = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        let content = close.map(|c| &text[start..c]);
        match content {
            Some(c) if !crosses_blank_line(c) => {
                let close = start + c.len();
                let one_line = c.replace('\n', " ");
                let trimmed = match one_line.strip_prefix(' ').and_then(|s| s.strip_suffix(' ')) {
                    Some(inner) if !inner.trim().is_empty() => inner.to_owned(),
                    _ => one_line,
                };
                spans.push(Span { line: line_of(&text, i), text: trimmed });
                for b in &mut masked[i..close + n] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = close + n;
            }
            _ => i = start,
        }
    }
    (spans, String::from_utf8(masked).expect("only ASCII bytes were replaced by ASCII"))
}

fn crosses_blank_line(s: &str) -> bool {
    let parts: Vec<&str> = s.split('\n').collect();
    parts.len() > 2 && parts[1..parts.len() - 1].iter().any(|p| p.trim().is_empty())
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].bytes().filter(|&b| b == b'\n').count() + 1
}

#[derive(Debug, Clone, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// Inline links and images `[text](target)` / `![alt](target "title")` of the masked
/// text (code spans blanked, fences blanked). The link text may wrap lines.
fn links(masked: &str) -> Vec<Link> {
    let bytes = masked.as_bytes();
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'[' || (i > 0 && bytes[i - 1] == b'\\') {
            continue;
        }
        let mut depth = 0;
        let mut j = i;
        let close = loop {
            j += 1;
            match bytes.get(j) {
                None => break None,
                Some(b'[') => depth += 1,
                Some(b']') if depth == 0 => break Some(j),
                Some(b']') => depth -= 1,
                Some(b'\n') if bytes.get(j + 1) == Some(&b'\n') => break None,
                _ => {}
            }
        };
        let Some(close) = close else { continue };
        if bytes.get(close + 1) != Some(&b'(') {
            continue;
        }
        let start = close + 2;
        let Some(len) = masked[start..].find([')', '\n']) else { continue };
        if masked.as_bytes()[start + len] != b')' {
            continue;
        }
        let inside = masked[start..start + len].trim();
        let target = inside.split_whitespace().next().unwrap_or("").trim_start_matches('<').trim_end_matches('>');
        out.push(Link { line: line_of(masked, start), target: target.to_owned() });
    }
    out
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-` and `_` kept; spaces
/// become `-`; everything else (punctuation, backticks, symbols) dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a document's headings, duplicates numbered `-1`, `-2`... as GitHub does.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in unfenced(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let title = line[hashes..].trim().trim_end_matches('#').trim();
        let base = slug(&strip_link_syntax(title));
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// `[text](target)` in a heading is shown as `text`.
fn strip_link_syntax(title: &str) -> String {
    let mut s = title.to_owned();
    while let Some(open) = s.find("](") {
        let Some(close) = s[open..].find(')') else { break };
        s.replace_range(open..open + close + 1, "");
    }
    s.replace(['[', ']'], "")
}

fn has_scheme(target: &str) -> bool {
    match target.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// A backticked word that names a file or folder of the repository, if it is one:
/// the first word of the span, starting with a top-level directory or naming a top-level
/// file, made only of path characters (placeholders such as `<name>` and globs are not
/// paths). A `:line` suffix is dropped.
fn repo_path(span: &str) -> Option<&str> {
    let word = span.split_whitespace().next()?;
    let word = match word.rsplit_once(':') {
        Some((path, line)) if !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) => path,
        _ => word,
    };
    let looks_like = REPO_DIRS.iter().any(|d| word.starts_with(d)) || REPO_FILES.contains(&word);
    let path_chars = word.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c));
    (looks_like && path_chars && !word.contains("..")).then_some(word)
}

/// Every broken link, anchor and repository path of one document (`rel`: its path from
/// the repository root, `text`: its content), as `file:line: what`.
fn check_doc(root: &Path, rel: &Path, text: &str, cache: &mut HashMap<PathBuf, BTreeSet<String>>) -> Vec<String> {
    let mut broken = Vec::new();
    let lines = unfenced(text);
    let (spans, masked) = code_spans(&lines);
    let dir = rel.parent().unwrap_or(Path::new(""));
    let own = anchors(text);
    for link in links(&masked) {
        let t = link.target.as_str();
        let at = format!("{}:{}", rel.display(), link.line);
        if t.is_empty() {
            broken.push(format!("{at}: empty link target"));
            continue;
        }
        if has_scheme(t) {
            continue;
        }
        let (path, anchor) = match t.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (t, None),
        };
        let anchor_set = if path.is_empty() {
            own.clone()
        } else {
            let target = root.join(dir).join(path);
            if !target.exists() {
                broken.push(format!("{at}: link to `{t}`: no file {}", dir.join(path).display()));
                continue;
            }
            if anchor.is_none() || !path.ends_with(".md") {
                continue;
            }
            cache.entry(target.clone()).or_insert_with(|| anchors(&read(&target))).clone()
        };
        if let Some(a) = anchor {
            if !anchor_set.contains(a) {
                let file =
                    if path.is_empty() { rel.display().to_string() } else { dir.join(path).display().to_string() };
                broken.push(format!("{at}: link to `{t}`: {file} has no heading with the anchor #{a}"));
            }
        }
    }
    for span in &spans {
        if let Some(p) = repo_path(&span.text) {
            if !root.join(p).exists() {
                broken.push(format!(
                    "{}:{}: `{}` names no file or folder of the repository",
                    rel.display(),
                    span.line,
                    p
                ));
            }
        }
    }
    broken
}

/// `README.md` and every `docs/*.md`, as paths from the repository root.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| Path::new("docs").join(p.file_name().expect("a file name")))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn links_anchors_and_repository_paths_in_the_docs_resolve() {
    let root = root();
    let files = doc_files(&root);
    assert!(files.len() > 5, "docs/*.md not found: {files:?}");
    let mut cache = HashMap::new();
    let broken: Vec<String> =
        files.iter().flat_map(|rel| check_doc(&root, rel, &read(&root.join(rel)), &mut cache)).collect();
    assert!(broken.is_empty(), "{} broken reference(s) in the docs:\n{}", broken.len(), broken.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The checks themselves, on known inputs (each must be able to fail)

#[test]
fn slug_follows_githubs_rules() {
    assert_eq!(slug("Several instances on one Redis"), "several-instances-on-one-redis");
    assert_eq!(slug("The test-bed: `scripts/gns3-testbed`"), "the-test-bed-scriptsgns3-testbed");
    assert_eq!(slug("Versioned API (`/api/v2/`)"), "versioned-api-apiv2");
    assert_eq!(slug("In-process modules (Rust)"), "in-process-modules-rust");
    assert_eq!(slug("Following projects — the policy"), "following-projects--the-policy");
    assert_eq!(slug("`[[sinks]]` and snake_case"), "sinks-and-snake_case");
    let a = anchors("# Title\n## Part\n```\n## Not a heading\n```\n## Part\n### Part\n#NoSpace\n");
    let want: BTreeSet<String> = ["title", "part", "part-1", "part-2"].map(String::from).into();
    assert_eq!(a, want);
}

#[test]
fn code_spans_and_links_skip_code() {
    let text = "A [good](#title) link, `[not](#a-link)` and ``a ` b``.\n\
                ```\n[fenced](#nope)\n```\n\
                [wrapped\ntext](other.md#x) and ![img](pic.png \"title\") [ext](https://example.org/x)\n\
                `src/a\nb.rs` `unclosed\n\n`x`\n";
    let lines = unfenced(text);
    let (spans, masked) = code_spans(&lines);
    let texts: Vec<&str> = spans.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["[not](#a-link)", "a ` b", "src/a b.rs", "x"]);
    let found = links(&masked);
    let got: Vec<(usize, &str)> = found.iter().map(|l| (l.line, l.target.as_str())).collect();
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        ["#title", "other.md#x", "pic.png", "https://example.org/x"]
    );
    assert_eq!(got[1].0, 6, "a wrapped link is reported on its target's line");
    assert_eq!(repo_path("scripts/test --test api"), Some("scripts/test"));
    assert_eq!(repo_path("src/error.rs:12"), Some("src/error.rs"));
    assert_eq!(repo_path("gns3.servers.<name>.host"), None);
    assert_eq!(repo_path("src/ws/{a,b}.rs"), None);
    assert_eq!(repo_path("Cargo.toml"), Some("Cargo.toml"));
    assert!(has_scheme("mailto:a@b") && has_scheme("https://x") && !has_scheme("docs/a.md#x:y"));
}

#[test]
fn the_link_check_reports_every_bad_reference_with_its_line() {
    let root = root();
    let text = "# Known\n\n[fine](#known) [self](#missing)\n[file](no-such-file.md) [page](README.md#no-such-anchor)\n\
                [real](README.md#gns3-central) `src/no_such_file.rs` `config/default.toml` `Cargo.toml`\n\
                ```\n[in a fence](#missing-too) `src/not_checked.rs`\n```\n";
    let broken = check_doc(&root, Path::new("fake.md"), text, &mut HashMap::new());
    let lines: Vec<&str> = broken.iter().map(|b| b.split(": ").next().unwrap_or("")).collect();
    assert_eq!(lines, ["fake.md:3", "fake.md:4", "fake.md:4", "fake.md:5"], "{broken:#?}");
    assert!(broken[0].contains("#missing"), "{broken:#?}");
    assert!(broken[1].contains("no-such-file.md"), "{broken:#?}");
    assert!(broken[2].contains("#no-such-anchor"), "{broken:#?}");
    assert!(broken[3].contains("src/no_such_file.rs"), "{broken:#?}");
}

#[test]
fn config_keys_are_dotted_paths_and_missing_ones_are_named() {
    let toml = "[a]\nx = 1\nlist = []\n\n[b.servers.default]\ny = \"v\"\n[b.servers.default.retry]\nz = 2.0\n\
                [empty]\n\n[[sinks]]\nname = \"n\"\n[[sinks]]\nurl = \"u\"\n";
    let keys = config_keys(toml);
    let want: BTreeSet<String> =
        ["a.list", "a.x", "b.servers.default.retry.z", "b.servers.default.y", "empty", "sinks[].name", "sinks[].url"]
            .map(String::from)
            .into();
    assert_eq!(keys, want);
    assert_eq!(documented_forms("gns3.servers.lab.port"), ["gns3.servers.lab.port", "gns3.servers.<name>.port"]);
    let doc = "| `a.x` | and `a.list` |\n```\n`empty`\n```\n`sinks[].name`, not `sinks[].url`x\n";
    let missing = undocumented_keys(&keys, doc);
    assert_eq!(missing, ["b.servers.default.retry.z", "b.servers.default.y", "empty"]);
}
