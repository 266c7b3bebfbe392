//! The shape of `src/`, checked as a test: files small enough to
//! read in one sitting, dependencies that run one way (no two files and no
//! two top-level modules import each other, directly or around a circle),
//! and the few seams the design rests on.
//!
//! An import is a `use` path or a path written in the code (`crate::..`,
//! `super::..`, `self::..`, or a child module declared with `mod`),
//! resolved to the file that defines the module it names. Declaring a
//! module (`mod x;`) is not an import, and `#[cfg(test)]` modules are left
//! out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a file under `src/` may be, in lines.
const MAX_LINES: usize = 450;

struct Source {
    /// `crate::telemetry::otel`, or `crate` for `lib.rs`.
    module: String,
    text: String,
    lines: usize,
}

fn sources() -> BTreeMap<String, Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&root).expect("under src");
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        if rel_text == "main.rs" {
            continue;
        }
        let raw = std::fs::read_to_string(&file).expect("readable source");
        let module = module_of(&rel_text);
        out.insert(
            rel_text,
            Source {
                module,
                lines: raw.lines().count(),
                text: without_tests(&without_comments(&raw)),
            },
        );
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `http/public/mod.rs` -> `crate::http::public`.
fn module_of(rel: &str) -> String {
    let stem = rel.trim_end_matches(".rs");
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    if stem == "lib" {
        "crate".to_owned()
    } else {
        format!("crate::{}", stem.replace('/', "::"))
    }
}

/// The code without `//` and `/* */` comments (string literals are left:
/// a path inside one is rare and would only add an edge).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The code without `#[cfg(test)]` items (`mod tests { .. }` and the like).
fn without_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its `;` or at the brace closing its body.
        let open = item.find('{');
        let semi = item.find(';');
        rest = match (open, semi) {
            (Some(open), Some(semi)) if semi < open => &item[semi + 1..],
            (Some(open), _) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                &item[end..]
            }
            (None, Some(semi)) => &item[semi + 1..],
            (None, None) => "",
        };
    }
    out.push_str(rest);
    out
}

/// Every path a file's code names (`use` trees expanded, plus paths
/// written inline), and apart from them what the file re-exports (`pub
/// use`): a re-export is the module's face, not a use of its own.
fn paths(text: &str) -> (Vec<String>, Vec<String>) {
    let mut used = Vec::new();
    let mut exported = Vec::new();
    let mut code = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_word(rest, "use") {
        code.push_str(&rest[..at]);
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        let into = if public { &mut exported } else { &mut used };
        expand_use("", after[..end].trim(), into);
        rest = &after[end..];
    }
    code.push_str(rest);
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let i = from + i;
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let len = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(code.len() - i);
            used.push(code[i..i + len].trim_end_matches(':').to_owned());
        }
    }
    (used, exported)
}

/// Where `word` stands alone as a keyword in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let i = from + i;
        let before = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after = bytes
            .get(i + word.len())
            .is_none_or(|b| b.is_ascii_whitespace());
        if before && after {
            return Some(i);
        }
        from = i + word.len();
    }
    None
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let close = tree.rfind('}').filter(|&c| c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_use(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand_use(&head, &inner[start..], out);
    }
}

/// A path written in module `from` as an absolute one (`crate::..`).
fn absolute(from: &str, children: &BTreeSet<String>, path: &str) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = from.split("::").collect();
    let joined = |base: &[&str], segments: &[&str]| {
        base.iter().chain(segments).map(|s| s.to_string()).collect()
    };
    match segments.first().copied() {
        Some("crate") => Some(joined(&[], &segments)),
        Some("self" | "super") => {
            while let Some(&s) = segments.first() {
                match s {
                    "self" => {}
                    "super" => {
                        base.pop();
                    }
                    _ => break,
                }
                segments.remove(0);
            }
            Some(joined(&base, &segments))
        }
        Some(first) if children.contains(first) => Some(joined(&base, &segments)),
        _ => None,
    }
}

