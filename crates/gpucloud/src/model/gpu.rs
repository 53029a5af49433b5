//! One GPU naming across providers.
//!
//! PrimeIntellect names GPUs by `GPUType` (`H100_80GB`) plus a socket; RunPod by id
//! (`NVIDIA H100 80GB HBM3`, sometimes with a doubled space: `NVIDIA  RTX A4500`) and display
//! name (`H100 SXM`). [`lookup`] maps any of those to one [`GpuModel`] whose canonical name is
//! PrimeIntellect's `GPUType` spelling. Unknown names are not an error: [`canonical_name`]
//! returns them unchanged, so a GPU launched next month still shows up.

use serde::Serialize;

/// A GPU model, independent of provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct GpuModel {
    /// Canonical name (PrimeIntellect's `GPUType`), e.g. `H100_80GB`.
    pub name: &'static str,
    /// Human name, e.g. `H100 80GB`.
    pub display: &'static str,
    /// Memory per GPU, GB.
    pub memory_gb: u32,
    /// RunPod GPU type ids of this model, with the socket each implies.
    #[serde(skip)]
    pub runpod_ids: &'static [(&'static str, &'static str)],
    /// Other names seen in the wild (RunPod display names, marketing names).
    #[serde(skip)]
    pub aliases: &'static [&'static str],
}

macro_rules! gpus {
    ($( $name:literal, $display:literal, $mem:literal, [$(($rp:literal, $socket:literal)),*], [$($alias:literal),*]; )*) => {
        /// Every model the registry knows.
        pub const MODELS: &[GpuModel] = &[
            $(GpuModel { name: $name, display: $display, memory_gb: $mem, runpod_ids: &[$(($rp, $socket)),*], aliases: &[$($alias),*] },)*
        ];
    };
}

