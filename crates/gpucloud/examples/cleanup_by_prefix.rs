//! List pods on every configured cloud and terminate those whose name starts with a prefix.
//!
//! ```sh
//! RUNPOD_API_KEY=... cargo run -p gpucloud --example cleanup_by_prefix -- ci-run-
//! cargo run -p gpucloud --example cleanup_by_prefix -- ci-run- --dry-run
//! ```

use gpucloud::{Fleet, PodStatus};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let prefix = args.iter().find(|a| !a.starts_with("--")).ok_or("usage: cleanup_by_prefix PREFIX [--dry-run]")?;
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let fleet = Fleet::from_env()?;

    // Listing streams every page; a provider that fails is reported, not silently skipped.
    let (pods, errors) = fleet.list().await;
    for (provider, error) in &errors {
        eprintln!("could not list {provider}: {error}");
    }
    for pod in pods.iter().filter(|p| p.name.starts_with(prefix.as_str()) && p.status != PodStatus::Terminated) {
        if dry_run {
            println!("would terminate {} ({})", pod.id, pod.name);
        } else {
            fleet.terminate(&pod.id).await?;
            println!("terminated {} ({})", pod.id, pod.name);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err("some providers could not be listed".into()) }
}