/// What one file's module is known by: its file, the children it declares
/// and the names it re-exports (`pub use`), each to the absolute path it
/// stands for.
struct Module {
    file: String,
    reexports: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

/// The file that defines what an absolute path names: the longest prefix
/// that is a module with a file of its own, followed through that
/// module's re-exports.
fn resolve(mut path: Vec<String>, modules: &BTreeMap<String, Module>) -> Option<String> {
    for _ in 0..8 {
        let (module, rest) = (1..=path.len())
            .rev()
            .find_map(|n| Some((modules.get(&path[..n].join("::"))?, &path[n..])))?;
        let next = match rest.first() {
            None => return Some(module.file.clone()),
            Some(name) => match module.reexports.get(name) {
                Some(target) => target.iter().chain(&rest[1..]).cloned().collect(),
                None => match module.globs.first() {
                    Some(glob) => glob.iter().chain(rest).cloned().collect(),
                    None => return Some(module.file.clone()),
                },
            },
        };
        path = next;
    }
    None
}

/// Declared child modules (`mod x;` / `pub mod x;`) of a file.
fn children(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = find_word(rest, "mod") {
        let after = rest[at + 3..].trim_start();
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
        rest = &rest[at + 3..];
    }
    out
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// file -> the files it imports.
fn file_graph(sources: &BTreeMap<String, Source>) -> Graph {
    let mut modules = BTreeMap::new();
    let mut used = BTreeMap::new();
    for (file, source) in sources {
        let children = children(&source.text);
        let (uses, exports) = paths(&source.text);
        let mut reexports = BTreeMap::new();
        let mut globs = Vec::new();
        for export in exports {
            let (path, alias) = match export.split_once(" as ") {
                Some((path, alias)) => (path.trim().to_owned(), Some(alias.trim().to_owned())),
                None => (export.clone(), None),
            };
            let Some(target) = absolute(&source.module, &children, &path) else {
                continue;
            };
            match target.last().map(String::as_str) {
                Some("*") => globs.push(target[..target.len() - 1].to_vec()),
                Some(name) => {
                    let name = alias.unwrap_or_else(|| name.to_owned());
                    reexports.insert(name, target);
                }
                None => {}
            }
        }
        let targets: Vec<Vec<String>> = uses
            .iter()
            .filter_map(|u| {
                let path = u.split(" as ").next().unwrap_or(u).trim();
                absolute(&source.module, &children, path)
            })
            .collect();
        used.insert(file.clone(), targets);
        modules.insert(
            source.module.clone(),
            Module {
                file: file.clone(),
                reexports,
                globs,
            },
        );
    }
    let mut graph = Graph::new();
    for (file, targets) in used {
        let edges = graph.entry(file.clone()).or_default();
        for path in targets {
            let path: Vec<String> = path
                .into_iter()
                .filter(|s| s != "*" && s != "self")
                .collect();
            if let Some(target) = resolve(path, &modules)
                && target != file
            {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The graph between top-level modules (`crate::http` and so on).
fn module_graph(sources: &BTreeMap<String, Source>, files: &Graph) -> Graph {
    let top = |file: &str| -> String {
        let module = &sources[file].module;
        module.split("::").take(2).collect::<Vec<_>>().join("::")
    };
    let mut graph = Graph::new();
    for (file, targets) in files {
        let from = top(file);
        for target in targets {
            let to = top(target);
            if from != to && from != "crate" {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// Every cycle's members (strongly connected components of two or more).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (n, from_n) in &reachable {
        if !from_n.contains(*n) {
            continue;
        }
        let component: Vec<String> = from_n
            .iter()
            .filter(|m| reachable.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        if !out.contains(&component) {
            out.push(component);
        }
    }
    out
}

#[test]
fn every_file_under_src_is_small_enough_to_read_in_one_sitting() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|(_, s)| s.lines >= MAX_LINES)
        .map(|(file, s)| format!("src/{file}: {} lines", s.lines))
        .collect();
    assert!(
        long.is_empty(),
        "split these (under {MAX_LINES} lines): {long:#?}"
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let sources = sources();
    let found = cycles(&file_graph(&sources));
    assert!(found.is_empty(), "files in an import cycle: {found:#?}");
}

#[test]
fn no_top_level_modules_import_each_other_in_a_circle() {
    let sources = sources();
    let graph = module_graph(&sources, &file_graph(&sources));
    let found = cycles(&graph);
    assert!(found.is_empty(), "modules in an import cycle: {found:#?}");
}

#[test]
fn the_domain_depends_on_nothing_else() {
    let sources = sources();
    let graph = file_graph(&sources);
    for (file, targets) in &graph {
        if !file.starts_with("domain/") {
            continue;
        }
        let outside: Vec<&String> = targets
            .iter()
            .filter(|t| !t.starts_with("domain/"))
            .collect();
        assert!(outside.is_empty(), "src/{file} imports {outside:?}");
        let text = &sources[file].text;
        for driver in ["bson::", "mongodb::", "sqlx::", "rusqlite::", "actix_web::"] {
            assert!(!text.contains(driver), "src/{file} uses {driver}");
        }
    }
}

#[test]
fn the_public_tier_does_not_reach_into_storage() {
    let sources = sources();
    let graph = file_graph(&sources);
    for start in graph.keys().filter(|f| f.starts_with("http/public")) {
        let mut seen = BTreeSet::new();
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((file, trail)) = stack.pop() {
            assert!(
                !file.starts_with("storage/"),
                "the public tier reaches storage: {}",
                trail.join(" -> ")
            );
            for next in graph.get(&file).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    let mut trail = trail.clone();
                    trail.push(next.clone());
                    stack.push((next.clone(), trail));
                }
            }
        }
    }
}

#[test]
fn the_checker_sees_imports_and_cycles() {
    let text = "use crate::a::{b, c::{d as e}};\npub use super::f;\nfn x() { crate::g::h(); }\n\
                #[cfg(test)]\nmod tests { use crate::z; }\n";
    let (used, exported) = paths(&without_tests(text));
    assert_eq!(used, ["crate::a::b", "crate::a::c::d as e", "crate::g::h"]);
    assert_eq!(exported, ["super::f"]);
    let graph: Graph = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
}

#[test]
fn imports_through_a_re_export_reach_the_file_that_defines_the_item() {
    let sources: BTreeMap<String, Source> = [
        (
            "http/mod.rs",
            "pub mod error;\npub mod response;\npub use response::TEXT;\n",
        ),
        ("http/error.rs", "use super::TEXT;\n"),
        ("http/response.rs", "pub const TEXT: &str = \"\";\n"),
    ]
    .into_iter()
    .map(|(file, text)| {
        let source = Source {
            module: module_of(file),
            text: text.to_owned(),
            lines: 1,
        };
        (file.to_owned(), source)
    })
    .collect();
    let graph = file_graph(&sources);
    assert_eq!(
        graph["http/error.rs"],
        BTreeSet::from(["http/response.rs".to_owned()])
    );
    assert!(graph["http/mod.rs"].is_empty(), "a re-export is not a use");
}
