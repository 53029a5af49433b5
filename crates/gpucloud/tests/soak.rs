//! Fault soak: launch -> wait -> terminate cycles through `Fleet::launch` against the emulator
//! with every fault kind mixed in. Small by default (CI); `cargo xtask soak` runs the full size.
//!
//! Every tenth cycle is a crash: the launch has a short lease and is abandoned at a random moment
//! with its future leaked, so no cleanup runs (a killed process). Whatever it created stays; after
//! the leases expire the reaper must remove all of it.
//!
//! Settings from the environment: `GPUCLOUD_SOAK_CYCLES` (default 100), `GPUCLOUD_SOAK_FAULT_RATE`
//! (default 0.2), `GPUCLOUD_SOAK_SEED` (default 7), `GPUCLOUD_SOAK_REPORT` (a file for the JSON report).

use gpucloud::{
    Error, Fleet, LaunchRequest, PrimeIntellect, ReapPolicy, ReconcilePolicy, RetryPolicy, RunPod, SecretString,
};
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
    let mut crashes = 0u32;
    let lease = Duration::from_secs(2);
    for cycle in 0..cycles {
        let gpu = if cycle % 2 == 0 { "H100_80GB" } else { "A100_80GB" };
        if cycle % 10 == 5 {
            crashes += 1;
            let mut request = LaunchRequest::new(gpu, 1, format!("crash{cycle}"));
            request.ttl = Some(lease);
            crash_during(&fleet, &request, Duration::from_millis(u64::from(cycle * 37 % 250))).await;
            continue;
        }
        let mut request = LaunchRequest::new(gpu, 1, format!("soak{cycle}"));
        request.ready_timeout = Duration::from_secs(10);
        let ours = |p: &&gpucloud_emulator::EmulatedPod| p.name.starts_with("soak");
        match fleet.launch(&request).await {
            Ok(pod) => {
                successes += 1;
                // Exactly one machine per launch: the one handed back.
                duplicates += emulator.live_pods().iter().filter(ours).filter(|p| p.id != pod.id.id()).count();
                fleet.terminate(&pod.id).await.unwrap_or_else(|e| panic!("cycle {cycle}: terminating {}: {e}", pod.id));
            }
            Err(error) => *failures.entry(kind(&error)).or_default() += 1,
        }
        let live: Vec<_> = emulator.live_pods().into_iter().filter(|p| ours(&p)).collect();
        if !live.is_empty() {
            leaked_during += live.len();
            eprintln!("cycle {cycle}: pods left after the cycle: {live:?}");
        }
    }
    // Background cleanups (none are expected) get a moment before the final count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The crashed launches left their pods; once the leases are over, the reaper removes them,
    // through the same faults. A scheduled reaper runs again; so does this one, a few times.
    let abandoned = emulator.live_pods().len();
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let (mut reaper_runs, mut reaped) = (0u32, 0usize);
    while reaper_runs < 5 && (reaper_runs == 0 || !emulator.live_pods().is_empty()) {
        reaper_runs += 1;
        let report = fleet.reap(&ReapPolicy::expired_leases()).await.unwrap();
        reaped += report.reaped.len();
    }
    let stats = emulator.stats();
    let (pi_stats, rp_stats) = (pi.stats(), rp.stats());
    let sum = |f: fn(&gpucloud::transport::retry::RetryStats) -> &std::sync::atomic::AtomicU64| {
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
        "crashed_launches": crashes,
        "pods_abandoned_by_crashes": abandoned,
        "reaper_runs": reaper_runs,
        "pods_reaped": reaped,
        "pods_left_at_end": stats.live_pods,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    println!("{text}");
    // A failure names what replays it: the emulator's seed drives faults and ids; the retry
    // delays replay with a jitter seed of their own.
    let jitter = match std::env::var("GPUCLOUD_JITTER_SEED") {
        Ok(jitter) => format!(" GPUCLOUD_JITTER_SEED={jitter}"),
        Err(_) => String::new(),
    };
    println!(
        "replay: GPUCLOUD_SOAK_SEED={seed} GPUCLOUD_SOAK_CYCLES={cycles} GPUCLOUD_SOAK_FAULT_RATE={rate}{jitter} cargo test -p gpucloud --test soak{}",
        if jitter.is_empty() { " (retry delays came from entropy; GPUCLOUD_JITTER_SEED fixes them)" } else { "" }
    );
    if let Ok(path) = std::env::var("GPUCLOUD_SOAK_REPORT") {
        std::fs::write(path, &text).unwrap();
    }
    assert_eq!(duplicates, 0, "{text}");
    assert_eq!(leaked_during, 0, "{text}");
    assert_eq!(stats.live_pods, 0, "{text}");
    assert!(abandoned > 0, "some crashed launches left pods for the reaper: {text}");
    assert!(successes > cycles / 2, "most launches succeed despite faults: {text}");
    if rate > 0.0 {
        assert!(stats.faults.values().sum::<u64>() > 0, "faults were injected: {text}");
    }
}

/// A launch abandoned after `after` as if its process were killed: the future is leaked, so
/// neither its cleanup nor its drop guard runs. A pod it managed to hand back is abandoned too.
async fn crash_during(fleet: &Fleet, request: &LaunchRequest, after: Duration) {
    let mut launch = Box::pin(fleet.launch(request));
    tokio::select! {
        _ = &mut launch => {}
        () = tokio::time::sleep(after) => {}
    }
    std::mem::forget(launch);
}
