//! Many launches, one quota: against the emulator enforcing RunPod's documented windows (ten
//! times shorter, so the test takes seconds), one client paces itself by the `RateLimit` headers
//! and never receives a 429.

mod common;

use gpucloud::{Fleet, LaunchRequest};
use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig, Quota};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_launches_through_one_client_stay_inside_the_quota() {
    let quota = Quota::documented().compressed(10); // 60 requests per 6 s, per key
    let emulator = common::with_account_key(
        Emulator::start(EmulatorConfig {
            ready_delay: Duration::ZERO,
            faults: FaultConfig::none(),
            quota: Some(quota),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap(),
    );
    let fleet = Fleet::new()
        .with(common::runpod(&emulator).with_poll_interval(Duration::from_millis(500)))
        .with_cleanup_timeout(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let launches = (0..50).map(|i| {
        let fleet = fleet.clone();
        async move {
            let request = LaunchRequest {
                ready_timeout: Duration::from_secs(120),
                ..LaunchRequest::new("H100_80GB", 1, format!("q{i}"))
            };
            fleet.launch(&request).await
        }
    });
    let pods = futures::future::join_all(launches).await;
    let stats = emulator.quota_stats();
    let launched = pods.iter().filter(|p| p.is_ok()).count();
    println!("50 launches through one client: {launched} ready, {stats:?}, after {:?}", started.elapsed());
    assert!(pods.iter().all(Result::is_ok), "{:?}", pods.iter().filter_map(|p| p.as_ref().err()).collect::<Vec<_>>());
    assert_eq!(stats.refused.get("runpod").copied().unwrap_or(0), 0, "no 429: {stats:?}");
    assert!(stats.peak["runpod minute"] <= 60, "{stats:?}");
    assert!(stats.admitted["runpod"] > 60, "the work needed more than one window: {stats:?}");
    assert_eq!(emulator.live_pods().len(), 50);
}
