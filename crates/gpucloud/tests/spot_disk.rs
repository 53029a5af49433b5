//! A spot job whose checkpoint directory lies on its PrimeIntellect disk (`/data`): relaunched
//! where the disk attaches again (its data center), the command finds its checkpoint there and
//! nothing is pushed over it; when the disk's data center has no capacity, the relaunch goes
//! elsewhere without the disk and the last pull is pushed. Attached (`Fleet::run`) and recorded
//! detached (`Fleet::recover_recorded`) alike.
//!
//! Needs emulated pods with a `/data` of their own (a mount namespace per session: Linux, root);
//! skipped, saying so, elsewhere. One test function: the state directory is set for the whole
//! binary before its runtime starts.

mod common;

use gpucloud::jobs::spot::{RESTORED_BY_PUSH, RESTORED_ON_DISK};
use gpucloud::jobs::{Checkpoint, Job, JobRecords, RecordSweep, Recovery};
use gpucloud::remote::{OutputLine, SessionOptions};
use gpucloud::{Fleet, LaunchRequest, Provisioner, VolumeSpec};
use gpucloud_emulator::{Api, Emulator, FaultConfig, Interruption};
use std::path::Path;
use std::time::Duration;

const TEST: &str =
    "a_checkpoint_on_the_jobs_disk_is_found_there_after_a_relaunch_or_pushed_when_the_disk_cannot_attach";

/// Counts to 40 from what `/data/ckpt/step` says, noting where it resumed.
const SCRIPT: &str = "s=$(cat /data/ckpt/step 2>/dev/null || echo 0); echo $s > resumed-at; echo \"resumed at $s\"; \
                      while [ $s -lt 40 ]; do s=$((s+1)); mkdir -p /data/ckpt; echo $s > /data/ckpt/step.new; \
                      mv /data/ckpt/step.new /data/ckpt/step; sleep 0.1; done";

