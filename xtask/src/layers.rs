//! `cargo xtask layers`: keeps the house as `ARCHITECTURE.md` draws it.
//!
//! - **The one rule**: a file of the facade (`crates/gpucloud/src`) may use only its own layer and
//!   the layers below it ([`FACADE_LAYERS`], lowest first). A `crate::` or `super::` path that
//!   names a higher layer, directly or through a root re-export (`crate::Fleet`), is a violation.
//! - **No circles between files**, in the facade and in the emulator: file A using file B and B
//!   using A (or any longer loop) is reported with the loop.
//!
//! It reads the source text, not the compiler's view: comments are skipped, `use` groups are
//! expanded, and paths are resolved to the longest module prefix that has a file. That is enough
//! for code written as this repository writes it, and a planted upward import fails it (tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The facade's layers, lowest first. `lib.rs` (re-exports only) and the crate's test-only
/// modules at the root sit outside them.
pub const FACADE_LAYERS: [&str; 7] = ["model", "transport", "providers", "remote", "fleet", "upkeep", "jobs"];

/// One module file: its module path (`["fleet", "spend"]`) and its text.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    text: String,
}

/// A crate's modules, keyed by module path.
struct Tree {
    modules: BTreeMap<Vec<String>, Module>,
    /// Root re-exports: `Fleet` -> `["fleet"]` (the module the item comes from).
    reexports: BTreeMap<String, Vec<String>>,
}

fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem.to_string());
        }
    }
    parts
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The text with `//` comments (doc comments included) and string literals blanked out.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    in_string = !in_string;
                    out.push(' ');
                }
                '\\' if in_string => {
                    chars.next();
                }
                '/' if !in_string && chars.peek() == Some(&'/') => break,
                _ if in_string => {}
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Paths after `start` (the text just past `crate::` or `super::`), `use` groups expanded:
/// `a::{b, c::d}` gives `[a, b]` and `[a, c, d]`.
fn expand(text: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = 0;
    let bytes: Vec<char> = text.chars().collect();
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            i += 1;
            let mut paths = Vec::new();
            loop {
                let (inner, used) = expand(&bytes[i..].iter().collect::<String>());
                for p in inner {
                    let mut full = prefix.clone();
                    full.extend(p);
                    paths.push(full);
                }
                i += used;
                while i < bytes.len() && (bytes[i].is_whitespace() || bytes[i] == ',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == '}' {
                    return (paths, i + 1);
                }
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if start == i {
            return (vec![prefix], i);
        }
        prefix.push(bytes[start..i].iter().collect());
        if bytes.get(i) == Some(&':') && bytes.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            // `as` renames and the like end the path here.
            return (vec![prefix], i);
        }
    }
}

impl Tree {
    fn read(src: &Path) -> std::io::Result<Tree> {
        let mut files = Vec::new();
        collect(src, &mut files)?;
        let mut modules = BTreeMap::new();
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            let path = module_path(src, &file);
            modules.insert(path.clone(), Module { path, file, text });
        }
        let mut reexports = BTreeMap::new();
        if let Some(root) = modules.get(&Vec::new()) {
            let code = code_only(&root.text);
            let mut rest = code.as_str();
            while let Some(at) = rest.find("pub use ") {
                rest = &rest[at + "pub use ".len()..];
                let (paths, _) = expand(rest);
                for path in paths {
                    if let Some(name) = path.last() {
                        reexports.insert(name.clone(), path[..path.len() - 1].to_vec());
                    }
                }
            }
        }
        Ok(Tree { modules, reexports })
    }

    /// The module (with a file) a crate-absolute path lands in.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        let path = match path.first() {
            Some(first) if path.len() <= 2 && !self.modules.contains_key(&vec![first.clone()]) => {
                let mut target = self.reexports.get(first)?.clone();
                target.extend(path[1..].iter().cloned());
                target
            }
            _ => path.to_vec(),
        };
        (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| self.modules.contains_key(p))
    }

    /// Every module a file's code refers to, with the path as written.
    fn references(&self, module: &Module) -> Vec<(Vec<String>, String)> {
        let code = code_only(&module.text);
        let is_dir_module = module.file.ends_with("mod.rs") || module.file.ends_with("lib.rs");
        let here = &module.path;
        let mut found = Vec::new();
        let mut i = 0;
        let chars: Vec<char> = code.chars().collect();
        while i < chars.len() {
            let boundary = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
            let rest: String = chars[i..chars.len().min(i + 12)].iter().collect();
            let (base, skip) = if boundary && rest.starts_with("crate::") {
                (Vec::new(), "crate::".len())
            } else if boundary && rest.starts_with("super::") {
                let mut parent = here.clone();
                if !is_dir_module {
                    parent.pop();
                }
                let mut skip = 0;
                while chars[i + skip..].iter().take(7).collect::<String>() == "super::" {
                    parent.pop();
                    skip += "super::".len();
                }
                (parent, skip)
            } else {
                i += 1;
                continue;
            };
            let (paths, used) = expand(&chars[i + skip..].iter().collect::<String>());
            for path in paths {
                let mut full = base.clone();
                full.extend(path.iter().cloned());
                let written = format!("{}{}", chars[i..i + skip].iter().collect::<String>(), path.join("::"));
                if let Some(target) = self.resolve(&full) {
                    found.push((target, written));
                }
            }
            i += skip + used.max(1);
        }
        found
    }
}

