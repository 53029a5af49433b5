//! PrimeIntellect spot with recovery, against the emulator's interruptions
//! (`POST /_emulator/pods/{id}/interrupt`): an interrupted spot pod is seen by the first provider
//! read after it happened and reported as an interruption, never as the command's failure; the
//! job is relaunched (its checkpoint carried across), falls back to on-demand after K
//! interruptions, reports what the interrupted attempts cost, and with no recovery left ends
//! with `Error::Interrupted`. The emulator's preemption fault (spot pods taken back after a
//! lifetime) is recovered the same way. A detached spot job's `wait_job` reports the
//! interruption too, and `wait_job_recovering` relaunches one interrupted once until it finishes.
//!
//! Prints the time from interruption to detection and to the relaunched command's start
//! (BENCHMARKS.md).

mod common;

use gpucloud::jobs::{Checkpoint, Job, JobEvent, Recovery};
use gpucloud::remote::{OutputLine, SessionOptions};
use gpucloud::{Error, Fleet, LaunchRequest, PodId};
use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How often the job asks the provider whether its spot pod still runs.
const WATCH: Duration = Duration::from_millis(250);

/// What the job's progress says, for the test to drive interruptions by.
#[derive(Debug)]
enum Seen {
    Started(PodId),
    Pulled(PodId),
    Interrupted(PodId),
}

fn reporter(tx: UnboundedSender<(Seen, Instant)>) -> impl FnMut(JobEvent<'_>) + Send {
    move |event| {
        let seen = match event {
            JobEvent::CommandStarting(pod) => Seen::Started(pod.id.clone()),
            JobEvent::CheckpointPulled(pod) => Seen::Pulled(pod.id.clone()),
            JobEvent::Interrupted(interruption) => Seen::Interrupted(interruption.pod.clone()),
            _ => return,
        };
        let _ = tx.send((seen, Instant::now()));
    }
}

/// The next event `wanted` accepts, with its time.
async fn next<T>(rx: &mut UnboundedReceiver<(Seen, Instant)>, wanted: impl Fn(&Seen) -> Option<T>) -> (T, Instant) {
    loop {
        let Some((seen, at)) = rx.recv().await else {
            // The job ended first: its outcome says why; the driver waits no more.
            return std::future::pending().await;
        };
        if let Some(found) = wanted(&seen) {
            return (found, at);
        }
    }
}

/// Runs the job and its driver together; a job that ends before its driver is done fails the
/// test with the job's result.
async fn drive<R: std::fmt::Debug, D>(
    run: impl std::future::Future<Output = R>,
    driver: impl std::future::Future<Output = D>,
) -> (R, D) {
    tokio::pin!(run, driver);
    tokio::select! {
        result = &mut run => match tokio::time::timeout(Duration::from_secs(5), &mut driver).await {
            Ok(driven) => (result, driven),
            Err(_) => panic!("the job ended before the test could drive it: {result:?}"),
        },
        driven = &mut driver => (run.await, driven),
    }
}

/// The state dir both tests share: `GPUCLOUD_STATE_DIR` is the process's
/// ([`common::runtime_with_state_dir`]).
fn shared_state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gpucloud-test-{}-spot-recovery-state", std::process::id()))
}

fn pod_reads(emulator: &Emulator) -> u64 {
    emulator.stats().requests_by_route.get("GET /api/v1/pods/{id}").copied().unwrap_or(0)
}

