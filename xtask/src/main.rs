//! `cargo xtask regen [--check] [--api NAME] [--from PATH|URL] [--dry-run]`
//!
//! For each API in `openapi/`: upstream document -> overlay -> normalization passes ->
//! `generated.json`, the OpenAPI 3.0 input the raw client's `build.rs` hands to progenitor,
//! written twice: in `openapi/<api>/` beside its sources, and as `crates/<crate>/openapi.json`,
//! the copy inside the crate's package that its `build.rs` reads.
//!
//! - `--check` regenerates in memory and fails when a checked-in file is stale or an upstream
//!   document is no longer the recorded one (sha256 in `upstream.sha256`).
//! - `--from PATH|URL` (with `--api`) takes a new upstream document, prints a change report
//!   against the vendored one, then vendors it and regenerates; `--dry-run` only reports.
//!   A URL is fetched with `curl`; nothing else touches the network.

mod apis;
mod build_cost;
mod layers;
mod normalize;
mod overlay;
mod report;
mod schema_walk;

use apis::{APIS, Api};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask regen [--check] [--api NAME] [--from PATH|URL [--dry-run]]
       cargo xtask passes      (list the normalization passes with their reasons)
       cargo xtask soak [--cycles N] [--rate R] [--seed S] [--report FILE]   (full fault soak, release build)
       cargo xtask job-soak [--jobs N] [--killed K] [--stream-mb M] [--rate R] [--report FILE]   (many `gpucloud run` jobs under SSH faults, release build)
       cargo xtask layers      (every facade import points down a layer; no file loops: ARCHITECTURE.md)
       cargo xtask build-cost [--runs N] [--gpucloud CHECKOUT] [--features LIST]   (cold build vs runpod-sdk 0.8.0)";

