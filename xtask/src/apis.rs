//! The APIs this repository vendors, and where each one's files live.

use std::path::{Path, PathBuf};

/// One vendored API: its upstream document, overlay and generator input.
pub struct Api {
    /// Short name used on the command line (`--api NAME`).
    pub name: &'static str,
    /// Folder under `openapi/`.
    pub dir: &'static str,
    /// The raw client crate generated from it.
    pub crate_name: &'static str,
    /// Whether the Prism mock needs its own copy (upstream with only Prism's fix-ups).
    pub prism_copy: bool,
    /// Whether the emulator validates requests against this document (it keeps its own copy).
    pub emulated: bool,
}

pub const APIS: &[Api] = &[
    // Duplicate GPUType values make Prism silently stop validating request bodies.
    Api {
        name: "primeintellect",
        dir: "primeintellect",
        crate_name: "primeintellect-api",
        prism_copy: true,
        emulated: true,
    },
    Api { name: "runpod-v2", dir: "runpod-v2", crate_name: "runpod-api", prism_copy: false, emulated: true },
    Api { name: "runpod-v1", dir: "runpod-v1", crate_name: "runpod-v1-api", prism_copy: false, emulated: false },
];

impl Api {
    pub fn find(name: &str) -> Option<&'static Api> {
        APIS.iter().find(|api| api.name == name)
    }

    fn folder(&self, root: &Path) -> PathBuf {
        root.join("openapi").join(self.dir)
    }

    /// The provider's document, byte for byte.
    pub fn upstream(&self, root: &Path) -> PathBuf {
        self.folder(root).join("upstream.json")
    }

    /// Our deliberate, reasoned changes to the upstream document.
    pub fn overlay(&self, root: &Path) -> PathBuf {
        self.folder(root).join("overlay.json")
    }

    /// What the Prism conformance test serves: upstream with only the fix-ups Prism needs.
    pub fn prism(&self, root: &Path) -> PathBuf {
        self.folder(root).join("prism.json")
    }

    /// What progenitor reads: upstream + overlay + normalization (OpenAPI 3.0).
    pub fn generated(&self, root: &Path) -> PathBuf {
        self.folder(root).join("generated.json")
    }

    /// The emulator's copy of the document it validates requests against: upstream + overlay
    /// (values the live API added) with duplicate enum values removed, still OpenAPI 3.1, so
    /// `unevaluatedProperties`, `if`/`then` and `const` keep their meaning. Inside the emulator's
    /// crate because a packaged crate holds nothing outside its own folder.
    pub fn emulator_copy(&self, root: &Path) -> PathBuf {
        root.join("crates/gpucloud-emulator/documents").join(format!("{}.json", self.dir))
    }

    /// The raw crate's own copy of [`Api::generated`], which its `build.rs` reads: a packaged
    /// crate holds nothing outside its own folder. Kept identical by `regen` (`--check` fails
    /// when they differ).
    pub fn crate_copy(&self, root: &Path) -> PathBuf {
        root.join("crates").join(self.crate_name).join("openapi.json")
    }
}
