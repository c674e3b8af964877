//! The shape of the tree, checked from the source: the import graph between module files (every
//! `crate::…`, `super::…` and `self::…` path, in `use` items and inline), the README's module
//! table and `lib.rs`'s doc comment. A reader trusts the map only if it matches the territory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules that are the system's edges and tools rather than its domain: their own
/// cycles are checked separately (`server`) or matter less than the domain's.
const NOT_DOMAIN: &[&str] = &["server", "cli", "demo", "bench", "platform", "city"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// One module file: its path in the module tree (`server::merchants`; `` for the crate roots).
struct ModuleFile {
    module: String,
    text: String,
}

/// Every `.rs` file under `src/`, named by module path. `main.rs` and `cli/` are the binary's;
/// its `crate::cli` and the library's `crate::…` never name the same module, so one namespace
/// serves both.
fn module_files() -> Vec<ModuleFile> {
    let mut files = Vec::new();
    collect(&src(), &mut Vec::new(), &mut files);
    files.sort_by(|a, b| a.module.cmp(&b.module));
    files
}

fn collect(dir: &Path, prefix: &mut Vec<String>, files: &mut Vec<ModuleFile>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            prefix.push(name);
            collect(&path, prefix, files);
            prefix.pop();
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.clone();
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                module.push(name);
            }
            files.push(ModuleFile {
                module: module.join("::"),
                text: fs::read_to_string(&path).unwrap(),
            });
        }
    }
}

/// The text with comments blanked and string and character literals emptied, so that braces
/// and paths left are code.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
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
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && matches!(next, Some('#') | Some('"')) && !word_before(&chars, i) {
            // A raw string: r"…" or r#"…"#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{7f}'), or a lifetime left as it is.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn word_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path a file names that starts at `crate`, `super` or `self` (and `ecny`, the library
/// seen from the binary), as absolute module paths: `use` trees expanded, inline paths too.
/// Paths inside an inline module (`mod tests { … }`) resolve from it; the inline module itself
/// belongs to its file.
fn paths_named(file: &ModuleFile) -> Vec<Vec<String>> {
    let code = code_only(&file.text);
    let chars: Vec<char> = code.chars().collect();
    // The file's own module path, and the parent that `super` names at the top of the file.
    let own: Vec<String> = segments(&file.module);
    let mut found = Vec::new();
    // Inline modules open at these brace depths.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if c == '}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if c == '#' && chars[i..].starts_with(&TEST_ONLY) {
            i = end_of_item(&chars, i + TEST_ONLY.len());
            continue;
        }
        if !is_ident(c) || word_before(&chars, i) || (i > 0 && chars[i - 1] == '$') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut here = own.clone();
        here.extend(inline.iter().map(|(name, _)| name.clone()));
        if word == "mod" {
            // `mod name {` opens an inline module; `mod name;` declares a file.
            let rest: String = chars[i..].iter().take(80).collect();
            let rest = rest.trim_start();
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            let after = rest[name.len()..].trim_start();
            if !name.is_empty() && after.starts_with('{') {
                inline.push((name, depth));
            }
            continue;
        }
        if word == "use" {
            let end = chars[i..]
                .iter()
                .position(|c| *c == ';')
                .map_or(chars.len(), |p| i + p);
            let tree: String = chars[i..end].iter().collect();
            for path in expand_use(&tree) {
                if let Some(absolute) = absolute(&here, &path) {
                    found.push(absolute);
                }
            }
            i = end;
            continue;
        }
        // `pub(in crate::server)` names a module for visibility, not an import.
        let visibility = start >= 4 && chars[start - 4..start] == ['(', 'i', 'n', ' '];
        if matches!(word.as_str(), "crate" | "super" | "self" | "ecny") && !visibility {
            // An inline path: words joined by `::`.
            let mut path = vec![word];
            let mut j = i;
            loop {
                let rest: String = chars[j..].iter().take(2).collect();
                if rest != "::" {
                    break;
                }
                let from = j + 2;
                let mut k = from;
                while k < chars.len() && is_ident(chars[k]) {
                    k += 1;
                }
                if k == from {
                    break;
                }
                path.push(chars[from..k].iter().collect());
                j = k;
            }
            i = j;
            if path.len() > 1 {
                if let Some(absolute) = absolute(&here, &path) {
                    found.push(absolute);
                }
            }
        }
    }
    found
}

