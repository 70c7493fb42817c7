//! The module graph: no cycle among the top-level modules of `src/`, and every import between
//! them in a direction that docs/architecture.md allows.
//!
//! Pure std and no compiler: each file under `src/` is read, comments, string and character
//! literals and `#[cfg(test)]` items are blanked out, and the paths that leave a top-level
//! module are collected (`crate::x::…`, the names of a `use crate::{x, y::z}` group, and
//! `super::` chains that climb to the crate root). `lib.rs` and `main.rs` only declare and
//! start the modules, so they are not nodes of the graph.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Which top-level modules each top-level module may import: the table "Allowed directions" in
/// docs/architecture.md, lowest layer first (the test checks that both say the same).
const ALLOWED: &[(&str, &[&str])] = &[
    ("metrics", &[]),
    ("setting", &[]),
    ("store", &["setting"]),
    ("tls", &[]),
    ("cluster", &["setting"]),
    ("testing", &[]),
    ("users", &["store", "setting"]),
    ("hls", &["users", "store", "metrics", "setting"]),
    ("webhooks", &["hls", "setting"]),
    ("media", &["hls", "users", "store", "metrics", "setting"]),
    (
        "ingest",
        &[
            "media", "hls", "users", "store", "metrics", "setting", "tls", "webhooks", "cluster",
        ],
    ),
    (
        "commerce",
        &["hls", "users", "store", "metrics", "setting", "webhooks"],
    ),
    (
        "cues",
        &["hls", "store", "commerce", "metrics", "setting", "webhooks"],
    ),
    (
        "chat",
        &[
            "users", "store", "hls", "commerce", "metrics", "setting", "tls", "cluster",
        ],
    ),
    (
        "http",
        &[
            "chat", "cues", "ingest", "media", "hls", "users", "store", "commerce", "metrics",
            "setting", "webhooks", "cluster",
        ],
    ),
    (
        "config",
        &[
            "chat", "cues", "http", "ingest", "media", "hls", "users", "store", "commerce",
            "setting", "webhooks", "cluster",
        ],
    ),
    (
        "app",
        &[
            "config", "http", "chat", "cues", "ingest", "media", "hls", "users", "store",
            "commerce", "metrics", "setting", "webhooks", "cluster",
        ],
    ),
];

/// One import that leaves a top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Use {
    /// The top-level module imported.
    target: String,
    /// 1-based line in the file.
    line: usize,
}

