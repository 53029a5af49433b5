//! What each raw client crate's `build.rs` calls: read the generator-ready OpenAPI 3.0 document
//! (written by `cargo xtask regen`), run progenitor's builder-style generator on it, and write the
//! result to `OUT_DIR`.
//!
//! Three files are written; the crate root includes `client.rs`, which includes the others:
//! - `client.rs`: a module around the generated code with the lint allowances it needs;
//! - `codegen.rs`: progenitor's output;
//! - `client_extras.rs`: the hand-written additions every raw client shares (API-key
//!   constructor, timeouts, `User-Agent`, the hook that drops progenitor's `api-version`
//!   header). It lives once, in `src/client_extras.rs` here, and is linted like any of our code.
//!
//! Where a provider's responses spell a field differently from its schema (`totalCount` vs
//! `total_count`), the document's `x-gpucloud-field-aliases` extension (set in the overlay) lists
//! the spellings, and every generated field that deserializes one of them accepts the others too
//! (`#[serde(alias)]`): typify has no way to express that from a schema.
//!
//! `known_values("GPUType")` returns the values the document lists for an open enum, the list a
//! request must stay inside (see `known_values.rs`).
//!
//! `rerun-if-changed` names exactly the spec and the build script, so an ordinary rebuild (a
//! facade edit, say) never reruns generation.

mod aliases;
mod known_values;

use std::path::{Path, PathBuf};

const CLIENT_EXTRAS: &str = include_str!("client_extras.rs");

/// What a raw crate's root includes: progenitor's output inside a module carrying the lint
/// allowances generated code needs (it is not ours to restyle), then the shared extras.
const CLIENT_ROOT: &str = r#"#[allow(
    missing_docs,
    unused_imports,
    unreachable_patterns,
    dead_code,
    deprecated,
    clippy::all,
    clippy::pedantic,
    reason = "progenitor output is not ours to restyle"
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}

pub use generated::*;

include!(concat!(env!("OUT_DIR"), "/client_extras.rs"));
"#;

/// Generates the client for `spec` (a path relative to the calling crate's manifest directory).
///
/// Panics with a readable message on any failure: this runs inside `build.rs`, where a panic is
/// how an error is reported.
pub fn generate_client(spec: &str) {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from build.rs"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("run from build.rs"));
    let spec_path = manifest_dir.join(spec);
    println!("cargo:rerun-if-changed={}", spec_path.display());
    println!("cargo:rerun-if-changed=build.rs");

    let code = render(&spec_path).unwrap_or_else(|e| panic!("generating a client from {}: {e}", spec_path.display()));
    write(&out_dir.join("codegen.rs"), &code);
    write(&out_dir.join("client_extras.rs"), CLIENT_EXTRAS);
    write(&out_dir.join("client.rs"), CLIENT_ROOT);
}

/// Runs progenitor on the document at `spec_path` and returns formatted Rust source.
pub fn render(spec_path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| e.to_string())?;
    let spec: openapiv3::OpenAPI = serde_json::from_str(&text)
        .map_err(|e| format!("not an OpenAPI 3.0 document (run `cargo xtask regen`): {e}"))?;
    let mut settings = progenitor::GenerationSettings::new();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_derive("PartialEq");
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator.generate_tokens(&spec).map_err(|e| e.to_string())?;
    let mut file: syn::File = syn::parse2(tokens).map_err(|e| e.to_string())?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    aliases::add_field_aliases(&mut file, &aliases::alias_groups(&doc)?);
    Ok(prettyplease::unparse(&file) + &known_values::render(&doc))
}

fn write(path: &Path, contents: &str) {
    // Writing identical bytes would still bump the mtime and make dependents rebuild.
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// The operationIds of a generator-ready document, converted to the method names progenitor
/// gives them (snake case). Used by each raw crate's test that every operation is reachable.
pub fn expected_method_names(spec_path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| e.to_string())?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let paths = doc.get("paths").and_then(|p| p.as_object()).ok_or("document has no paths")?;
    let mut names = Vec::new();
    for item in paths.values() {
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if let Some(op) = item.get(method) {
                let id = op.get("operationId").and_then(|id| id.as_str()).ok_or("operation without operationId")?;
                names.push(snake_case(id));
            }
        }
    }
    Ok(names)
}

/// Asserts that every operation of the document at `spec` (relative to the calling crate) is a
/// method of the generated client in `codegen` (the crate's `OUT_DIR/codegen.rs`).
pub fn assert_every_operation_is_a_method(manifest_dir: &str, spec: &str, codegen: &str) {
    let mut expected = expected_method_names(&Path::new(manifest_dir).join(spec)).expect("the spec is readable");
    let code = std::fs::read_to_string(codegen).expect("the generated code is readable");
    let mut generated = generated_method_names(&code);
    expected.sort();
    generated.sort();
    assert!(!expected.is_empty(), "the document lists operations");
    assert_eq!(generated, expected);
}

/// The public methods of `impl Client` in progenitor's builder-style output.
pub fn generated_method_names(code: &str) -> Vec<String> {
    code.split("pub fn ")
        .skip(1)
        .filter_map(|rest| {
            let signature: String = rest.split('{').next()?.chars().filter(|c| !c.is_whitespace()).collect();
            let (name, params) = signature.split_once('(')?;
            // Operation methods take only `&self` and return their builder.
            let is_operation = params.starts_with("&self)->builder::") || params.starts_with("&self,)->builder::");
            is_operation.then(|| name.to_string())
        })
        .collect()
}

fn snake_case(id: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = id.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && !out.ends_with('_') && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == ' ' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn operation_ids_become_snake_case() {
        for (id, name) in [
            ("listGpuTypes", "list_gpu_types"),
            ("UpdatePodViaPost", "update_pod_via_post"),
            ("get_gpu_availability", "get_gpu_availability"),
            ("getSshKeys", "get_ssh_keys"),
            ("GetOpenAPI", "get_open_api"),
        ] {
            assert_eq!(super::snake_case(id), name);
        }
    }
}
