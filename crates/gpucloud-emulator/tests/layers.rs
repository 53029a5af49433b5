//! The emulator's modules import each other without a circle (issue 25: "no circle of file
//! imports among billing, primeintellect, runpod, secrets, ssh, state"), read from the `crate::`
//! paths in `src/`. A name re-exported by `lib.rs` (`crate::Inner`, `crate::FaultKind`) counts
//! as an import of the module that defines it; a file inside a folder (`errors/runpod.rs`) counts
//! as its folder's module. Comments are not imports (doc links to `crate::Emulator` are fine).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the source text of its file(s).
fn sources() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    let mut visit = vec![src.clone()];
    while let Some(dir) = visit.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                visit.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src/");
            let first = relative.components().next().expect("a file name").as_os_str().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
            modules.entry(module).or_default().push_str(&text);
        }
    }
    modules
}

/// The code of `text` without comments (line comments and doc comments; the emulator has no
/// block comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names `lib.rs` re-exports, mapped to the module that defines them.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let lib = code(lib);
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub use ").or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else { continue };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// The modules each module imports (`crate::x`, `crate::{x, y::z}`), itself excluded.
fn graph(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let reexported = modules.get("lib").map(|lib| reexports(lib)).unwrap_or_default();
    let resolve = |name: &str| -> String {
        if modules.contains_key(name) {
            name.to_string()
        } else {
            reexported.get(name).cloned().unwrap_or_else(|| "lib".to_string())
        }
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in modules {
        let mut targets = BTreeSet::new();
        let code = code(text);
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for part in inner.split(',') {
                    let head: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !head.is_empty() && head != "self" {
                        targets.insert(resolve(&head));
                    }
                }
            } else {
                let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !head.is_empty() {
                    targets.insert(resolve(&head));
                }
            }
        }
        targets.remove(module);
        edges.insert(module.clone(), targets);
    }
    edges
}

/// A circle of imports, if there is one: the modules along it, the first repeated at the end.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_emulators_modules_import_each_other_without_a_circle() {
    let modules = sources();
    for expected in ["billing", "errors", "primeintellect", "runpod", "routes", "secrets", "ssh", "state"] {
        assert!(modules.contains_key(expected), "module {expected} not found in src/: the check reads the wrong tree");
    }
    let edges = graph(&modules);
    // The check sees the imports it must: a handler imports the error shapes and the state.
    assert!(edges["billing"].contains("errors") && edges["billing"].contains("state"), "{:?}", edges["billing"]);
    // `ssh` names `crate::Inner`, which `lib.rs` re-exports from `shared`.
    assert!(edges["ssh"].contains("shared") && !edges["ssh"].contains("lib"), "{:?}", edges["ssh"]);
    if let Some(found) = circle(&edges) {
        panic!("the emulator's modules import in a circle: {}\nall imports: {edges:#?}", found.join(" -> "));
    }
    // Only the routes module assembles the handlers' routers.
    for (module, text) in &modules {
        if module != "routes" && module != "lib" {
            assert!(!code(text).contains(".merge("), "{module} merges routers; routes are assembled in routes.rs");
        }
    }
}

#[test]
fn the_check_finds_a_planted_circle() {
    let planted: BTreeMap<String, String> = [
        ("lib", "mod a; mod b; mod c;\npub use c::Thing;\n"),
        ("a", "use crate::b::f; // crate::c in a comment is not an import\n"),
        ("b", "use crate::{Thing, a as _};\n"),
        ("c", "pub struct Thing;\n"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let edges = graph(&planted);
    assert_eq!(edges["b"], BTreeSet::from(["a".to_string(), "c".to_string()]), "a re-export resolves to its module");
    assert_eq!(edges["a"], BTreeSet::from(["b".to_string()]), "comments are not imports");
    let found = circle(&edges).expect("a -> b -> a is a circle");
    assert!(found.join(" -> ").contains("a -> b -> a") || found.join(" -> ").contains("b -> a -> b"), "{found:?}");
    let mut fixed = planted;
    fixed.insert("b".into(), "use crate::Thing;\n".into());
    assert_eq!(circle(&graph(&fixed)), None);
}
