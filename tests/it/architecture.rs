//! The module graph as ARCHITECTURE.md draws it: no import cycle between the
//! top-level modules of `src/`, and none of the imports its dependency rules
//! forbid. Read from the source text, so a new `use crate::…` that breaks
//! the shape fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- BEGIN dependency rules: checked by tests/it/architecture.rs -->";
const END: &str = "<!-- END dependency rules -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code outside the file's unit tests (every `#[cfg(test)] mod …`,
/// nested ones included, which may reach anywhere). A file that is itself a
/// test module has none.
fn non_test_code(path: &Path, text: &str) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let head_end = after.find(['{', ';']).unwrap_or(after.len());
        let is_module = item.starts_with("mod ")
            && after[..head_end]
                .trim()
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == ' ');
        if !is_module {
            // Not a module: keep it.
            out.push_str("#[cfg(test)]");
            rest = after;
        } else if after[head_end..].starts_with(';') {
            // A test module in a file of its own (read as its own file).
            rest = &after[head_end + 1..];
        } else {
            rest = &after[(head_end + block_len(&after[head_end..])).min(after.len())..];
        }
    }
    out.push_str(rest);
    out
}

/// The length of the `{ … }` block `code` starts with, skipping braces in
/// strings, characters and comments.
fn block_len(code: &str) -> usize {
    let b = code.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'#' | b'"'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) == Some(&b'"') {
                    let close: String = std::iter::once('"')
                        .chain(std::iter::repeat_n('#', hashes))
                        .collect();
                    let from = i + 2 + hashes;
                    i = code[from..]
                        .find(&close)
                        .map_or(b.len(), |e| from + e + close.len())
                        - 1;
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            // A character literal ('{', '\'', '\\'), not a lifetime ('a).
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Every `crate::NAME` in `code`, including those inside `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `fleetpulse::crate::` cannot occur; `$crate::` in macros is not ours.
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// module → the top-level modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in crate_paths(&non_test_code(&f, &text)) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// ARCHITECTURE.md's rules: module → what it may not import (`None`: any
/// other module).
fn rules() -> Vec<(String, Option<Vec<String>>)> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find(BEGIN)
        .expect("ARCHITECTURE.md has the dependency rules");
    let end = text.find(END).expect("the dependency rules end");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    text[start + BEGIN.len()..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let module = ticked(cells[1]).remove(0);
            let banned = if cells[2] == "any other module" {
                None
            } else {
                Some(ticked(cells[2]))
            };
            (module, banned)
        })
        .collect()
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.len() > 20, "found only {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_module_imports_what_architecture_md_forbids() {
    let graph = module_graph();
    let rules = rules();
    assert!(rules.len() >= 10, "{rules:?}");
    let mut broken = Vec::new();
    for (module, banned) in &rules {
        let imports = graph
            .get(module)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md names `{module}`, which is not in src/"));
        for target in imports {
            let forbidden = match banned {
                None => true,
                Some(list) => list.contains(target),
            };
            if forbidden {
                broken.push(format!("{module} imports {target}"));
            }
        }
        for name in banned.iter().flatten() {
            assert!(
                graph.contains_key(name),
                "ARCHITECTURE.md forbids `{module}` importing `{name}`, which is not in src/"
            );
        }
    }
    assert!(broken.is_empty(), "forbidden imports: {broken:?}");
}

#[test]
fn the_checker_leaves_out_every_test_module_nested_or_not() {
    let code = "use crate::clock;\nmod client {\n    use crate::hub;\n    #[cfg(test)]\n    mod collect_tests {\n        use crate::config::Config;\n        const S: &str = \"}\";\n        const C: char = '}';\n        // }\n        let r = r#\"{\"#;\n    }\n    fn f() { crate::values::x(); }\n}\n#[cfg(test)]\nmod tests {\n    use crate::store;\n}\n#[cfg(test)]\nuse crate::pulse;\n#[cfg(test)]\nmod more_tests;\nfn g() { crate::drift::y(); }\n";
    let found: Vec<String> = crate_paths(&non_test_code(Path::new("src/x.rs"), code))
        .into_iter()
        .collect();
    assert_eq!(found, ["clock", "drift", "hub", "pulse", "values"]);
    assert!(non_test_code(Path::new("src/config/template_tests.rs"), code).is_empty());
}

#[test]
fn the_checker_sees_cycles_and_grouped_imports() {
    let code =
        "use crate::{config::Config, pulse};\nlet x = crate::clock::now_unix();\n$crate::ignored";
    let found: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(found, ["clock", "config", "pulse"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}
