//! Fault soak: launch -> wait -> terminate cycles through `Fleet::launch` against the emulator
//! with every fault kind mixed in. Small by default (CI); `cargo xtask soak` runs the full size.
//!
//! Settings from the environment: `GPUCLOUD_SOAK_CYCLES` (default 100), `GPUCLOUD_SOAK_FAULT_RATE`
//! (default 0.2), `GPUCLOUD_SOAK_SEED` (default 7), `GPUCLOUD_SOAK_REPORT` (a file for the JSON report).

use gpucloud::{Error, Fleet, LaunchRequest, PrimeIntellect, ReconcilePolicy, RetryPolicy, RunPod, SecretString};
use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn kind(error: &Error) -> &'static str {
    match error {
        Error::NoCapacity { .. } => "no_capacity",
        Error::Timeout { .. } => "timeout",
        Error::PodFailed { .. } => "pod_failed",
        Error::CreateUnconfirmed { .. } => "create_unconfirmed",
        Error::Api { .. } => "api",
        Error::Transport { .. } => "transport",
        Error::Decode { .. } => "decode",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_launch_cycles_under_faults_never_duplicate_or_leak() {
    let cycles: u32 = env("GPUCLOUD_SOAK_CYCLES", 100);
    let rate: f64 = env("GPUCLOUD_SOAK_FAULT_RATE", 0.2);
    let seed: u64 = env("GPUCLOUD_SOAK_SEED", 7);
    let faults = FaultConfig {
        rate,
        retry_after: Duration::from_millis(20),
        list_lag: Duration::from_millis(150),
        ..FaultConfig::default()
    };
    let emulator = Emulator::start(EmulatorConfig {
        seed,
        ready_delay: Duration::from_millis(30),
        faults,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let key = SecretString::from(emulator.api_key().to_string());
    let reconcile = ReconcilePolicy { attempts: 4, delay: Duration::from_millis(100) };
    let pi = PrimeIntellect::new(key.clone(), Some(&emulator.base_url()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
        .with_poll_interval(Duration::from_millis(20))
        .with_reconcile_policy(reconcile);
    let rp = RunPod::new(key, Some(&emulator.base_url()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
        .with_poll_interval(Duration::from_millis(20))
        .with_reconcile_policy(reconcile);
    let fleet = Fleet::new()
        .with(pi.clone())
        .with(rp.clone())
        .with_cleanup_timeout(Duration::from_secs(20))
        .with_sweep_policy(reconcile);

    let started = Instant::now();
    let (mut successes, mut duplicates, mut leaked_during) = (0u32, 0usize, 0usize);
    let mut failures: BTreeMap<&str, u32> = BTreeMap::new();
    for cycle in 0..cycles {
        let gpu = if cycle % 2 == 0 { "H100_80GB" } else { "A100_80GB" };
        let mut request = LaunchRequest::new(gpu, 1, format!("soak{cycle}"));
        request.ready_timeout = Duration::from_secs(10);
        match fleet.launch(&request).await {
            Ok(pod) => {
                successes += 1;
                // Exactly one machine per launch: the one handed back.
                duplicates += emulator.live_pods().iter().filter(|p| p.id != pod.id.id()).count();
                fleet.terminate(&pod.id).await.unwrap_or_else(|e| panic!("cycle {cycle}: terminating {}: {e}", pod.id));
            }
            Err(error) => *failures.entry(kind(&error)).or_default() += 1,
        }
        let live = emulator.live_pods();
        if !live.is_empty() {
            leaked_during += live.len();
            eprintln!("cycle {cycle}: pods left after the cycle: {live:?}");
        }
    }
    // Background cleanups (none are expected) get a moment before the final count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = emulator.stats();
    let (pi_stats, rp_stats) = (pi.stats(), rp.stats());
    let sum = |f: fn(&gpucloud::retry::RetryStats) -> &std::sync::atomic::AtomicU64| {
        f(pi_stats).load(Ordering::Relaxed) + f(rp_stats).load(Ordering::Relaxed)
    };
    let report = serde_json::json!({
        "cycles": cycles,
        "fault_rate": rate,
        "seed": seed,
        "seconds": started.elapsed().as_secs_f64(),
        "requests": stats.requests,
        "faults_injected": stats.faults,
        "retries": sum(|s| &s.retries),
        "reconciliations": sum(|s| &s.reconciled),
        "unconfirmed_creates": sum(|s| &s.unconfirmed),
        "creates": stats.creates,
        "successes": successes,
        "typed_failures": failures,
        "duplicate_pods": duplicates,
        "pods_left_after_a_cycle": leaked_during,
        "pods_left_at_end": stats.live_pods,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    println!("{text}");
    if let Ok(path) = std::env::var("GPUCLOUD_SOAK_REPORT") {
        std::fs::write(path, &text).unwrap();
    }
    assert_eq!(duplicates, 0, "{text}");
    assert_eq!(leaked_during, 0, "{text}");
    assert_eq!(stats.live_pods, 0, "{text}");
    assert!(successes > cycles / 2, "most launches succeed despite faults: {text}");
    if rate > 0.0 {
        assert!(stats.faults.values().sum::<u64>() > 0, "faults were injected: {text}");
    }
}
