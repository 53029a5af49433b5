//! What each raw client crate's `build.rs` calls: read the generator-ready OpenAPI 3.0 document
//! (written by `cargo xtask regen`), run progenitor's builder-style generator on it, and write the
//! result to `OUT_DIR`.
//!
//! Two files are written:
//! - `codegen.rs`: progenitor's output, included by the crate inside a module that carries the
//!   lint allowances generated code needs;
//! - `client_extras.rs`: the hand-written additions every raw client shares (API-key
//!   constructor, timeouts, `User-Agent`, the hook that drops progenitor's `api-version`
//!   header). It lives once, in `src/client_extras.rs` here, and is linted like any of our code.
//!
//! `rerun-if-changed` names exactly the spec and the build script, so an ordinary rebuild (a
//! facade edit, say) never reruns generation.

use std::path::{Path, PathBuf};

const CLIENT_EXTRAS: &str = include_str!("client_extras.rs");

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
}

/// Runs progenitor on the document at `spec_path` and returns formatted Rust source.
pub fn render(spec_path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| e.to_string())?;
    let spec: openapiv3::OpenAPI =
        serde_json::from_str(&text).map_err(|e| format!("not an OpenAPI 3.0 document (run `cargo xtask regen`): {e}"))?;
    let mut settings = progenitor::GenerationSettings::new();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_derive("PartialEq");
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator.generate_tokens(&spec).map_err(|e| e.to_string())?;
    let file: syn::File = syn::parse2(tokens).map_err(|e| e.to_string())?;
    Ok(prettyplease::unparse(&file))
}

fn write(path: &Path, contents: &str) {
    // Writing identical bytes would still bump the mtime and make dependents rebuild.
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
