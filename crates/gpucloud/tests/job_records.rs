//! Recorded detached jobs (`gpucloud::jobs::record`), against the emulator's interruptions: a
//! spot job submitted with `submit_recorded` is recovered by whichever process sees its
//! interruption, a waiter (`wait_recorded`) and a reaper's sweep (`recover_recorded`) racing for
//! it relaunch it once; a job whose recovery is used up, whose deadline passed, or that was ended
//! on purpose is never relaunched; a sweep closes the record of a job whose command exited; a
//! checkpoint directory pulled by the sweeps is pushed to the relaunched pod.
//!
//! One test function: the state directory is set for the whole binary before its runtime starts.

mod common;

use gpucloud::jobs::record::RecordEnd;
use gpucloud::jobs::{Checkpoint, Job, JobRecords, RecordSweep, Recovery};
use gpucloud::remote::SessionOptions;
use gpucloud::upkeep::reap::BeforeTerminate;
use gpucloud::{Error, Fleet, LaunchRequest, ReapPolicy};
use gpucloud_emulator::{Api, Emulator, FaultConfig, Interruption};
use std::path::Path;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(250);

fn creates(emulator: &Emulator) -> u64 {
    emulator.stats().requests_by_route.get("POST /api/v1/pods/").copied().unwrap_or(0)
}

fn spot_job(scratch: &Path, public: &str, command: &str, recover: u32) -> Job {
    let mut launch =
        LaunchRequest { ssh_public_key: Some(public.to_string()), ..LaunchRequest::new("H100_80GB", 1, "recorded") };
    launch.query.spot = Some(true);
    launch.ttl = Some(Duration::from_secs(600));
    let mut job = Job::new(launch, ["sh", "-c", command]);
    job.session = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
    job.recovery = Recovery { max_interruptions: recover, on_demand_after: None };
    job
}

fn relaunched(swept: &[RecordSweep]) -> usize {
    swept.iter().filter(|s| matches!(s, RecordSweep::Relaunched { .. })).count()
}