fn step(file: &Path) -> u32 {
    std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Waits until `file` says at least `at`.
async fn until_step(file: &Path, at: u32) {
    while step(file) < at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one live spot pod's id, once there is one.
async fn live_spot_pod(emulator: &Emulator) -> String {
    loop {
        if let Some(pod) = emulator.live_pods().into_iter().find(|p| p.api == Api::PrimeIntellect && p.spot) {
            return pod.id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the job's last command resumed, from its output.
fn resumed_at(outcome: &gpucloud::jobs::JobOutcome) -> u32 {
    outcome
        .tail
        .iter()
        .find_map(|line| match line {
            OutputLine::Stdout(text) => text.strip_prefix("resumed at ").and_then(|n| n.trim().parse().ok()),
            OutputLine::Stderr(_) => None,
        })
        .unwrap_or_else(|| panic!("no \"resumed at\" line in {:?}", outcome.tail))
}

/// The disks pod `id` was created with.
fn attached(emulator: &Emulator, id: &str) -> Vec<String> {
    emulator
        .all_pods()
        .into_iter()
        .find(|p| p.api == Api::PrimeIntellect && p.id == id)
        .map(|p| p.disks)
        .unwrap_or_default()
}

/// A pulled checkpoint's `step` file under the state directory (an attached run's store).
fn pulled_step(state: &Path) -> u32 {
    std::fs::read_dir(state.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| step(&entry.path().join("current/ckpt/step")))
        .max()
        .unwrap_or(0)
}

#[test]
fn a_checkpoint_on_the_jobs_disk_is_found_there_after_a_relaunch_or_pushed_when_the_disk_cannot_attach() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    if !Emulator::mounts_disks() {
        eprintln!("skipped: emulated pods cannot have a /data of their own here (needs Linux and root)");
        return;
    }
    let (scratch, public) = common::scratch_with_key("spot-disk");
    let state = scratch.join("state");
    let runtime = common::runtime_with_state_dir(&state);
    runtime.block_on(common::bounded(TEST, Duration::from_secs(240), async {
        let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = Fleet::new().with(common::primeintellect(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let spec = |name: &str| VolumeSpec {
            name: name.into(),
            size_gb: 20,
            data_center: Some("US-KS-2".into()),
            provider_type: Some("runpod".into()),
            ..VolumeSpec::default()
        };
        let job_on = |disk: &str| {
            let mut launch = LaunchRequest {
                ssh_public_key: Some(public.clone()),
                volume_ids: vec![disk.to_string()],
                ttl: Some(Duration::from_secs(600)),
                ..LaunchRequest::new("A6000_48GB", 1, "disk-job")
            };
            launch.query.spot = None;
            let mut job = Job::new(launch, ["sh", "-c", SCRIPT]);
            job.session = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            job.recovery = Recovery { max_interruptions: 1, on_demand_after: None };
            job.checkpoint = Some(Checkpoint { remote: "/data/ckpt".into(), every: Duration::from_millis(400) });
            job.watch_interval = Some(Duration::from_millis(250));
            job
        };

        // Relaunched where the disk attaches: the checkpoint is found on it, nothing pushed.
        let disk = common::primeintellect(&emulator).create_volume(&spec("ckpt-1")).await.unwrap();
        let on_disk = emulator.disk_dir(&disk.id).join("ckpt/step");
        let job = job_on(&disk.id);
        let interrupting = async {
            until_step(&on_disk, 5).await;
            let id = live_spot_pod(&emulator).await;
            emulator.interrupt(&id, Interruption::Terminated).unwrap();
            (id, step(&on_disk))
        };
        let (outcome, (first, at)) = tokio::join!(fleet.run(&job, |_| {}, std::future::pending()), interrupting);
        let outcome = outcome.expect("the relaunched job finishes");
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(outcome.interruptions.len(), 1);
        assert_eq!(outcome.interruptions[0].pod.id(), first);
        assert_eq!(attached(&emulator, outcome.pod.id.id()), vec![disk.id.clone()], "relaunched with the disk");
        let restored = outcome.restored_checkpoint.as_ref().expect("the checkpoint is reported");
        assert_eq!(restored.how, RESTORED_ON_DISK);
        let resumed = resumed_at(&outcome);
        assert!(resumed >= at && resumed > 0, "resumed at {resumed} from the disk (it said {at} at the interruption)");

        // The disk's data center has no capacity: relaunched elsewhere without the disk, the
        // last pull pushed.
        let disk = common::primeintellect(&emulator).create_volume(&spec("ckpt-2")).await.unwrap();
        let on_disk = emulator.disk_dir(&disk.id).join("ckpt/step");
        let job = job_on(&disk.id);
        let interrupting = async {
            until_step(&on_disk, 5).await;
            while pulled_step(&state) == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let pulled = pulled_step(&state);
            emulator.set_stocked_out("rp-a6000-spot-1", true);
            let id = live_spot_pod(&emulator).await;
            emulator.interrupt(&id, Interruption::Gone).unwrap();
            pulled
        };
        let (outcome, pulled) = tokio::join!(fleet.run(&job, |_| {}, std::future::pending()), interrupting);
        emulator.set_stocked_out("rp-a6000-spot-1", false);
        let outcome = outcome.expect("the relaunched job finishes");
        assert_eq!(outcome.exit_code, 0);
        assert!(attached(&emulator, outcome.pod.id.id()).is_empty(), "relaunched elsewhere, without the disk");
        let restored = outcome.restored_checkpoint.as_ref().expect("the pulled checkpoint was pushed");
        assert_eq!(restored.how, RESTORED_BY_PUSH);
        let resumed = resumed_at(&outcome);
        assert!(resumed >= pulled && resumed > 0, "resumed at {resumed} from the push (pulled at {pulled})");

        // Once a relaunch ran without the disk, the disk's checkpoint is older than the pulls
        // from that pod: a later relaunch never resumes from the disk (even where it attaches).
        let disk = common::primeintellect(&emulator).create_volume(&spec("ckpt-4")).await.unwrap();
        let on_disk = emulator.disk_dir(&disk.id).join("ckpt/step");
        let mut job = job_on(&disk.id);
        job.command = ["sh", "-c", &SCRIPT.replace("-lt 40", "-lt 120")].iter().map(|s| s.to_string()).collect();
        job.recovery = Recovery { max_interruptions: 2, on_demand_after: None };
        let interrupting = async {
            until_step(&on_disk, 5).await;
            while pulled_step(&state) == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            emulator.set_stocked_out("rp-a6000-spot-1", true);
            let id = live_spot_pod(&emulator).await;
            emulator.interrupt(&id, Interruption::Gone).unwrap();
            // The relaunch without the disk runs on, well past what the disk holds.
            let left_on_disk = step(&on_disk);
            let off = loop {
                let pod = live_spot_pod(&emulator).await;
                if pod != id {
                    break pod;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            while pulled_step(&state) < left_on_disk + 20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let pulled = pulled_step(&state);
            emulator.set_stocked_out("rp-a6000-spot-1", false);
            emulator.interrupt(&off, Interruption::Gone).unwrap();
            (left_on_disk, pulled)
        };
        let (outcome, (left_on_disk, pulled)) =
            tokio::join!(fleet.run(&job, |_| {}, std::future::pending()), interrupting);
        let outcome = outcome.expect("the twice relaunched job finishes");
        assert_eq!((outcome.exit_code, outcome.interruptions.len()), (0, 2));
        let resumed = resumed_at(&outcome);
        assert!(
            resumed >= pulled,
            "resumed at {resumed}: the disk's stale {left_on_disk}, not the last pull ({pulled}) from the pod without the disk"
        );

        // A recorded detached job with its checkpoint on its disk: the sweep relaunches it where
        // the disk attaches, and says so.
        let records = JobRecords::at(scratch.join("records"));
        let disk = common::primeintellect(&emulator).create_volume(&spec("ckpt-3")).await.unwrap();
        let on_disk = emulator.disk_dir(&disk.id).join("ckpt/step");
        let submitted =
            fleet.submit_recorded(&job_on(&disk.id), &records, |_| {}, std::future::pending()).await.unwrap();
        until_step(&on_disk, 5).await;
        emulator.interrupt(submitted.id.id(), Interruption::Terminated).unwrap();
        let at = step(&on_disk);
        let swept = fleet.recover_recorded(&records, std::future::pending()).await;
        let Some(RecordSweep::Relaunched { to, .. }) =
            swept.iter().find(|s| matches!(s, RecordSweep::Relaunched { .. }))
        else {
            panic!("relaunched: {swept:?}")
        };
        assert_eq!(to.restored.as_ref().map(|r| r.how), Some(RESTORED_ON_DISK));
        assert_eq!(attached(&emulator, to.id.id()), vec![disk.id.clone()], "relaunched with the disk");
        let recovered = fleet
            .wait_recorded(
                &records,
                &submitted.id,
                Duration::from_millis(250),
                Duration::from_secs(60),
                |_| {},
                std::future::pending(),
            )
            .await
            .unwrap();
        assert_eq!(recovered.code, 0);
        let resumed = step(&emulator.pod_dir(Api::PrimeIntellect, to.id.id()).join("gpucloud-job/resumed-at"));
        assert!(resumed >= at && resumed > 0, "resumed at {resumed} from the disk (it said {at})");
        fleet.terminate(&to.id).await.unwrap();

        // The same for a recorded job: once relaunched without its disk, its next relaunch is
        // pushed the last pull, never resumed from the disk's older checkpoint.
        let disk = common::primeintellect(&emulator).create_volume(&spec("ckpt-5")).await.unwrap();
        let on_disk = emulator.disk_dir(&disk.id).join("ckpt/step");
        let mut job = job_on(&disk.id);
        job.command = ["sh", "-c", &SCRIPT.replace("-lt 40", "-lt 120")].iter().map(|s| s.to_string()).collect();
        job.recovery = Recovery { max_interruptions: 2, on_demand_after: None };
        let submitted = fleet.submit_recorded(&job, &records, |_| {}, std::future::pending()).await.unwrap();
        let pulled = records.checkpoint_dir(&submitted.id).join("current/ckpt/step");
        until_step(&on_disk, 5).await;
        while step(&pulled) == 0 {
            fleet.recover_recorded(&records, std::future::pending()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        emulator.set_stocked_out("rp-a6000-spot-1", true);
        emulator.interrupt(submitted.id.id(), Interruption::Gone).unwrap();
        let relaunched = |swept: Vec<RecordSweep>| {
            swept.into_iter().find_map(|s| match s {
                RecordSweep::Relaunched { to, .. } => Some(to),
                _ => None,
            })
        };
        let off = relaunched(fleet.recover_recorded(&records, std::future::pending()).await).expect("relaunched");
        assert!(attached(&emulator, off.id.id()).is_empty(), "relaunched without the disk");
        let left_on_disk = step(&on_disk);
        while step(&pulled) < left_on_disk + 20 {
            fleet.recover_recorded(&records, std::future::pending()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last_pull = step(&pulled);
        emulator.set_stocked_out("rp-a6000-spot-1", false);
        emulator.interrupt(off.id.id(), Interruption::Gone).unwrap();
        let to = relaunched(fleet.recover_recorded(&records, std::future::pending()).await).expect("relaunched again");
        assert_eq!(to.restored.as_ref().map(|r| r.how), Some(RESTORED_BY_PUSH), "not the disk's stale checkpoint");
        let recovered = fleet
            .wait_recorded(&records, &submitted.id, Duration::from_millis(250), Duration::from_secs(60), |_| {}, std::future::pending())
            .await
            .unwrap();
        assert_eq!((recovered.code, recovered.interruptions.len()), (0, 2));
        let resumed = step(&emulator.pod_dir(Api::PrimeIntellect, to.id.id()).join("gpucloud-job/resumed-at"));
        assert!(resumed >= last_pull, "resumed at {resumed}: the disk's stale {left_on_disk}, not the last pull ({last_pull})");
        fleet.terminate(&to.id).await.unwrap();
        assert!(emulator.live_pods().is_empty(), "no pod left: {:?}", emulator.live_pods());
        let _ = std::fs::remove_dir_all(&scratch);
    }));
}