gpus! {
    "H100_80GB", "H100 80GB", 80, [("NVIDIA H100 80GB HBM3", "SXM5"), ("NVIDIA H100 PCIe", "PCIe")], ["H100 SXM", "H100 PCIe", "H100"];
    "H100_94GB", "H100 NVL", 94, [("NVIDIA H100 NVL", "PCIe")], ["H100 NVL"];
    "H200_141GB", "H200 141GB", 141, [("NVIDIA H200", "SXM5")], ["H200 SXM", "H200"];
    "H200_96GB", "H200 96GB", 96, [], [];
    "GH200_96GB", "GH200 96GB", 96, [], ["GH200"];
    "B200_180GB", "B200 180GB", 180, [("NVIDIA B200", "SXM6")], ["B200"];
    "B300_262GB", "B300 262GB", 262, [("NVIDIA B300", "SXM6")], ["B300"];
    "GB200", "GB200", 186, [], [];
    "GB300", "GB300", 279, [], [];
    "A100_80GB", "A100 80GB", 80, [("NVIDIA A100-SXM4-80GB", "SXM4"), ("NVIDIA A100 80GB PCIe", "PCIe")], ["A100 SXM", "A100 PCIe"];
    "A100_40GB", "A100 40GB", 40, [("NVIDIA A100-SXM4-40GB", "SXM4")], [];
    "A40_48GB", "A40", 48, [("NVIDIA A40", "PCIe")], ["A40"];
    "A30_24GB", "A30", 24, [("NVIDIA A30", "PCIe")], ["A30"];
    "A10_24GB", "A10", 24, [("NVIDIA A10", "PCIe")], ["A10"];
    "L40S_48GB", "L40S", 48, [("NVIDIA L40S", "PCIe")], ["L40S"];
    "L40_48GB", "L40", 48, [("NVIDIA L40", "PCIe")], ["L40"];
    "L4_24GB", "L4", 24, [("NVIDIA L4", "PCIe")], ["L4"];
    "A6000_48GB", "RTX A6000", 48, [("NVIDIA RTX A6000", "PCIe")], ["RTX A6000", "A6000"];
    "A5000_24GB", "RTX A5000", 24, [("NVIDIA RTX A5000", "PCIe")], ["RTX A5000", "A5000"];
    "A4500_20GB", "RTX A4500", 20, [("NVIDIA RTX A4500", "PCIe")], ["RTX A4500", "A4500"];
    "A4000_16GB", "RTX A4000", 16, [("NVIDIA RTX A4000", "PCIe")], ["RTX A4000", "A4000"];
    "A2000_6GB", "RTX A2000", 6, [("NVIDIA RTX A2000", "PCIe")], ["RTX A2000"];
    "RTX6000Ada_48GB", "RTX 6000 Ada", 48, [("NVIDIA RTX 6000 Ada Generation", "PCIe")], ["RTX 6000 Ada"];
    "RTX5000Ada_32GB", "RTX 5000 Ada", 32, [("NVIDIA RTX 5000 Ada Generation", "PCIe")], ["RTX 5000 Ada"];
    "RTX4000Ada_20GB", "RTX 4000 Ada", 20, [("NVIDIA RTX 4000 Ada Generation", "PCIe")], ["RTX 4000 Ada"];
    "RTX2000Ada_16GB", "RTX 2000 Ada", 16, [("NVIDIA RTX 2000 Ada Generation", "PCIe")], ["RTX 2000 Ada"];
    "RTX_PRO_6000B_96GB", "RTX PRO 6000", 96, [("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "PCIe"), ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "PCIe")], ["RTX PRO 6000"];
    "RTX5090_32GB", "RTX 5090", 32, [("NVIDIA GeForce RTX 5090", "PCIe")], ["RTX 5090"];
    "RTX4090_24GB", "RTX 4090", 24, [("NVIDIA GeForce RTX 4090", "PCIe")], ["RTX 4090"];
    "RTX4080_16GB", "RTX 4080", 16, [("NVIDIA GeForce RTX 4080", "PCIe")], ["RTX 4080"];
    "RTX4080Ti_16GB", "RTX 4080 SUPER", 16, [("NVIDIA GeForce RTX 4080 SUPER", "PCIe")], ["RTX 4080 SUPER"];
    "RTX4070Ti_12GB", "RTX 4070 Ti", 12, [("NVIDIA GeForce RTX 4070 Ti", "PCIe")], ["RTX 4070 Ti"];
    "RTX3090_24GB", "RTX 3090", 24, [("NVIDIA GeForce RTX 3090", "PCIe")], ["RTX 3090"];
    "RTX3090Ti_24GB", "RTX 3090 Ti", 24, [("NVIDIA GeForce RTX 3090 Ti", "PCIe")], ["RTX 3090 Ti"];
    "RTX3080Ti_12GB", "RTX 3080 Ti", 12, [("NVIDIA GeForce RTX 3080 Ti", "PCIe")], ["RTX 3080 Ti"];
    "RTX3080_10GB", "RTX 3080", 10, [("NVIDIA GeForce RTX 3080", "PCIe")], ["RTX 3080"];
    "RTX3070_8GB", "RTX 3070", 8, [("NVIDIA GeForce RTX 3070", "PCIe")], ["RTX 3070"];
    "RTX6000_24GB", "Quadro RTX 6000", 24, [("Quadro RTX 6000", "PCIe")], [];
    "RTX8000_48GB", "Quadro RTX 8000", 48, [("Quadro RTX 8000", "PCIe")], [];
    "RTX5000_16GB", "Quadro RTX 5000", 16, [("Quadro RTX 5000", "PCIe")], [];
    "RTX4000_8GB", "Quadro RTX 4000", 8, [("Quadro RTX 4000", "PCIe")], [];
    "V100_32GB", "V100 32GB", 32, [("Tesla V100-SXM2-32GB", "SXM2")], [];
    "V100_16GB", "V100 16GB", 16, [("Tesla V100-SXM2-16GB", "SXM2"), ("Tesla V100-PCIE-16GB", "PCIe"), ("Tesla V100-FHHL-16GB", "PCIe")], ["V100"];
    "T4_16GB", "T4", 16, [("Tesla T4", "PCIe")], ["T4"];
    "P100_16GB", "P100", 16, [], ["P100"];
    "P40_24GB", "P40", 24, [], ["P40"];
    "P4_8GB", "P4", 8, [], ["P4"];
    "MI300X_192GB", "MI300X", 192, [("AMD Instinct MI300X OAM", "OAM")], ["MI300X"];
}

/// Uppercase alphanumerics only, with vendor words dropped: `NVIDIA  RTX A4500` and
/// `rtx-a4500` both become `RTXA4500`.
fn fold(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !matches!(*w, "NVIDIA" | "GEFORCE" | "TESLA" | "AMD" | "INSTINCT"))
        .collect();
    words.concat()
}

/// The model a provider's GPU name refers to: a PrimeIntellect `GPUType`, a RunPod id (with
/// or without doubled spaces), or a display name, in any case. `None` for unknown names.
pub fn lookup(name: &str) -> Option<&'static GpuModel> {
    let key = fold(name);
    if key.is_empty() {
        return None;
    }
    MODELS.iter().find(|m| fold(m.name) == key || fold(m.display) == key).or_else(|| {
        MODELS
            .iter()
            .find(|m| m.runpod_ids.iter().any(|(id, _)| fold(id) == key) || m.aliases.iter().any(|a| fold(a) == key))
    })
}

