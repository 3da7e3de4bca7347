//! The code map's rule, checked: no module of gaia-core imports one that imports it back.
//!
//! Reads every source file (test modules cut off), finds each `crate::…` and `super::…` path it
//! names (in `use` items, braces expanded, and inline), resolves it to the file of the deepest
//! module it reaches, and looks for a cycle among files. A module using what one of its
//! ancestors defines (`super::App` in a handler) is not an edge: a parent owns its children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The folder that holds a file's child modules.
fn module_dir(file: &Path) -> PathBuf {
    let name = file.file_stem().unwrap().to_str().unwrap();
    if name == "mod" || name == "lib" {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    }
}

/// The file of module `seg` inside `dir`, if there is one.
fn child(dir: &Path, seg: &str) -> Option<PathBuf> {
    [dir.join(format!("{seg}.rs")), dir.join(seg).join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The file of a module's parent (`lib.rs` has none).
fn parent_file(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    let name = file.file_stem()?.to_str()?;
    let up = if name == "mod" { dir.parent()? } else { dir };
    if name == "lib" {
        return None;
    }
    let root = src();
    if up == root {
        return Some(root.join("lib.rs"));
    }
    [up.with_extension("rs"), up.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The code of a file without comments, string literals and its test modules.
fn code_of(text: &str) -> String {
    let cut = text
        .find("#[cfg(test)]\nmod ")
        .or_else(|| text.find("#[cfg(test)]\n#[path"))
        .unwrap_or(text.len());
    let mut out = String::new();
    let b = &text.as_bytes()[..cut];
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree (`crate::{a::{b, c}, d}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(&format!("{prefix}{}", p.trim())))
        .collect()
}

/// Every `crate::`/`super::` path named in `code`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = after.find(';') {
            out.extend(expand(&after[..end].replace(['\n', ' '], "")));
        }
    }
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let tail = &rest[i..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            out.push(tail[..len].to_string());
            rest = &rest[i + start.len()..];
        }
    }
    out
}

/// The file a path leads to from `file`, if it leaves the file.
fn resolve(file: &Path, path: &str) -> Option<PathBuf> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut at: PathBuf = match *segs.first()? {
        "crate" => src().join("lib.rs"),
        "super" => {
            let mut f = file.to_path_buf();
            while segs.first() == Some(&"super") {
                f = parent_file(&f)?;
                segs.remove(0);
            }
            segs.insert(0, "crate");
            f
        }
        _ => return None,
    };
    for seg in segs.iter().skip(1) {
        match child(&module_dir(&at), seg) {
            Some(next) => at = next,
            None => break,
        }
    }
    Some(at)
}

fn ancestors(file: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut f = file.to_path_buf();
    while let Some(p) = parent_file(&f) {
        out.push(p.clone());
        f = p;
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for f in &all {
        if f.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("_tests.rs")
        {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let ups = ancestors(f);
        for p in paths(&code) {
            if let Some(to) = resolve(f, &p)
                && to != *f
                && !ups.contains(&to)
            {
                edges.entry(f.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        n: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(n, &edges, &mut state, &mut Vec::new())
        {
            let names: Vec<String> = cycle
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect();
            panic!("import loop: {}", names.join(" -> "));
        }
    }
    // The check sees the imports it should: the queue uses the store, the server the queue.
    let edge = |a: &str, b: &str| edges[&root.join(a)].contains(&root.join(b));
    assert!(edge("queue.rs", "store/mod.rs"));
    assert!(edge("server/jobs.rs", "server/http.rs"));
    assert!(edge("study.rs", "protocol.rs"));
}