/// Test-only items (`#[cfg(test)] mod tests { … }`) are left out: the graph is what the shipped
/// code depends on.
const TEST_ONLY: [char; 12] = ['#', '[', 'c', 'f', 'g', '(', 't', 'e', 's', 't', ')', ']'];

/// Where the item starting at `from` ends: after its `;`, or after the brace matching its first
/// `{`.
fn end_of_item(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() && chars[i] != ';' && chars[i] != '{' {
        i += 1;
    }
    if chars.get(i) != Some(&'{') {
        return i + 1;
    }
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn segments(module: &str) -> Vec<String> {
    if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    }
}

/// The leaf paths of a `use` tree: `crate::a::{b, c::{d as e, *}}` gives `crate::a::b`,
/// `crate::a::c::d` and `crate::a::c`.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(tree);
    let mut out = Vec::new();
    let mut position = 0;
    expand(&tokens, &mut position, &mut Vec::new(), &mut out);
    out
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

fn expand(tokens: &[String], at: &mut usize, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let depth = prefix.len();
    loop {
        match tokens.get(*at).map(String::as_str) {
            Some("{") => {
                *at += 1;
                loop {
                    expand(tokens, at, prefix, out);
                    match tokens.get(*at).map(String::as_str) {
                        Some(",") => *at += 1,
                        Some("}") => {
                            *at += 1;
                            break;
                        }
                        _ => break,
                    }
                    if tokens.get(*at).map(String::as_str) == Some("}") {
                        *at += 1;
                        break;
                    }
                }
                break;
            }
            Some("*") => {
                *at += 1;
                out.push(prefix.clone());
                break;
            }
            Some("::") => *at += 1,
            Some("as") => {
                *at += 2;
                out.push(prefix.clone());
                break;
            }
            Some(word) if word.chars().all(is_ident) => {
                prefix.push(word.to_string());
                *at += 1;
                if tokens.get(*at).map(String::as_str) != Some("::")
                    && tokens.get(*at).map(String::as_str) != Some("as")
                {
                    out.push(prefix.clone());
                    break;
                }
            }
            _ => break,
        }
    }
    prefix.truncate(depth);
}

/// An absolute module path for `path` named from module `here`, or `None` for paths into other
/// crates.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") | Some("ecny") => Vec::new(),
        Some("self") => here.to_vec(),
        Some("super") => here[..here.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module import graph between files: an edge from each file to every other file whose
/// module it names (the longest module prefix of each path).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = module_files();
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let mut targets = BTreeSet::new();
        for path in paths_named(file) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|prefix| modules.contains(prefix));
            if let Some(target) = target {
                if target != file.module && !target.is_empty() {
                    targets.insert(target);
                }
            }
        }
        graph.insert(file.module.clone(), targets);
    }
    graph
}

/// The strongly connected components of more than one file: files that import one another,
/// directly or around a circle (Tarjan's algorithm; it recurses at most as deep as there are
/// files), each sorted, in order.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, node: &'g str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.graph.contains_key(next) {
                    continue;
                }
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found.sort();
    walk.found
}

