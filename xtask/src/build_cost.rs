//! `cargo xtask build-cost`: what a new user pays to compile gpucloud, against an anchor.
//!
//! Two fresh binary crates, each outside this workspace with its own empty target directory:
//! one calls `Fleet::offers` through `gpucloud` (as a path dependency, so the working tree is
//! measured, resolved as a registry user would resolve it: newest compatible versions, not this
//! workspace's lock file), the other lists pods through `runpod-sdk` 0.8.0, a hand-written,
//! RunPod-only SDK. Dependencies are downloaded first (not timed); then each cold debug
//! `cargo build --timings` is timed, one after the other on the same machine, and the ratio
//! printed with the five longest compilation units of each (from cargo's timings report).
//!
//! `--runs N` repeats the pair N times (median reported); `--gpucloud PATH` measures another
//! checkout's `crates/gpucloud`; `--features LIST` builds gpucloud with
//! `default-features = false` and those features.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const ANCHOR: &str = "runpod-sdk";
const ANCHOR_VERSION: &str = "=0.8.0";

struct Options {
    runs: usize,
    gpucloud: PathBuf,
    features: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>, root: &Path) -> Result<Options, String> {
    let mut options = Options { runs: 1, gpucloud: root.join("crates/gpucloud"), features: None };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => options.runs = value()?.parse().map_err(|_| "--runs needs a number".to_string())?,
            "--gpucloud" => options.gpucloud = PathBuf::from(value()?).join("crates/gpucloud"),
            "--features" => options.features = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn gpucloud_consumer(options: &Options) -> (String, &'static str) {
    let path = options.gpucloud.display().to_string().replace('\\', "/");
    let dependency = match &options.features {
        None => format!("gpucloud = {{ path = {path:?} }}"),
        Some(list) => {
            let features: Vec<String> = list.split(',').map(|f| format!("{:?}", f.trim())).collect();
            format!("gpucloud = {{ path = {path:?}, default-features = false, features = [{}] }}", features.join(", "))
        }
    };
    let main = r#"#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fleet = gpucloud::Fleet::from_env()?;
    let results = fleet.offers(&gpucloud::OfferQuery::gpu("H100_80GB", 1)).await;
    println!("{} offers, {} providers failed", results.offers.len(), results.errors.len());
    Ok(())
}
"#;
    (dependency, main)
}

fn anchor_consumer() -> (String, &'static str) {
    let main = r#"use runpod_sdk::service::PodsService;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = runpod_sdk::RunpodClient::from_env()?;
    let pods = client.list_pods(Default::default()).await?;
    println!("{} pods", pods.len());
    Ok(())
}
"#;
    (format!("{ANCHOR} = {ANCHOR_VERSION:?}"), main)
}

fn write_crate(dir: &Path, name: &str, dependency: &str, main: &str) -> Result<(), String> {
    let manifest = format!(
        "[package]\nname = {name:?}\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n{dependency}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n\n[workspace]\n"
    );
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/main.rs"), main).map_err(|e| e.to_string())
}

fn cargo(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_INCREMENTAL", "0")
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("cargo {} failed in {}", args.join(" "), dir.display())) }
}

/// One cold build: empty target directory, dependencies already downloaded.
fn cold_build(dir: &Path) -> Result<(f64, Vec<(String, f64)>), String> {
    let _ = std::fs::remove_dir_all(dir.join("target"));
    let started = Instant::now();
    cargo(dir, &["build", "--quiet", "--timings"])?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((seconds, slowest_units(&dir.join("target/cargo-timings/cargo-timing.html"), 5)))
}

/// The longest compilation units in cargo's timings report (its embedded `UNIT_DATA` JSON).
fn slowest_units(report: &Path, n: usize) -> Vec<(String, f64)> {
    let Ok(html) = std::fs::read_to_string(report) else { return Vec::new() };
    let Some(start) = html.find("const UNIT_DATA = ").map(|i| i + "const UNIT_DATA = ".len()) else {
        return Vec::new();
    };
    let Some(len) = html[start..].find("];\n").map(|i| i + 1) else { return Vec::new() };
    let Ok(serde_json::Value::Array(units)) = serde_json::from_str(&html[start..start + len]) else {
        return Vec::new();
    };
    let mut units: Vec<(String, f64)> = units
        .iter()
        .map(|u| {
            let target = u["target"].as_str().unwrap_or("").trim();
            let name = format!(
                "{} {}{}",
                u["name"].as_str().unwrap_or("?"),
                u["version"].as_str().unwrap_or(""),
                if target.is_empty() { String::new() } else { format!(" {target}") }
            );
            (name, u["duration"].as_f64().unwrap_or(0.0))
        })
        .collect();
    units.sort_by(|a, b| b.1.total_cmp(&a.1));
    units.truncate(n);
    units
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(args: impl Iterator<Item = String>, root: &Path) -> Result<(), String> {
    let options = parse(args, root)?;
    let work = root.join("target/build-cost");
    let (gpucloud_dir, anchor_dir) = (work.join("with-gpucloud"), work.join("with-runpod-sdk"));
    let (dependency, main) = gpucloud_consumer(&options);
    write_crate(&gpucloud_dir, "with-gpucloud", &dependency, main)?;
    let (dependency, main) = anchor_consumer();
    write_crate(&anchor_dir, "with-runpod-sdk", &dependency, main)?;
    for dir in [&gpucloud_dir, &anchor_dir] {
        let _ = std::fs::remove_file(dir.join("Cargo.lock"));
        cargo(dir, &["fetch", "--quiet"])?;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_units, mut their_units) = (Vec::new(), Vec::new());
    for run in 1..=options.runs.max(1) {
        let (anchor_seconds, units) = cold_build(&anchor_dir)?;
        their_units = units;
        let (gpucloud_seconds, units) = cold_build(&gpucloud_dir)?;
        our_units = units;
        println!(
            "run {run}: gpucloud {gpucloud_seconds:.1} s, {ANCHOR} {anchor_seconds:.1} s, ratio {:.2}",
            gpucloud_seconds / anchor_seconds
        );
        ours.push(gpucloud_seconds);
        theirs.push(anchor_seconds);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "\ncold debug build of a consumer calling Fleet::offers vs the same program on {ANCHOR} {ANCHOR_VERSION}:"
    );
    println!("  gpucloud {ours:.1} s   {ANCHOR} {theirs:.1} s   ratio {:.2} (goal <= 1.00)", ours / theirs);
    for (title, units) in [("gpucloud", &our_units), (ANCHOR, &their_units)] {
        println!("  longest units, {title}:");
        for (name, seconds) in units {
            println!("    {seconds:>6.1} s  {name}");
        }
    }
    Ok(())
}