/// Interrupts `id` the way a standalone emulator's user would: over HTTP.
async fn interrupt(emulator: &Emulator, id: &PodId, how: &str) {
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let status = http
        .post(format!("{}/_emulator/pods/{}/interrupt", emulator.base_url(), id.id()))
        .json(&serde_json::json!({"how": how}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204, "interrupting {id}");
}

/// Waits (bounded) until the emulator has no live pod.
async fn no_live_pods(emulator: &Emulator) {
    while !emulator.live_pods().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn spot_jobs_are_interrupted_detected_relaunched_and_carry_their_checkpoint() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("spot-recovery");
    let runtime = common::runtime_with_state_dir(&shared_state_dir());
    runtime.block_on(common::bounded(
        "spot_jobs_are_interrupted_detected_relaunched_and_carry_their_checkpoint",
        Duration::from_secs(150),
        async {
            let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
            let fleet = Fleet::new().with(common::primeintellect(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let job = |script: &str| {
                let mut launch = LaunchRequest {
                    ssh_public_key: Some(public.clone()),
                    ..LaunchRequest::new("H100_80GB", 1, "spot-job")
                };
                // Spot allowed: the cheapest H100 is the emulator's spot offer (FIN-01, $1.05/h).
                launch.query.spot = None;
                let mut job = Job::new(launch, ["sh", "-c", script]);
                job.session = options.clone();
                job.watch_interval = Some(WATCH);
                job
            };

            // 1. Interrupted twice (once TERMINATED, once gone), finished on the third pod from its
            // checkpoint. The command counts to 100, a tenth of a second a step, keeping its count
            // in ckpt/step, and starts from the count it finds there.
            let mut counting = job(
                "s=$(cat ckpt/step 2>/dev/null || echo 0); echo \"resumed at $s\"; \
                 while [ \"$s\" -lt 100 ]; do s=$((s+1)); mkdir -p ckpt; echo $s > ckpt/step.new; \
                 mv ckpt/step.new ckpt/step; sleep 0.1; done; echo \"done at $s\"",
            );
            counting.checkpoint = Some(Checkpoint { remote: "ckpt".into(), every: Duration::from_millis(300) });
            counting.recovery = Recovery { max_interruptions: 2, on_demand_after: None };
            let (tx, mut rx) = unbounded_channel();
            let driver = async {
                let mut figures = Vec::new();
                let (mut pod, _) =
                    next(&mut rx, |s| if let Seen::Started(p) = s { Some(p.clone()) } else { None }).await;
                for how in ["terminated", "gone"] {
                    next(&mut rx, |s| matches!(s, Seen::Pulled(p) if *p == pod).then_some(())).await;
                    let reads = pod_reads(&emulator);
                    let at = Instant::now();
                    interrupt(&emulator, &pod, how).await;
                    let (_, detected) =
                        next(&mut rx, |s| matches!(s, Seen::Interrupted(p) if *p == pod).then_some(())).await;
                    let reads = pod_reads(&emulator) - reads;
                    let (relaunched, started) =
                        next(&mut rx, |s| if let Seen::Started(p) = s { Some(p.clone()) } else { None }).await;
                    assert_ne!(relaunched, pod, "a new pod");
                    figures.push((how, detected - at, started - at, reads));
                    pod = relaunched;
                    // Detected by the first provider read after the interruption: the watcher's, or
                    // the one that follows the lost connection (both at most), plus at most one
                    // poll that was already on its way when the interruption came.
                    assert!(reads <= 3, "{how}: {reads} pod reads before the interruption was seen");
                    assert!(detected - at < WATCH + Duration::from_secs(2), "{how}: seen after {:?}", detected - at);
                }
                figures
            };
            let (outcome, figures) = drive(fleet.run(&counting, reporter(tx), std::future::pending()), driver).await;
            let outcome = outcome.unwrap();
            for (how, detected, started, reads) in &figures {
                eprintln!(
                    "interruption ({how}): detected after {:.3} s ({reads} pod reads, poll {:.3} s); relaunched command started after {:.3} s",
                    detected.as_secs_f64(),
                    WATCH.as_secs_f64(),
                    started.as_secs_f64()
                );
            }
            assert_eq!(outcome.exit_code, 0, "{:?}", outcome.tail);
            assert_eq!(outcome.interruptions.len(), 2);
            let pods: std::collections::BTreeSet<String> = outcome
                .interruptions
                .iter()
                .map(|i| i.pod.to_string())
                .chain([outcome.pod.id.to_string()])
                .collect();
            assert_eq!(pods.len(), 3, "finished on the third pod");
            assert!(outcome.pod.is_spot(), "spot every time (no on-demand-after)");
            let text: String = outcome
                .tail
                .iter()
                .map(|l| match l {
                    OutputLine::Stdout(t) | OutputLine::Stderr(t) => format!("{t}\n"),
                })
                .collect();
            let resumed: u32 = text
                .lines()
                .find_map(|l| l.strip_prefix("resumed at "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no resume line: {text}"));
            assert!(resumed > 0, "the third pod started from the carried checkpoint: {text}");
            assert!(text.contains("done at 100"), "{text}");
            let restored = outcome.restored_checkpoint.as_ref().expect("a restored checkpoint");
            assert_eq!(restored.pod, outcome.pod.id);
            assert!(restored.age < Duration::from_secs(30), "{restored:?}");
            for interruption in &outcome.interruptions {
                assert!(interruption.spot && interruption.price_per_hour == Some(1.05), "{interruption:?}");
                assert!(interruption.cost.is_some_and(|c| c > 0.0), "{interruption:?}");
                assert_eq!(interruption.place.data_center.as_deref(), Some("FIN-01"));
            }
            let cost = outcome.interrupted_cost().unwrap();
            eprintln!("the interrupted attempts cost {cost:.6} (estimated); restored checkpoint {restored:?}");
            no_live_pods(&emulator).await;

            // 2. Falls back to on-demand after K = 1 interruption.
            let mut fallback = job("i=0; while [ $i -lt 40 ]; do sleep 0.1; i=$((i+1)); done; echo finished");
            fallback.recovery = Recovery { max_interruptions: 3, on_demand_after: Some(1) };
            let (tx, mut rx) = unbounded_channel();
            let driver = async {
                let (pod, _) = next(&mut rx, |s| if let Seen::Started(p) = s { Some(p.clone()) } else { None }).await;
                interrupt(&emulator, &pod, "stopped").await;
                pod
            };
            let (outcome, interrupted) =
                drive(fleet.run(&fallback, reporter(tx), std::future::pending()), driver).await;
            let outcome = outcome.unwrap();
            assert_eq!(outcome.exit_code, 0);
            assert_eq!(outcome.interruptions.len(), 1);
            assert_eq!(outcome.interruptions[0].pod, interrupted);
            assert!(outcome.interruptions[0].spot && !outcome.pod.is_spot(), "on-demand after one interruption");
            assert!(outcome.interrupted_cost().is_some_and(|c| c > 0.0));
            no_live_pods(&emulator).await;

            // 3. No recovery: the interruption is the error (typed), not the command's failure.
            let plain = job("sleep 30");
            let (tx, mut rx) = unbounded_channel();
            let driver = async {
                let (pod, _) = next(&mut rx, |s| if let Seen::Started(p) = s { Some(p.clone()) } else { None }).await;
                interrupt(&emulator, &pod, "terminated").await;
            };
            let (result, ()) = drive(fleet.run(&plain, reporter(tx), std::future::pending()), driver).await;
            match result {
                Err(Error::Interrupted { interruptions }) => assert_eq!(interruptions.len(), 1),
                other => panic!("expected Interrupted, got {other:?}"),
            }
            no_live_pods(&emulator).await;

            // 4. The emulator's preemption fault: every spot pod is taken back 3 s after it runs, unasked.
            // The job is recovered on spot, then on-demand after K = 2 (a pod taken back while
            // it was still being launched is the launch's own failover, so 1 or 2 interruptions).
            emulator.set_spot_lifetime(Some(Duration::from_secs(3)));
            let mut preempted = job("i=0; while [ $i -lt 60 ]; do sleep 0.1; i=$((i+1)); done; echo finished");
            preempted.recovery = Recovery { max_interruptions: 3, on_demand_after: Some(2) };
            let outcome = fleet.run(&preempted, |_| {}, std::future::pending()).await.unwrap();
            emulator.set_spot_lifetime(None);
            assert_eq!(outcome.exit_code, 0);
            assert!((1..=2).contains(&outcome.interruptions.len()), "{:?}", outcome.interruptions);
            assert!(!outcome.pod.is_spot(), "finished on on-demand capacity");
            assert!(outcome.interruptions.iter().all(|i| i.spot && i.cost.is_some()));
            eprintln!(
                "preemption fault: {} interruption(s), then on-demand; the interrupted attempts cost {:.6}",
                outcome.interruptions.len(),
                outcome.interrupted_cost().unwrap_or_default()
            );
            no_live_pods(&emulator).await;

            // 5. A detached spot job: `wait_job` reports the interruption.
            let mut detached = job("sleep 30");
            detached.launch.ttl = Some(Duration::from_secs(600));
            let submitted = fleet.submit(&detached, |_| {}, std::future::pending()).await.unwrap();
            assert!(submitted.pod.is_spot());
            let waiting = fleet.wait_job(&submitted.id, &options, WATCH, Duration::from_secs(60));
            let reads = pod_reads(&emulator);
            let interrupting = async {
                // After the waiter's first read came back (its second has been asked for): it has
                // seen the pod running, as a waiter that was waiting before the interruption has.
                while pod_reads(&emulator) < reads + 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                interrupt(&emulator, &submitted.id, "gone").await;
                Instant::now()
            };
            let (waited, at) = tokio::join!(waiting, interrupting);
            match waited {
                Err(Error::Interrupted { interruptions }) => assert_eq!(interruptions[0].pod, submitted.id),
                other => panic!("expected Interrupted, got {other:?}"),
            }
            eprintln!("jobs wait saw the interruption after {:.3} s", at.elapsed().as_secs_f64());
            no_live_pods(&emulator).await;
            let _ = std::fs::remove_dir_all(&scratch);
        },
    ));
}

#[test]
fn a_detached_spot_job_interrupted_once_is_relaunched_and_finishes() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("spot-detached-recovery");
    let runtime = common::runtime_with_state_dir(&shared_state_dir());
    runtime.block_on(common::bounded(
        "a_detached_spot_job_interrupted_once_is_relaunched_and_finishes",
        Duration::from_secs(120),
        async {
            // A seed of its own: the other test's emulator (seed 1) makes the same pod ids,
            // and both share the process's state dir, where ids name the host-key files.
            let config = EmulatorConfig {
                ready_delay: Duration::ZERO,
                seed: 2,
                faults: FaultConfig::default(),
                ..EmulatorConfig::default()
            };
            let emulator = Emulator::start(config).await.unwrap();
            let fleet =
                Fleet::new().with(common::primeintellect(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let mut launch = LaunchRequest {
                ssh_public_key: Some(public.clone()),
                ..LaunchRequest::new("H100_80GB", 1, "spot-job")
            };
            launch.query.spot = None;
            launch.ttl = Some(Duration::from_secs(600));
            let mut job = Job::new(launch, ["sh", "-c", "sleep 2; exit 3"]);
            job.session = options.clone();
            let submitted = fleet.submit(&job, |_| {}, std::future::pending()).await.unwrap();
            assert!(submitted.pod.is_spot());
            let recovery = Recovery { max_interruptions: 1, on_demand_after: None };
            let mut relaunches = Vec::new();
            let reads = pod_reads(&emulator);
            let waiting =
                fleet.wait_job_recovering(&job, &submitted.id, recovery, WATCH, Duration::from_secs(90), |next| {
                    relaunches.push(next.id.clone())
                });
            let interrupting = async {
                // Once the waiter has seen the pod running.
                while pod_reads(&emulator) < reads + 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                interrupt(&emulator, &submitted.id, "terminated").await;
            };
            let (waited, ()) = tokio::join!(waiting, interrupting);
            let recovered = waited.expect("the relaunched job finishes");
            assert_eq!(recovered.code, 3, "the exit status is the command's");
            assert_eq!(recovered.interruptions.len(), 1);
            assert_eq!(recovered.interruptions[0].pod, submitted.id);
            assert_eq!(relaunches, vec![recovered.id.clone()]);
            assert_ne!(recovered.id, submitted.id);
            fleet.terminate(&recovered.id).await.unwrap();
            no_live_pods(&emulator).await;
            let _ = std::fs::remove_dir_all(&scratch);
        },
    ));
}