/// The canonical name for `name`, or `name` itself (whitespace collapsed) when unknown.
pub fn canonical_name(name: &str) -> String {
    match lookup(name) {
        Some(model) => model.name.to_string(),
        None => name.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The `n` known models whose names are closest to `name` (edit distance over the folded
/// canonical, display and alias spellings), closest first: suggestions for an unknown name.
pub fn closest(name: &str, n: usize) -> Vec<&'static GpuModel> {
    let key = fold(name);
    let mut scored: Vec<(usize, &'static GpuModel)> = MODELS
        .iter()
        .map(|m| {
            let spellings = [m.name, m.display].into_iter().chain(m.aliases.iter().copied());
            (spellings.map(|s| edit_distance(&key, &fold(s))).min().unwrap_or(usize::MAX), m)
        })
        .collect();
    scored.sort_by_key(|(distance, m)| (*distance, m.name));
    scored.into_iter().take(n).map(|(_, m)| m).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The socket a RunPod GPU id implies (`SXM5`, `PCIe`, ...), when known.
pub fn runpod_socket(id: &str) -> Option<&'static str> {
    let key = fold(id);
    MODELS.iter().flat_map(|m| m.runpod_ids.iter()).find(|(rp, _)| fold(rp) == key).map(|(_, socket)| *socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_finds_the_same_model() {
        for name in ["H100_80GB", "NVIDIA H100 80GB HBM3", "nvidia h100 pcie", "H100 SXM", "h100"] {
            assert_eq!(lookup(name).map(|m| m.name), Some("H100_80GB"), "{name}");
        }
        assert_eq!(lookup("NVIDIA  RTX A4500").unwrap().name, "A4500_20GB");
        assert_eq!(lookup("NVIDIA RTX A4500").unwrap().name, "A4500_20GB");
        assert_eq!(lookup("RTX 4090").unwrap().memory_gb, 24);
        assert_eq!(runpod_socket("NVIDIA A100-SXM4-80GB"), Some("SXM4"));
    }

    #[test]
    fn unknown_names_are_kept() {
        assert!(lookup("Z9000_1TB").is_none());
        assert_eq!(canonical_name("Brand  New GPU"), "Brand New GPU");
        assert!(lookup("").is_none());
    }

    #[test]
    fn no_two_models_share_a_name() {
        let mut keys: Vec<String> = MODELS
            .iter()
            .flat_map(|m| {
                let mut k = vec![fold(m.name)];
                k.extend(m.runpod_ids.iter().map(|(id, _)| fold(id)));
                k
            })
            .collect();
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), total);
    }

    #[test]
    fn unknown_names_get_the_closest_known_models() {
        let names = |query: &str| closest(query, 3).iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names("H100_80G")[0], "H100_80GB");
        assert_eq!(names("h200")[0], "H200_141GB");
        assert_eq!(names("A100_80")[0], "A100_80GB");
        assert_eq!(closest("FOO", 3).len(), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
