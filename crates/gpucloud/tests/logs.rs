//! Pod logs on both clouds, against the emulator: backfill, following, and RunPod streams that
//! drop and resume with `Last-Event-ID` without repeating or losing a line.

mod common;

use futures::StreamExt;
use gpucloud::{LogOptions, Provisioner};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::time::Duration;

/// The step numbers of the emulator's log lines (`[id] step N: ...`).
fn steps(lines: &[String]) -> Vec<u64> {
    lines.iter().map(|l| l.split("step ").nth(1).and_then(|r| r.split(':').next()).unwrap().parse().unwrap()).collect()
}

fn consecutive(steps: &[u64]) -> bool {
    steps.windows(2).all(|w| w[1] == w[0] + 1)
}

async fn pod_on(provisioner: &dyn Provisioner) -> gpucloud::PodId {
    let offers = provisioner.offers(&gpucloud::OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    provisioner.create(&gpucloud::LaunchSpec::new(offers[0].clone(), "logs")).await.unwrap().id
}

#[tokio::test]
async fn the_last_lines_then_the_end_on_both_clouds() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let provisioners: [Box<dyn Provisioner>; 2] =
        [Box::new(common::primeintellect(&emulator)), Box::new(common::runpod(&emulator))];
    for provisioner in provisioners {
        let id = pod_on(provisioner.as_ref()).await;
        tokio::time::sleep(Duration::from_millis(1200)).await; // about 12 lines written
        let lines: Vec<String> =
            provisioner.logs(&id, LogOptions { tail: 5, follow: false }).map(|l| l.unwrap()).collect().await;
        assert_eq!(lines.len(), 5, "{}: {lines:?}", id);
        assert!(consecutive(&steps(&lines)) && steps(&lines)[0] >= 5, "{lines:?}");
    }
}

#[tokio::test]
async fn following_a_runpod_stream_that_keeps_dropping_loses_and_repeats_nothing() {
    let faults =
        FaultConfig { rate: 1.0, kinds: vec![FaultKind::LogStreamDrop], log_drop_after: 4, ..FaultConfig::default() };
    let emulator = common::emulator(Duration::ZERO, faults).await;
    let runpod = common::runpod(&emulator);
    let id = pod_on(&runpod).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines: Vec<String> = tokio::time::timeout(
        Duration::from_secs(20),
        runpod.logs(&id, LogOptions { tail: 3, follow: true }).take(30).map(|l| l.unwrap()).collect(),
    )
    .await
    .expect("30 lines arrive");
    let steps = steps(&lines);
    assert!(consecutive(&steps), "no line repeated or lost across the drops: {steps:?}");
    assert!(emulator.stats().faults["log-stream-drop"] >= 6, "the stream dropped every 4 events");
}

#[tokio::test]
async fn following_primeintellect_polls_for_new_lines_only() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = common::primeintellect(&emulator);
    let id = pod_on(&pi).await;
    let lines: Vec<String> = tokio::time::timeout(
        Duration::from_secs(20),
        pi.logs(&id, LogOptions { tail: 2, follow: true }).take(20).map(|l| l.unwrap()).collect(),
    )
    .await
    .expect("20 lines arrive");
    assert!(consecutive(&steps(&lines)), "{lines:?}");
}

#[tokio::test]
async fn a_tail_past_the_limit_is_refused() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let runpod = common::runpod(&emulator);
    let id = pod_on(&runpod).await;
    let first = runpod.logs(&id, LogOptions { tail: 6000, follow: false }).next().await.unwrap();
    assert!(matches!(first, Err(gpucloud::Error::InvalidInput { field: "tail", .. })), "{first:?}");
}
