//! The layering of both crates, checked from their sources: no import circle between the
//! top-level modules of the edge (`src/`) or of the engine (`actors/src/`), the WebSocket
//! edge's shared core importing neither socket, and no `#[path]` attributes. A circle
//! that creeps back fails here with every import that closes it (file and line).
//!
//! An "import" is any `crate::<module>` path in code (`use crate::{a, b::c}` groups too),
//! outside comments and outside `#[cfg(test)]` modules and `*tests.rs` files: tests may
//! reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `from module -> to module -> where (file:line)`.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable source dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code lines of a file with their numbers: comments and `#[cfg(test)] mod … { … }`
/// blocks removed.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t == "#[cfg(test)]"
            && lines.get(i + 1).is_some_and(|n| n.trim_start().starts_with("mod ") && n.ends_with('{'))
        {
            // Skip the test module: count braces from its opening line.
            let mut depth = 0i32;
            i += 1;
            while i < lines.len() {
                depth += lines[i].matches('{').count() as i32 - lines[i].matches('}').count() as i32;
                i += 1;
                if depth <= 0 {
                    break;
                }
            }
            continue;
        }
        if !t.starts_with("//") {
            let code = match t.find(" //") {
                Some(at) => &t[..at],
                None => t,
            };
            out.push((i + 1, code.to_owned()));
        }
        i += 1;
    }
    out
}

/// The first segments of every `crate::` path on a line, groups included.
fn crate_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        // `gns3_central_actors::crate::` does not exist; `$crate::` (macros) is skipped.
        if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// The module a file belongs to: its first path component under `root` (a file at the
/// root is its own module, `lib.rs`/`main.rs` are the root).
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

fn graph(root: &Path, depth2: Option<&str>) -> (Graph, Vec<String>) {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut g = Graph::new();
    let mut path_attrs = Vec::new();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable source file");
        let Some(from) = module_of(root, &f) else { continue };
        let where_ = |line: usize| format!("{}:{line}", f.display());
        for (n, line) in code_lines(&text) {
            if line.starts_with("#[path") {
                path_attrs.push(where_(n));
            }
            for to in crate_paths(&line) {
                // Optionally one level deeper inside one module (e.g. `ws`: its parts).
                let (from, to) = match depth2 {
                    Some(m) if from == m && to == m => {
                        let sub = f.strip_prefix(root.join(m)).ok().and_then(|r| r.components().next());
                        let sub = sub.map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned());
                        let target = line
                            .split(&format!("crate::{m}::"))
                            .nth(1)
                            .map(|r| r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>());
                        match (sub, target) {
                            (Some(s), Some(t)) if !t.is_empty() && s != "mod" => {
                                (format!("{m}::{s}"), format!("{m}::{t}"))
                            }
                            _ => continue,
                        }
                    }
                    _ => (from.clone(), to),
                };
                if from != to {
                    g.entry(from).or_default().entry(to).or_default().push(where_(n));
                }
            }
        }
    }
    (g, path_attrs)
}

/// Every cycle's edges (Tarjan's strongly connected components of more than one module).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    fn visit(
        v: &str,
        g: &Graph,
        index: &mut BTreeMap<String, (usize, usize)>,
        stack: &mut Vec<String>,
        next: &mut usize,
        out: &mut Vec<BTreeSet<String>>,
    ) {
        index.insert(v.to_owned(), (*next, *next));
        *next += 1;
        stack.push(v.to_owned());
        for w in g.get(v).map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            if !index.contains_key(&w) {
                visit(&w, g, index, stack, next, out);
                let low = index[v].1.min(index[&w].1);
                index.get_mut(v).expect("visited").1 = low;
            } else if stack.contains(&w) {
                let low = index[v].1.min(index[&w].0);
                index.get_mut(v).expect("visited").1 = low;
            }
        }
        if index[v].0 == index[v].1 {
            let mut scc = BTreeSet::new();
            while let Some(w) = stack.pop() {
                let done = w == v;
                scc.insert(w);
                if done {
                    break;
                }
            }
            if scc.len() > 1 {
                out.push(scc);
            }
        }
    }
    let (mut index, mut stack, mut next, mut sccs) = (BTreeMap::new(), Vec::new(), 0, Vec::new());
    for v in g.keys() {
        if !index.contains_key(v) {
            visit(v, g, &mut index, &mut stack, &mut next, &mut sccs);
        }
    }
    sccs.iter()
        .map(|scc| {
            let mut edges = Vec::new();
            for from in scc {
                for (to, at) in g.get(from).into_iter().flatten() {
                    if scc.contains(to) {
                        edges.push(format!("{from} -> {to} ({})", at.join(", ")));
                    }
                }
            }
            edges
        })
        .collect()
}

fn assert_layered(root: &str, depth2: Option<&str>) -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let (g, path_attrs) = graph(&root, depth2);
    assert!(path_attrs.is_empty(), "#[path] attributes (declare the module where its file is): {path_attrs:?}");
    let found = circles(&g);
    assert!(
        found.is_empty(),
        "import circles in {}:\n{}",
        root.display(),
        found.into_iter().flatten().collect::<Vec<_>>().join("\n")
    );
    g
}

#[test]
fn the_edge_has_no_import_circle() {
    let g = assert_layered("src", Some("ws"));
    // What configuration types depend on is below what handlers share.
    for low in ["error", "config"] {
        for high in ["state", "http", "ws", "startup", "cli"] {
            assert!(!g.get(low).is_some_and(|m| m.contains_key(high)), "{low} imports {high}: {:?}", g[low][high]);
        }
    }
    // The WebSocket core (ws/*.rs) imports neither socket, and the sockets not each other.
    for (from, tos) in &g {
        for (to, at) in tos {
            let core =
                from.starts_with("ws::") && !from.starts_with("ws::dashboard") && !from.starts_with("ws::module");
            let socket = |s: &str| s == "ws::dashboard" || s == "ws::module";
            assert!(!(core && socket(to)), "the ws core {from} imports the socket {to}: {at:?}");
            assert!(!(socket(from) && socket(to)), "{from} imports {to}: {at:?}");
        }
    }
}

#[test]
fn the_engine_has_no_import_circle() {
    let g = assert_layered("actors/src", None);
    // The event model is the bottom of the engine: it imports no actor.
    let events = g.get("events").map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert!(events.iter().all(|m| m == "gns3"), "events/ imports {events:?}");
}

#[test]
fn a_circle_is_found() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().entry("b".into()).or_default().push("a.rs:1".into());
    g.entry("b".into()).or_default().entry("c".into()).or_default().push("b.rs:2".into());
    assert!(circles(&g).is_empty());
    g.entry("c".into()).or_default().entry("a".into()).or_default().push("c.rs:3".into());
    let found = circles(&g);
    assert_eq!(found.len(), 1);
    assert!(found[0].iter().any(|e| e.starts_with("c -> a (c.rs:3)")), "{found:?}");
}

#[test]
fn paths_and_test_modules_are_read_as_meant() {
    assert_eq!(crate_paths("use crate::{auth, error::ApiError};"), ["auth", "error"]);
    assert_eq!(crate_paths("let x = crate::state::AppState::x(); $crate::no"), ["state"]);
    let text =
        "use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\nfn f() { crate::d::g() }\n";
    let lines: Vec<String> = code_lines(text).into_iter().flat_map(|(_, l)| crate_paths(&l)).collect();
    assert_eq!(lines, ["a", "d"]);
}