fn layer_of(path: &[String]) -> Option<usize> {
    FACADE_LAYERS.iter().position(|l| path.first().is_some_and(|f| f == l))
}

fn display(path: &[String]) -> String {
    if path.is_empty() { "crate root".into() } else { path.join("::") }
}

/// Upward uses in the facade at `src`: one line per violation.
pub fn upward_uses(src: &Path) -> std::io::Result<Vec<String>> {
    let tree = Tree::read(src)?;
    let mut problems = Vec::new();
    for module in tree.modules.values() {
        let Some(from) = layer_of(&module.path) else { continue };
        for (target, written) in tree.references(module) {
            if let Some(to) = layer_of(&target)
                && to > from
            {
                problems.push(format!(
                    "{}: `{written}` reaches up from layer {} to layer {}",
                    module.file.display(),
                    FACADE_LAYERS[from],
                    FACADE_LAYERS[to]
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    Ok(problems)
}

/// Loops of files that use each other, in the crate at `src`: one line per loop.
pub fn circles(src: &Path) -> std::io::Result<Vec<String>> {
    let tree = Tree::read(src)?;
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for module in tree.modules.values() {
        if module.path.is_empty() {
            continue; // the root declares and re-exports; it is not a file anything depends on
        }
        for (target, _) in tree.references(module) {
            if target != module.path && !target.is_empty() {
                edges.entry(module.path.clone()).or_default().insert(target);
            }
        }
    }
    // Tarjan would do; the graphs are small, so a search from each node for a way back is enough.
    let mut loops = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle: Vec<String> = trail.iter().map(|p| display(p)).collect();
                    let smallest = (0..cycle.len()).min_by_key(|&i| cycle[i].clone()).unwrap_or(0);
                    cycle.rotate_left(smallest);
                    loops.insert(cycle.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    Ok(loops.into_iter().map(|l| format!("{}: {l} -> (back)", src.display())).collect())
}

/// `cargo xtask layers`: the facade's layering and both crates' file loops. `Ok(false)` when
/// anything is wrong (each problem printed).
pub fn run(root: &Path) -> std::io::Result<bool> {
    let facade = root.join("crates/gpucloud/src");
    let emulator = root.join("crates/gpucloud-emulator/src");
    let mut problems = upward_uses(&facade)?;
    problems.extend(circles(&facade)?);
    problems.extend(circles(&emulator)?);
    for problem in &problems {
        eprintln!("{problem}");
    }
    if problems.is_empty() {
        println!(
            "layers: {} layers, every use points down; no file loops in the facade or the emulator",
            FACADE_LAYERS.len()
        );
    }
    Ok(problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plant(files: &[(&str, &str)]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for (name, text) in files {
            let path = dir.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("xtask-layers-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const LIB: &str = "pub mod model;\npub mod fleet;\npub use fleet::{Fleet, LaunchRequest};\n";

    #[test]
    fn the_real_facade_and_emulator_keep_the_rules() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(upward_uses(&root.join("crates/gpucloud/src")).unwrap(), Vec::<String>::new());
        assert_eq!(circles(&root.join("crates/gpucloud/src")).unwrap(), Vec::<String>::new());
        assert_eq!(circles(&root.join("crates/gpucloud-emulator/src")).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_planted_upward_import_fails() {
        let dir = plant(&[
            ("lib.rs", LIB),
            ("model/mod.rs", "pub mod pod;\n"),
            ("model/pod.rs", "use crate::fleet::spend::BurnCap;\n"),
            ("fleet/mod.rs", "pub mod spend;\n"),
            ("fleet/spend.rs", "use crate::model::pod::Pod;\n"),
        ]);
        let problems = upward_uses(&dir.0).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("crate::fleet::spend::BurnCap") && problems[0].contains("layer model to layer fleet")
        );
    }

    #[test]
    fn upward_uses_are_found_through_groups_reexports_and_super() {
        let dir = plant(&[
            ("lib.rs", LIB),
            ("model/mod.rs", "pub mod pod;\npub mod lease;\n"),
            ("model/pod.rs", "use crate::{model::lease, Fleet};\n"),
            ("model/lease.rs", "fn f() { let _ = super::super::fleet::x(); }\n"),
            ("fleet/mod.rs", "pub struct Fleet;\n"),
        ]);
        let problems = upward_uses(&dir.0).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("crate::Fleet")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("super::super::fleet")), "{problems:?}");
    }

    #[test]
    fn comments_and_strings_are_not_uses() {
        let dir = plant(&[
            ("lib.rs", LIB),
            ("model/mod.rs", "//! See [`crate::fleet`].\n/// [`crate::Fleet`]\nconst S: &str = \"crate::fleet\";\n"),
            ("fleet/mod.rs", ""),
        ]);
        assert_eq!(upward_uses(&dir.0).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_loop_of_files_is_reported() {
        let dir = plant(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::B;\n"),
            ("b.rs", "use crate::c::C;\n"),
            ("c.rs", "use crate::a::A;\n"),
        ]);
        let loops = circles(&dir.0).unwrap();
        assert_eq!(loops.len(), 1, "{loops:?}");
        assert!(loops[0].contains("a -> b -> c"), "{loops:?}");
    }
}