/// The graph among top-level modules: for each edge, where it was first seen.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Blanks out comments (doc comments included), string, byte-string, raw-string and character
/// literals, keeping newlines so that line numbers stay right.
fn strip_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some((hashes, body)) = raw_string_at(&chars, i) {
            let mut j = body;
            while j < chars.len()
                && !(chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|&h| h == '#'))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(chars.len());
            for &skipped in &chars[i..end] {
                blank(&mut out, skipped);
            }
            i = end;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for &skipped in chars.iter().skip(i).take(step) {
                    blank(&mut out, skipped);
                }
                i += step;
            }
            if i < chars.len() {
                out.push(' ');
                i += 1;
            }
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), else a lifetime or label.
            let len = if next == Some('\\') {
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|&q| q == '\''))
                    .map(|p| p + 4)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match len {
                Some(len) => {
                    for &skipped in chars.iter().skip(i).take(len) {
                        blank(&mut out, skipped);
                    }
                    i += len;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A raw (byte) string literal starting at `i` (`r"`, `r#"`, `br##"`, not inside an
/// identifier): its number of `#` and where its body starts.
fn raw_string_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    let start = match (chars[i], chars.get(i + 1)) {
        ('r', _) => i + 1,
        ('b', Some('r')) => i + 2,
        _ => return None,
    };
    let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
    (chars.get(start + hashes) == Some(&'"')).then_some((hashes, start + hashes + 1))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Index just past the brace that closes the one at `open`.
fn matching_brace(code: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Blanks out every item under `#[cfg(test)]` (test modules and test helpers): from the
/// attribute to the item's closing brace, or to its `;` when it has no body.
fn strip_test_items(code: &str) -> String {
    const ATTRIBUTE: &str = "#[cfg(test)]";
    let mut chars: Vec<char> = code.chars().collect();
    let pattern: Vec<char> = ATTRIBUTE.chars().collect();
    let mut i = 0;
    while i + pattern.len() <= chars.len() {
        if chars[i..i + pattern.len()] != pattern[..] {
            i += 1;
            continue;
        }
        let mut end = i + pattern.len();
        while end < chars.len() && chars[end] != '{' && chars[end] != ';' {
            end += 1;
        }
        if end < chars.len() && chars[end] == '{' {
            end = matching_brace(&chars, end);
        } else {
            end = (end + 1).min(chars.len());
        }
        for c in &mut chars[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    chars.into_iter().collect()
}

/// The identifier starting at `at` (after whitespace), and the index after it.
fn ident_at(code: &[char], at: usize) -> Option<(String, usize)> {
    let start = at + code[at..].iter().take_while(|c| c.is_whitespace()).count();
    let len = code[start..]
        .iter()
        .take_while(|&&c| is_ident_char(c))
        .count();
    (len > 0).then(|| (code[start..start + len].iter().collect(), start + len))
}

/// `::` at `at` (after whitespace): the index after it.
fn path_sep_at(code: &[char], at: usize) -> Option<usize> {
    let start = at + code[at..].iter().take_while(|c| c.is_whitespace()).count();
    (code.get(start) == Some(&':') && code.get(start + 1) == Some(&':')).then_some(start + 2)
}

/// The top-level modules a file's code (already stripped) reaches, with their lines.
/// `depth` is how many modules deep the file is: 1 for `src/x.rs` or `src/x/mod.rs`, 2 for
/// `src/x/y.rs`. Inline `mod name { … }` blocks add to it for the `super::` paths inside them.
fn uses_in(code: &str, depth: usize) -> Vec<Use> {
    let code: Vec<char> = code.chars().collect();
    let targets_at = |at: usize| -> Vec<Use> {
        path_targets(&code, at)
            .into_iter()
            .map(|(target, at)| Use {
                target,
                line: code[..at].iter().filter(|&&c| c == '\n').count() + 1,
            })
            .collect()
    };
    let mut uses = Vec::new();
    // Brace depths at which inline modules opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        if c == '{' {
            braces += 1;
            i += 1;
            continue;
        }
        if c == '}' {
            braces = braces.saturating_sub(1);
            if inline.last() == Some(&braces) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if !is_ident_char(c) || (i > 0 && is_ident_char(code[i - 1])) {
            i += 1;
            continue;
        }
        let Some((word, after)) = ident_at(&code, i) else {
            i += 1;
            continue;
        };
        match word.as_str() {
            "mod" => {
                if let Some((_, after_name)) = ident_at(&code, after) {
                    let rest = after_name
                        + code[after_name..]
                            .iter()
                            .take_while(|c| c.is_whitespace())
                            .count();
                    if code.get(rest) == Some(&'{') {
                        inline.push(braces);
                    }
                }
            }
            "crate" => {
                if let Some(sep) = path_sep_at(&code, after) {
                    uses.extend(targets_at(sep));
                }
            }
            "super" => {
                // Climb the chain; names past the crate root are top-level modules.
                let mut level = depth + inline.len();
                let mut at = after;
                let mut reached_root = false;
                while let Some(sep) = path_sep_at(&code, at) {
                    level = level.saturating_sub(1);
                    if level == 0 {
                        uses.extend(targets_at(sep));
                        reached_root = true;
                        break;
                    }
                    match ident_at(&code, sep) {
                        Some((next, next_end)) if next == "super" => at = next_end,
                        _ => break,
                    }
                }
                i = if reached_root { after } else { at.max(after) };
                continue;
            }
            _ => {}
        }
        i = after;
    }
    uses
}

/// After `crate::` (at `at`): the first name, or each first name of a `{…}` group.
fn path_targets(code: &[char], at: usize) -> Vec<(String, usize)> {
    let start = at + code[at..].iter().take_while(|c| c.is_whitespace()).count();
    if code.get(start) != Some(&'{') {
        return ident_at(code, start)
            .map(|(name, _)| vec![(name, start)])
            .unwrap_or_default();
    }
    let end = matching_brace(code, start);
    let mut targets = Vec::new();
    let mut depth = 0usize;
    let mut expect_name = false;
    for i in start..end {
        match code[i] {
            '{' => {
                depth += 1;
                expect_name = depth == 1;
            }
            '}' => depth -= 1,
            ',' if depth == 1 => expect_name = true,
            c if expect_name && is_ident_char(c) => {
                if let Some((name, _)) = ident_at(code, i) {
                    targets.push((name, i));
                }
                expect_name = false;
            }
            _ => {}
        }
    }
    targets
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's top-level module and how deep it is, from its path relative to `src/`; `None`
/// for the crate roots.
fn module_of(relative: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top = parts.first()?.trim_end_matches(".rs").to_string();
    if parts.len() == 1 && (top == "lib" || top == "main") {
        return None;
    }
    let depth = if parts.last().is_some_and(|p| p == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((top, depth))
}

/// The graph of `src/` (edges only between the modules found there).
fn graph_of(src: &Path) -> Graph {
    let mut sources = Vec::new();
    for path in rust_files(src) {
        let relative = path.strip_prefix(src).expect("under src").to_path_buf();
        let Some((module, depth)) = module_of(&relative) else {
            continue;
        };
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        sources.push((module, depth, format!("src/{}", relative.display()), text));
    }
    graph_from(&sources)
}

/// The graph of (module, depth, file name, source) entries.
fn graph_from(sources: &[(String, usize, String, String)]) -> Graph {
    let modules: BTreeSet<&str> = sources.iter().map(|(m, ..)| m.as_str()).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.to_string(), BTreeMap::new()))
        .collect();
    for (module, depth, file, text) in sources {
        let code = strip_test_items(&strip_comments_and_literals(text));
        for found in uses_in(&code, *depth) {
            if found.target != *module && modules.contains(found.target.as_str()) {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(found.target)
                    .or_insert_with(|| format!("{file}:{}", found.line));
            }
        }
    }
    graph
}

/// Every elementary cycle that is the shortest through one of its modules, each spelled
/// `a -> b -> a` from its smallest name, sorted.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Breadth first from `start`'s successors back to `start`.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue: VecDeque<&str> = VecDeque::from([start.as_str()]);
        let mut closing = None;
        while let Some(node) = queue.pop_front() {
            for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    closing = Some(node);
                    break;
                }
                if !previous.contains_key(next.as_str()) {
                    previous.insert(next, node);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some(mut node) = closing else { continue };
        let mut path = vec![node];
        while node != start {
            node = previous[node];
            path.push(node);
        }
        path.reverse();
        let smallest = (0..path.len())
            .min_by_key(|&i| path[i])
            .expect("a cycle has modules");
        path.rotate_left(smallest);
        path.push(path[0]);
        found.insert(path.join(" -> "));
    }
    found.into_iter().collect()
}

/// Edges that the allowed-direction table does not list, as `a -> b (file:line)`.
fn forbidden(graph: &Graph, allowed: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (from, edges) in graph {
        for (to, witness) in edges {
            if !allowed.get(from).is_some_and(|a| a.contains(to)) {
                out.push(format!("{from} -> {to} ({witness})"));
            }
        }
    }
    out
}

fn allowed_table() -> BTreeMap<String, BTreeSet<String>> {
    ALLOWED
        .iter()
        .map(|(from, to)| (from.to_string(), to.iter().map(|m| m.to_string()).collect()))
        .collect()
}

/// The "Allowed directions" table of docs/architecture.md: rows `` | `a` | `b`, `c` | ``.
fn documented_table(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    doc.lines()
        .skip_while(|line| !line.starts_with("## Allowed directions"))
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let [module, imports] = cells[..] else {
                return None;
            };
            let module = names(module).into_iter().next()?;
            Some((module, names(imports)))
        })
        .collect()
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn top_level_modules_import_each_other_without_cycles_in_allowed_directions() {
    let graph = graph_of(&manifest_dir().join("src"));
    let allowed = allowed_table();
    let mut problems = Vec::new();
    for module in graph.keys() {
        if !allowed.contains_key(module) {
            problems.push(format!(
                "module `{module}` has no row in the allowed-direction table (tests/architecture.rs, docs/architecture.md)"
            ));
        }
    }
    problems.extend(cycles(&graph).into_iter().map(|c| format!("cycle: {c}")));
    problems.extend(
        forbidden(&graph, &allowed)
            .into_iter()
            .map(|e| format!("not an allowed direction: {e}")),
    );
    assert!(
        problems.is_empty(),
        "module graph problems (see docs/architecture.md):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn allowed_table_is_layered_and_documented() {
    let allowed = allowed_table();
    let as_graph: Graph = allowed
        .iter()
        .map(|(from, to)| {
            (
                from.clone(),
                to.iter().map(|t| (t.clone(), String::new())).collect(),
            )
        })
        .collect();
    assert_eq!(
        cycles(&as_graph),
        Vec::<String>::new(),
        "the table has a cycle"
    );
    let doc = std::fs::read_to_string(manifest_dir().join("docs/architecture.md"))
        .expect("docs/architecture.md");
    assert_eq!(
        documented_table(&doc),
        allowed,
        "docs/architecture.md \"Allowed directions\" and tests/architecture.rs ALLOWED differ"
    );
}

#[test]
fn parser_ignores_comments_strings_and_test_items() {
    let source = r##"//! Docs mention [`crate::doc_only`].
use crate::{alpha::{One, Two}, beta, gamma::*};
use crate::delta::Thing; // a trailing crate::comment_only
/* a block with crate::block_only /* nested crate::nested_only */ */
fn f() -> &'static str {
    let _ = 'x';
    let _ = '\'';
    let _ = r#"raw crate::raw_only"#;
    let _ = "text crate::string_only \" still crate::string_only";
    crate::epsilon::call();
    super::zeta::call()
}
mod inner {
    use super::super::eta::X;
}
#[cfg(test)]
fn helper() { crate::test_helper_only::call(); }
#[cfg(test)]
mod tests {
    use crate::test_only::Y;
}
fn after_tests() { crate :: theta :: call(); }
"##;
    let code = strip_test_items(&strip_comments_and_literals(source));
    let targets: Vec<(String, usize)> = uses_in(&code, 1)
        .into_iter()
        .map(|u| (u.target, u.line))
        .collect();
    let expect = |name: &str, line| (name.to_string(), line);
    assert_eq!(
        targets,
        [
            expect("alpha", 2),
            expect("beta", 2),
            expect("gamma", 2),
            expect("delta", 3),
            expect("epsilon", 10),
            expect("zeta", 11),
            expect("eta", 14),
            expect("theta", 22),
        ]
    );
    // Two levels deep, `super::` stays inside the top-level module.
    let nested = uses_in("use super::sibling::X; use super::super::other::Y;", 2);
    assert_eq!(
        nested,
        [Use {
            target: "other".into(),
            line: 1
        }]
    );
}

#[test]
fn cycle_finder_spells_out_cycles_and_forbidden_edges() {
    let source = |module: &str, text: &str| {
        (
            module.to_string(),
            1,
            format!("src/{module}.rs"),
            text.to_string(),
        )
    };
    let sources = [
        source("alpha", "use crate::beta::B;\n"),
        source("beta", "fn f() {}\nuse crate::{gamma::G, alpha};\n"),
        source("gamma", "use crate::delta::D;\n"),
        source(
            "delta",
            "use crate::gamma::G;\n#[cfg(test)]\nmod tests { use crate::alpha::A; }\n",
        ),
    ];
    let graph = graph_from(&sources);
    assert_eq!(
        cycles(&graph),
        ["alpha -> beta -> alpha", "delta -> gamma -> delta"]
    );
    let allowed: BTreeMap<String, BTreeSet<String>> = [
        ("alpha", &["beta"][..]),
        ("beta", &["gamma"][..]),
        ("gamma", &["delta"][..]),
        ("delta", &[][..]),
    ]
    .iter()
    .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
    .collect();
    assert_eq!(
        forbidden(&graph, &allowed),
        [
            "beta -> alpha (src/beta.rs:2)",
            "delta -> gamma (src/delta.rs:1)"
        ]
    );
    let acyclic = graph_from(&sources[2..3]);
    assert!(cycles(&acyclic).is_empty());
    let doc = "# A\n## Allowed directions\n| Module | May import |\n|---|---|\n| `beta` | `gamma`, `alpha` |\n| `gamma` | — |\n## Next\n| `x` | `y` |\n";
    let table = documented_table(doc);
    assert_eq!(table.len(), 2, "{table:?}");
    assert_eq!(
        table["beta"],
        BTreeSet::from(["alpha".into(), "gamma".into()])
    );
    assert!(table["gamma"].is_empty());
}
