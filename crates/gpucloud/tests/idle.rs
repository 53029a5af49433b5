//! Idle pods reaped after a whole window under the threshold, busy ones and others' left alone.

mod common;

use gpucloud::upkeep::reap::ReapReason;
use gpucloud::{Fleet, LaunchRequest, ReapPolicy};
use gpucloud_emulator::{Api, FaultConfig};
use std::time::Duration;

/// The idle window. The test sleeps longer than it between sweeps, so a sweep after the sleep
/// always sees the whole window (sleeps never end early); no reading depends on timing.
const WINDOW: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_runpod_pod_is_reaped_after_the_window_and_a_busy_one_is_not() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let runpod_only = Fleet::new().with(common::runpod(&emulator));
    let pi_only = Fleet::new().with(common::primeintellect(&emulator));
    let idle = runpod_only.launch(&LaunchRequest::new("H100_80GB", 1, "idle")).await.unwrap();
    let busy = runpod_only.launch(&LaunchRequest::new("H100_80GB", 1, "busy")).await.unwrap();
    let unmeasured = pi_only.launch(&LaunchRequest::new("H100_80GB", 1, "pi")).await.unwrap();
    // A pod gpucloud did not launch: idle too, but no candidate.
    emulator.seed_pods(Api::RunPod, 1);
    assert!(emulator.set_gpu_utilization(busy.id.id(), 85));
    // Past the grace after start (idle::DEFAULT_IDLE_GRACE): started an hour ago.
    for pod in [&idle, &busy] {
        emulator.backdate(Api::RunPod, pod.id.id(), Duration::from_secs(3600));
    }
    emulator.backdate(Api::PrimeIntellect, unmeasured.id.id(), Duration::from_secs(3600));

    let fleet = common::fleet(&emulator);
    let policy = ReapPolicy::expired_leases().with_idle(10, WINDOW);
    // The first sweep only starts watching.
    let first = fleet.reap(&policy).await.unwrap();
    assert!(first.reaped.is_empty(), "{:?}", first.reaped);
    assert_eq!(first.unmeasured, std::slice::from_ref(&unmeasured.id), "PrimeIntellect reports no utilization");
    tokio::time::sleep(WINDOW + Duration::from_millis(400)).await;
    // The busy pod goes idle now: its window starts at this sweep, not before.
    assert!(emulator.set_gpu_utilization(busy.id.id(), 3));
    let second = fleet.reap(&policy.clone()).await.unwrap();
    let reaped: Vec<_> = second.reaped.iter().map(|r| r.id.clone()).collect();
    assert_eq!(reaped, std::slice::from_ref(&idle.id), "only the pod idle for the whole window");
    assert!(matches!(second.reaped[0].reason, ReapReason::Idle { below_percent: 10, .. }));
    assert!(second.is_clean(), "{:?}", second.failures);
    let live: Vec<String> = emulator.live_pods().iter().map(|p| p.name.clone()).collect();
    assert!(!live.iter().any(|n| n.starts_with("idle")), "{live:?}");
    assert!(live.iter().any(|n| n.starts_with("seeded")), "pods gpucloud did not launch are never candidates");
    tokio::time::sleep(WINDOW + Duration::from_millis(400)).await;
    let third = fleet.reap(&policy.clone().dry_run()).await.unwrap();
    assert_eq!(third.reaped.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), std::slice::from_ref(&busy.id));
    assert!(emulator.live_pods().iter().any(|p| p.id == busy.id.id()), "a dry run touches nothing");

    let bad = ReapPolicy::expired_leases().with_idle(0, WINDOW);
    assert!(matches!(fleet.reap(&bad).await, Err(gpucloud::Error::InvalidInput { field: "idle_below_percent", .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_is_not_judged_in_its_grace_after_start_nor_when_launched_exempt() {
    let test = "a_pod_is_not_judged_in_its_grace_after_start_nor_when_launched_exempt";
    common::bounded(test, Duration::from_secs(60), async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = common::fleet(&emulator).only(&[gpucloud::Provider::RunPod]);
        // Both read 0%: a job installing its dependencies, and a job `gpucloud run` launched.
        let fresh = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "setup")).await.unwrap();
        let job = LaunchRequest { idle_exempt: true, ..LaunchRequest::new("H100_80GB", 1, "job") };
        let job = fleet.launch(&job).await.unwrap();
        assert!(job.idle_exempt() && !fresh.idle_exempt(), "{} {}", job.name, fresh.name);
        let policy = ReapPolicy::expired_leases().with_idle(10, WINDOW);
        for _ in 0..2 {
            let report = fleet.reap(&policy).await.unwrap();
            assert!(report.reaped.is_empty(), "in its grace, or exempt: {:?}", report.reaped);
            tokio::time::sleep(WINDOW + Duration::from_millis(400)).await;
        }
        // An hour after their start both are past the grace: only the exempt one is left alone.
        for pod in [&fresh, &job] {
            emulator.backdate(Api::RunPod, pod.id.id(), Duration::from_secs(3600));
        }
        let first = fleet.reap(&policy).await.unwrap();
        assert!(first.reaped.is_empty(), "the first sweep past the grace starts watching");
        tokio::time::sleep(WINDOW + Duration::from_millis(400)).await;
        let second = fleet.reap(&policy).await.unwrap();
        assert_eq!(second.reaped.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![fresh.id.clone()]);
        assert!(emulator.live_pods().iter().any(|p| p.id == job.id.id()), "the job's pod runs on");
        fleet.terminate(&job.id).await.unwrap();
    })
    .await;
}