/// The full-size fault soak: the soak test, in release mode, with the given size.
fn soak(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let mut env = vec![("GPUCLOUD_SOAK_CYCLES", "1000".to_string()), ("GPUCLOUD_SOAK_FAULT_RATE", "0.2".to_string())];
    while let Some(arg) = args.next() {
        let variable = match arg.as_str() {
            "--cycles" => "GPUCLOUD_SOAK_CYCLES",
            "--rate" => "GPUCLOUD_SOAK_FAULT_RATE",
            "--seed" => "GPUCLOUD_SOAK_SEED",
            "--report" => "GPUCLOUD_SOAK_REPORT",
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        env.retain(|(k, _)| *k != variable);
        env.push((variable, value));
    }
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--release", "-p", "gpucloud", "--test", "soak", "--", "--nocapture"])
        .envs(env)
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    Ok(status.success())
}

/// The full-size job soak (issue 26): the `job_soak` test of the CLI, in release mode, with the
/// given size (default 20 jobs, 5 launchers killed, 1 GiB streamed).
fn job_soak(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let mut env = vec![
        ("GPUCLOUD_JOB_SOAK_JOBS", "20".to_string()),
        ("GPUCLOUD_JOB_SOAK_KILLED", "5".to_string()),
        ("GPUCLOUD_JOB_SOAK_STREAM_MB", "1024".to_string()),
    ];
    while let Some(arg) = args.next() {
        let variable = match arg.as_str() {
            "--jobs" => "GPUCLOUD_JOB_SOAK_JOBS",
            "--killed" => "GPUCLOUD_JOB_SOAK_KILLED",
            "--stream-mb" => "GPUCLOUD_JOB_SOAK_STREAM_MB",
            "--rate" => "GPUCLOUD_JOB_SOAK_FAULT_RATE",
            "--report" => "GPUCLOUD_JOB_SOAK_REPORT",
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        env.retain(|(k, _)| *k != variable);
        env.push((variable, value));
    }
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--release", "-p", "gpucloud-cli", "--test", "job_soak", "--", "--nocapture"])
        .envs(env)
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    Ok(status.success())
}

struct Args {
    check: bool,
    api: Option<String>,
    from: Option<String>,
    dry_run: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args { check: false, api: None, from: None, dry_run: false };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => parsed.check = true,
            "--dry-run" => parsed.dry_run = true,
            "--api" => parsed.api = Some(args.next().ok_or("--api needs a NAME")?),
            "--from" => parsed.from = Some(args.next().ok_or("--from needs a PATH or URL")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.from.is_some() && parsed.api.is_none() {
        return Err("--from needs --api NAME to say which document it replaces".into());
    }
    if parsed.check && parsed.from.is_some() {
        return Err("--check and --from do not combine".into());
    }
    Ok(parsed)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repository root").to_path_buf()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn to_pretty(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("a Value always serializes");
    text.push('\n');
    text
}

/// upstream + overlay + normalization, as the text `generated.json` must hold.
/// How many places each normalization pass rewrote, in pass order.
type PassCounts = Vec<(&'static str, usize)>;

fn generate(api: &Api, root: &Path, upstream: &Value) -> Result<(String, PassCounts), String> {
    let mut doc = with_overlay(api, root, upstream)?;
    let counts = normalize::normalize(&mut doc);
    Ok((to_pretty(&doc), counts))
}

/// `upstream` with the API's overlay applied (when it has one).
fn with_overlay(api: &Api, root: &Path, upstream: &Value) -> Result<Value, String> {
    let mut doc = upstream.clone();
    let overlay_path = api.overlay(root);
    if overlay_path.exists() {
        let text = std::fs::read_to_string(&overlay_path).map_err(|e| format!("{}: {e}", overlay_path.display()))?;
        overlay::Overlay::parse(&text)?.apply(&mut doc).map_err(|e| format!("{}: {e}", api.name))?;
    }
    Ok(doc)
}

/// The document the emulator validates requests against (see [`Api::emulator_copy`]).
fn emulator_copy(api: &Api, root: &Path, upstream: &Value) -> Result<String, String> {
    let mut doc = with_overlay(api, root, upstream)?;
    normalize::dedupe_enum_values(&mut doc);
    Ok(to_pretty(&doc))
}

/// The document Prism serves: the upstream one with duplicate enum values removed, nothing else.
fn prism_copy(upstream: &Value) -> String {
    let mut doc = upstream.clone();
    normalize::dedupe_enum_values(&mut doc);
    to_pretty(&doc)
}

/// Writes `text` to `path`, or under `--check` reports whether it differs. Returns "clean".
fn sync_file(check: bool, name: &str, path: &Path, text: &str) -> Result<bool, String> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    if existing == text {
        if check {
            println!("{name}: {} up to date", path.display());
        }
        return Ok(true);
    }
    if check {
        eprintln!(
            "{name}: {} is stale ({}); run `cargo xtask regen`",
            path.display(),
            first_difference(&existing, text)
        );
        return Ok(false);
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{name}: wrote {}", path.display());
    Ok(true)
}

fn fetch(source: &str) -> Result<Vec<u8>, String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let output = std::process::Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location", source])
            .output()
            .map_err(|e| format!("running curl: {e}"))?;
        if !output.status.success() {
            return Err(format!("curl {source}: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(output.stdout)
    } else {
        std::fs::read(source).map_err(|e| format!("{source}: {e}"))
    }
}

/// First differing line of two texts, for a readable `--check` failure.
fn first_difference(old: &str, new: &str) -> String {
    let differing = old.lines().zip(new.lines()).position(|(a, b)| a != b);
    match differing {
        Some(i) => format!(
            "line {}: checked in {:?}, regenerated {:?}",
            i + 1,
            old.lines().nth(i).unwrap_or(""),
            new.lines().nth(i).unwrap_or("")
        ),
        None => format!("checked in has {} lines, regenerated {}", old.lines().count(), new.lines().count()),
    }
}

fn regen(args: &Args) -> Result<bool, String> {
    let root = repo_root();
    let selected: Vec<&Api> = match &args.api {
        Some(name) => vec![Api::find(name).ok_or_else(|| {
            format!("unknown API {name:?}; known: {}", APIS.iter().map(|a| a.name).collect::<Vec<_>>().join(", "))
        })?],
        None => APIS.iter().collect(),
    };
    let mut clean = true;
    for api in selected {
        let upstream_path = api.upstream(&root);
        let sha_path = upstream_path.with_file_name("upstream.sha256");
        if let Some(source) = &args.from {
            let bytes = fetch(source)?;
            let candidate: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{source}: not JSON: {e}"))?;
            let current = read_json(&upstream_path)?;
            let (text, total) = report::change_report(&current, &candidate);
            println!("== change report for {} ({})\n{text}", api.name, api.crate_name);
            // Fail early if the overlay no longer applies or normalization breaks.
            let (generated, _) = generate(api, &root, &candidate)?;
            if args.dry_run {
                println!("{total} differences; --dry-run: nothing written");
                continue;
            }
            std::fs::write(&upstream_path, &bytes).map_err(|e| e.to_string())?;
            std::fs::write(&sha_path, format!("{}\n", sha256_hex(&bytes))).map_err(|e| e.to_string())?;
            std::fs::write(api.generated(&root), &generated).map_err(|e| e.to_string())?;
            std::fs::write(api.crate_copy(&root), &generated).map_err(|e| e.to_string())?;
            if api.emulated {
                std::fs::write(api.emulator_copy(&root), emulator_copy(api, &root, &candidate)?)
                    .map_err(|e| e.to_string())?;
            }
            println!("vendored {source} as {} and regenerated", upstream_path.display());
            continue;
        }
        let bytes = std::fs::read(&upstream_path).map_err(|e| format!("{}: {e}", upstream_path.display()))?;
        let recorded = std::fs::read_to_string(&sha_path).unwrap_or_default();
        let actual = sha256_hex(&bytes);
        if recorded.trim() != actual {
            clean = false;
            eprintln!(
                "{}: upstream.json sha256 is {actual}, upstream.sha256 records {:?}: the vendored document was edited; \
                 put local changes in overlay.json, or vendor a new document with --from",
                api.name,
                recorded.trim()
            );
        }
        let upstream: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", upstream_path.display()))?;
        let (generated, counts) = generate(api, &root, &upstream)?;
        if !args.check {
            let summary: Vec<String> =
                counts.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name}={n}")).collect();
            println!("{}: passes {}", api.name, summary.join(" "));
        }
        clean &= sync_file(args.check, api.name, &api.generated(&root), &generated)?;
        clean &= sync_file(args.check, api.name, &api.crate_copy(&root), &generated)?;
        if api.prism_copy {
            clean &= sync_file(args.check, api.name, &api.prism(&root), &prism_copy(&upstream))?;
        }
        if api.emulated {
            let text = emulator_copy(api, &root, &upstream)?;
            clean &= sync_file(args.check, api.name, &api.emulator_copy(&root), &text)?;
        }
    }
    Ok(clean)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("regen") => match parse_args(args).and_then(|a| regen(&a)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("xtask regen: {e}");
                ExitCode::FAILURE
            }
        },
        Some("soak") => match soak(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("xtask soak: {e}");
                ExitCode::FAILURE
            }
        },
        Some("job-soak") => match job_soak(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("xtask job-soak: {e}");
                ExitCode::FAILURE
            }
        },
        Some("build-cost") => match build_cost::run(args, &repo_root()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask build-cost: {e}");
                ExitCode::FAILURE
            }
        },
        Some("layers") => match layers::run(&repo_root()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("xtask layers: {e}");
                ExitCode::FAILURE
            }
        },
        Some("passes") => {
            for pass in normalize::PASSES {
                println!("{}: {}", pass.name, pass.reason);
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