/// The graph restricted to files whose module satisfies `keep`.
fn within(
    graph: &BTreeMap<String, BTreeSet<String>>,
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, BTreeSet<String>> {
    graph
        .iter()
        .filter(|(module, _)| keep(module))
        .map(|(module, targets)| {
            let kept = targets.iter().filter(|t| keep(t)).cloned().collect();
            (module.clone(), kept)
        })
        .collect()
}

fn top_level(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

/// The top-level modules of the tree: files and directories directly under `src/`.
fn top_level_modules() -> BTreeSet<String> {
    module_files()
        .iter()
        .map(|f| top_level(&f.module).to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

fn cycle_report(found: &[Vec<String>]) -> String {
    found
        .iter()
        .map(|component| format!("{{{}}}", component.join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_graph_sees_the_imports_it_should() {
    // The checks below are only as good as the graph: it must see plain, grouped, nested,
    // relative and inline paths.
    let graph = import_graph();
    let edges = |from: &str| graph.get(from).cloned().unwrap_or_default();
    assert!(edges("ledger").contains("amount"), "{:?}", edges("ledger"));
    assert!(edges("server").contains("server::gateway"), "self:: paths");
    assert!(
        edges("server::config").contains("server::auth"),
        "super:: paths"
    );
    assert!(edges("cli").contains("cli::client") || edges("cli::wallet").contains("cli::client"));
    assert!(edges("wallet::sub_wallet").contains("time"));
    assert_eq!(
        expand_use(" crate::a::{b, c::{d as e, *}, self}"),
        vec![
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "d"],
            vec!["crate", "a", "c"],
            vec!["crate", "a", "self"],
        ]
        .into_iter()
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    let visibility_only = ModuleFile {
        module: "server::example".into(),
        text: "pub(in crate::server) fn f() { crate::ledger::Ledger::new(); }".into(),
    };
    assert_eq!(
        paths_named(&visibility_only),
        vec![vec!["ledger".to_string(), "Ledger".into(), "new".into()]]
    );
    let tiny: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    assert_eq!(cycles(&tiny), vec![vec!["a", "b", "c"]]);
}

#[test]
fn no_import_cycle_inside_the_http_edge() {
    let graph = import_graph();
    let server = within(&graph, |module| top_level(module) == "server");
    assert!(server.len() > 5, "the server's files are in the graph");
    let found = cycles(&server);
    assert!(
        found.is_empty(),
        "handlers in server/ import the shared extractors and OpenAPI helpers, not each other; \
         cycles:\n{}",
        cycle_report(&found)
    );
}

/// The domain's modules import one another in one direction only: no file of the domain is on an
/// import circle, so each can be read, tested and changed from its leaves up.
#[test]
fn no_import_cycle_among_the_domain_modules() {
    let graph = import_graph();
    let domain = within(&graph, |module| !NOT_DOMAIN.contains(&top_level(module)));
    let found = cycles(&domain);
    assert!(
        found.is_empty(),
        "domain modules on an import cycle:\n{}",
        cycle_report(&found)
    );
}

/// The first column of the README's module table ("How it is built"): every `name` or
/// `name::sub` it lists.
fn readme_modules() -> BTreeSet<String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.starts_with("| module |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert!(!table.is_empty(), "the README has a `| module |` table");
    let mut names = BTreeSet::new();
    for row in table {
        let first = row.split('|').nth(1).unwrap_or("");
        for (n, part) in first.split('`').enumerate() {
            if n % 2 == 1 {
                names.insert(part.to_string());
            }
        }
    }
    names
}

#[test]
fn the_readme_module_table_lists_exactly_the_modules_in_the_tree() {
    let listed = readme_modules();
    let listed_top: BTreeSet<String> = listed
        .iter()
        .map(|name| top_level(name).to_string())
        .collect();
    let tree = top_level_modules();
    let missing: Vec<&String> = tree.difference(&listed_top).collect();
    let extra: Vec<&String> = listed_top.difference(&tree).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README module table: missing {missing:?}, names modules not in the tree {extra:?}"
    );
    // Submodules it names exist too.
    let modules: BTreeSet<String> = module_files().into_iter().map(|f| f.module).collect();
    for name in &listed {
        assert!(modules.contains(name), "README names `{name}`, not in src/");
    }
}

#[test]
fn lib_doc_names_every_top_level_module() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').to_string())
        .collect();
    // The library declares every top-level module but the binary's `cli`.
    let mut tree = top_level_modules();
    tree.remove("cli");
    assert_eq!(declared, tree, "lib.rs declares the modules of src/");
    let unnamed: Vec<&String> = declared
        .iter()
        .filter(|module| !doc.contains(&format!("`{module}`")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "lib.rs's doc comment does not name {unnamed:?}"
    );
}