#[test]
fn recorded_spot_jobs_are_recovered_once_by_whoever_sees_the_interruption() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("job-records");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded(
        "recorded_spot_jobs_are_recovered_once_by_whoever_sees_the_interruption",
        Duration::from_secs(240),
        async {
            let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
            let fleet =
                Fleet::new().with(common::primeintellect(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            let records = JobRecords::at(scratch.join("records"));

            // A waiter and a sweep see the same interruption: one relaunch, and the waiter gets
            // the relaunched command's status.
            let job = spot_job(&scratch, &public, "sleep 2; exit 3", 2);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            assert!(first.pod.is_spot());
            let before = creates(&emulator);
            emulator.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let mut told = Vec::new();
            let waiting = fleet.wait_recorded(
                &records,
                &first.id,
                POLL,
                Duration::from_secs(90),
                |s| {
                    told.push(s.id.clone());
                },
                std::future::pending(),
            );
            let (waited, swept) = tokio::join!(waiting, fleet.recover_recorded(&records, std::future::pending()));
            let recovered = waited.expect("the relaunched job finishes");
            assert_eq!(recovered.code, 3, "the exit status is the command's");
            assert_eq!(creates(&emulator) - before, 1, "relaunched once, by the waiter or the sweep: {swept:?}");
            assert_eq!(told.len() + relaunched(&swept), 1, "{told:?} {swept:?}");
            assert_eq!(recovered.interruptions.len(), 1);
            assert_eq!(recovered.interruptions[0].pod, first.id);
            let record = records.find(&recovered.id).unwrap().expect("the record follows the job");
            assert_eq!(record.first, first.id);
            assert_eq!(record.end, Some(RecordEnd::Exited { code: 3 }));
            // Asked again (by either id), an ended job answers from its record at once.
            let again = fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(5), |_| {}, std::future::pending())
                .await
                .unwrap();
            assert_eq!((again.code, again.id.clone()), (3, recovered.id.clone()));
            fleet.terminate(&recovered.id).await.unwrap();

            // A sweep alone: the job is relaunched and its record follows it; a second sweep
            // leaves it running; once its command exits, a sweep closes the record.
            let job = spot_job(&scratch, &public, "sleep 4; exit 0", 1);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            emulator.interrupt(first.id.id(), Interruption::Terminated).unwrap();
            let sweep = std::time::Instant::now();
            let swept = fleet.recover_recorded(&records, std::future::pending()).await;
            // BENCHMARKS.md: one sweep, from an interruption to the relaunched job running.
            eprintln!("figure: a sweep saw the interruption and had the job running again in {:?}", sweep.elapsed());
            assert_eq!(relaunched(&swept), 1, "{swept:?}");
            let now = records.load(&first.id).unwrap().unwrap().current.id;
            assert_ne!(now, first.id);
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 0);
            // Interrupted once more than allowed: given up, never relaunched; the waiter is told.
            emulator.interrupt(now.id(), Interruption::Stopped).unwrap();
            let before = creates(&emulator);
            let swept = fleet.recover_recorded(&records, std::future::pending()).await;
            assert!(swept.iter().any(|s| matches!(s, RecordSweep::Ended { end: RecordEnd::GaveUp, .. })), "{swept:?}");
            assert_eq!(creates(&emulator), before, "nothing relaunched past the recovery");
            match fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(5), |_| {}, std::future::pending())
                .await
            {
                Err(Error::Interrupted { interruptions }) => assert_eq!(interruptions.len(), 2),
                other => panic!("expected Interrupted, got {other:?}"),
            }
            assert!(emulator.live_pods().is_empty(), "the stopped pod was terminated");

            // A sweep closes the record of a job whose command exited.
            let job = spot_job(&scratch, &public, "exit 5", 1);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            let mut closed = false;
            for _ in 0..40 {
                let swept = fleet.recover_recorded(&records, std::future::pending()).await;
                if swept.iter().any(|s| matches!(s, RecordSweep::Ended { end: RecordEnd::Exited { code: 5 }, .. })) {
                    closed = true;
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            assert!(closed, "the sweep saw the command exit");
            fleet.terminate(&first.id).await.unwrap();

            // Ended on purpose (jobs cancel, down): the pod going away is no interruption.
            let job = spot_job(&scratch, &public, "sleep 60", 3);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            records.end_pod(&first.id, "jobs cancel").await.unwrap();
            fleet.terminate(&first.id).await.unwrap();
            let before = creates(&emulator);
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 0);
            assert_eq!(creates(&emulator), before);
            match fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(5), |_| {}, std::future::pending())
                .await
            {
                Err(Error::JobEnded { id, end }) => assert!(id == first.id && end.contains("jobs cancel"), "{end}"),
                other => panic!("expected JobEnded, got {other:?}"),
            }

            // A checkpoint directory is pulled by the sweeps while the command runs and pushed to
            // the relaunched pod before the command runs again.
            let script = "s=$(cat ckpt/step 2>/dev/null || echo 0); echo $s > resumed-at; \
                          while [ $s -lt 40 ]; do s=$((s+1)); mkdir -p ckpt; echo $s > ckpt/step.new; \
                          mv ckpt/step.new ckpt/step; sleep 0.1; done";
            let mut job = spot_job(&scratch, &public, script, 1);
            job.checkpoint = Some(Checkpoint { remote: "ckpt".into(), every: Duration::from_millis(500) });
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            let pulled = records.checkpoint_dir(&first.id).join("current/ckpt/step");
            while !pulled.is_file() || std::fs::read_to_string(&pulled).unwrap().trim() == "0" {
                assert!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await) == 0);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let step: u32 = std::fs::read_to_string(&pulled).unwrap().trim().parse().unwrap();
            emulator.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let swept = fleet.recover_recorded(&records, std::future::pending()).await;
            let Some(RecordSweep::Relaunched { to, .. }) =
                swept.iter().find(|s| matches!(s, RecordSweep::Relaunched { .. }))
            else {
                panic!("relaunched: {swept:?}")
            };
            let restored = to.restored.as_ref().expect("the pulled checkpoint was pushed");
            assert_eq!(restored.pod, to.id);
            let recovered = fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(60), |_| {}, std::future::pending())
                .await
                .unwrap();
            assert_eq!(recovered.code, 0);
            let resumed = emulator.pod_dir(Api::PrimeIntellect, to.id.id()).join("gpucloud-job/resumed-at");
            let resumed: u32 = std::fs::read_to_string(&resumed).unwrap().trim().parse().unwrap();
            assert!(resumed >= step && resumed > 0, "resumed at {resumed}, pulled at {step}");
            fleet.terminate(&to.id).await.unwrap();
            assert!(!records.checkpoint_dir(&first.id).exists(), "an ended job's checkpoints are removed");

            // Past its deadline, an interrupted job is not relaunched.
            let mut job = spot_job(&scratch, &public, "sleep 60", 3);
            job.deadline = Some(Duration::from_secs(3));
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            emulator.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let before = creates(&emulator);
            let swept = fleet.recover_recorded(&records, std::future::pending()).await;
            assert!(
                swept.iter().any(|s| matches!(s, RecordSweep::Ended { end: RecordEnd::DeadlinePassed, .. })),
                "{swept:?}"
            );
            assert_eq!(creates(&emulator), before);
            assert!(emulator.live_pods().is_empty(), "no pod left: {:?}", emulator.live_pods());

            // A wait shorter than a relaunch never throws its relaunch away: the relaunch is
            // finished, the wait times out, and the next wait finds the relaunched job.
            let job = spot_job(&scratch, &public, "sleep 4; exit 6", 1);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            emulator.interrupt(first.id.id(), Interruption::Stopped).unwrap();
            let before = creates(&emulator);
            let short = Duration::from_millis(300);
            match fleet.wait_recorded(&records, &first.id, POLL, short, |_| {}, std::future::pending()).await {
                Err(Error::Timeout { .. }) => {}
                other => panic!("expected Timeout, got {other:?}"),
            }
            assert_eq!(creates(&emulator), before + 1, "relaunched once");
            let now = records.load(&first.id).unwrap().unwrap().current.id;
            assert!(emulator.live_pods().iter().any(|p| p.id == now.id()), "the relaunched pod runs");
            let recovered = fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(60), |_| {}, std::future::pending())
                .await
                .unwrap();
            assert_eq!((recovered.code, recovered.interruptions.len()), (6, 1), "counted once");
            assert_eq!(creates(&emulator), before + 1);
            fleet.terminate(&recovered.id).await.unwrap();

            // A pod the reaper ends on purpose is never taken for an interruption: its record is
            // closed first (ReapPolicy::before_terminate, as `gpucloud reap` does).
            let mut job = spot_job(&scratch, &public, "sleep 60", 3);
            job.launch.name = "doomed".into();
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            let closing = records.clone();
            let policy = ReapPolicy {
                before_terminate: Some(BeforeTerminate(std::sync::Arc::new(move |id| {
                    let records = closing.clone();
                    Box::pin(async move { records.end_pod(&id, "the reaper").await.map_err(|e| e.to_string()) })
                }))),
                ..ReapPolicy::default().with_prefix_older_than("doomed", Duration::ZERO)
            };
            let report = fleet.reap(&policy).await.unwrap();
            assert_eq!(report.reaped.len(), 1, "{report:?}");
            let before = creates(&emulator);
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 0);
            assert_eq!(creates(&emulator), before);
            assert_eq!(
                records.load(&first.id).unwrap().unwrap().end,
                Some(RecordEnd::Ended { by: "the reaper".into() })
            );

            // A recoverer stopped during a relaunch (a reaper's SIGTERM) cancels it: the new pod
            // is terminated before it returns, and the next recoverer relaunches once.
            let slow = common::keyless_emulator(Duration::from_secs(3), FaultConfig::default()).await;
            let fleet = Fleet::new().with(common::primeintellect(&slow)).with_cleanup_timeout(Duration::from_secs(10));
            let job = spot_job(&scratch, &public, "sleep 1; exit 0", 2);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            slow.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let before = creates(&slow);
            let swept = fleet.recover_recorded(&records, tokio::time::sleep(Duration::from_secs(1))).await;
            assert!(
                swept.iter().any(|s| matches!(s, RecordSweep::Failed { error: Error::Cancelled, .. })),
                "{swept:?}"
            );
            assert_eq!(creates(&slow), before + 1, "the relaunch had begun");
            assert!(slow.live_pods().is_empty(), "the cancelled relaunch's pod was terminated: {:?}", slow.live_pods());
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 1);
            let recovered = fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(60), |_| {}, std::future::pending())
                .await
                .unwrap();
            assert_eq!((recovered.code, recovered.interruptions.len()), (0, 1));
            fleet.terminate(&recovered.id).await.unwrap();

            // A recoverer killed during a relaunch left a marker and perhaps a pod: the next
            // one ends that pod before it relaunches, so one interruption never leaves two.
            let job = spot_job(&scratch, &public, "sleep 1; exit 0", 2);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            slow.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let marker = "recorded-r00beef".to_string();
            let orphan_launch = LaunchRequest {
                name: marker.clone(),
                ssh_public_key: Some(public.clone()),
                ttl: Some(Duration::from_secs(600)),
                ..LaunchRequest::new("H100_80GB", 1, "unused")
            };
            let orphan = fleet.launch(&orphan_launch).await.unwrap();
            let _lock = records.lock(&first.id, Duration::ZERO).await.unwrap();
            records.update(&first.id, |r| r.relaunching = Some(marker.clone())).unwrap();
            drop(_lock);
            let before = creates(&slow);
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 1);
            assert_eq!(creates(&slow), before + 1, "one relaunch");
            let live: Vec<_> = slow.live_pods().into_iter().map(|p| p.id).collect();
            assert!(!live.contains(&orphan.id.id().to_string()), "the orphan was terminated: {live:?}");
            assert_eq!(live.len(), 1, "only the relaunch runs: {live:?}");
            let record = records.load(&first.id).unwrap().unwrap();
            assert_eq!(record.relaunching, None);
            let recovered = fleet
                .wait_recorded(&records, &first.id, POLL, Duration::from_secs(60), |_| {}, std::future::pending())
                .await
                .unwrap();
            fleet.terminate(&recovered.id).await.unwrap();

            // Cancelled after a killed recoverer: the job ends and the pod its relaunch left too.
            let job = spot_job(&scratch, &public, "sleep 60", 2);
            let first = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
            slow.interrupt(first.id.id(), Interruption::Gone).unwrap();
            let marker = "recorded-r0cafe0".to_string();
            let orphan = fleet.launch(&LaunchRequest { name: marker.clone(), ..orphan_launch.clone() }).await.unwrap();
            // A pod whose name merely starts with the marker is someone else's.
            let bystander =
                fleet.launch(&LaunchRequest { name: format!("{marker}-x"), ..orphan_launch.clone() }).await.unwrap();
            let held = records.lock(&first.id, Duration::ZERO).await.unwrap();
            records.update(&first.id, |r| r.relaunching = Some(marker.clone())).unwrap();
            drop(held);
            let current = fleet.end_recorded_job(&records, &first.id, "jobs cancel").await.unwrap();
            assert_eq!(current, Some(first.id.clone()));
            let live: Vec<_> = slow.live_pods().into_iter().map(|p| p.id).collect();
            assert!(!live.contains(&orphan.id.id().to_string()), "the orphan was terminated: {live:?}");
            assert!(live.contains(&bystander.id.id().to_string()), "the bystander was left alone: {live:?}");
            assert_eq!(relaunched(&fleet.recover_recorded(&records, std::future::pending()).await), 0);
            fleet.terminate(&bystander.id).await.unwrap();

            // A name with no room for a relaunch's suffix is refused before any request.
            let mut job = spot_job(&scratch, &public, "true", 1);
            job.launch.name = "n".repeat(24);
            let before = creates(&slow);
            match fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await {
                Err(Error::InvalidInput { field: "name", message }) => assert!(message.contains("23"), "{message}"),
                other => panic!("expected InvalidInput name, got {other:?}"),
            }
            assert_eq!(creates(&slow), before);
            let _ = std::fs::remove_dir_all(&scratch);
        },
    ));
}
