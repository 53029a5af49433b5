//! Detached jobs (`Fleet::submit`): the job runs on without its launcher, its log is followed
//! and resumed byte for byte, its status is waited for, and on RunPod the pod ends itself with
//! its own scoped key after the linger and at the deadline.

mod common;

use gpucloud::jobs::{Job, JobState};
use gpucloud::remote::SessionOptions;
use gpucloud::{Error, Fleet, LaunchRequest};
use gpucloud_emulator::{Emulator, FaultConfig};
use std::time::Duration;

/// Waits (at most `limit`) until the emulator has no live pod; panics naming `what` otherwise.
async fn pod_ends(emulator: &Emulator, what: &str, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    while !emulator.live_pods().is_empty() {
        assert!(started.elapsed() < limit, "{what}: the pod was still live after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[test]
fn a_detached_job_runs_on_is_followed_and_its_runpod_pod_ends_itself() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("detached");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded(
        "a_detached_job_runs_on_is_followed_and_its_runpod_pod_ends_itself",
        Duration::from_secs(60),
        async {
            let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
            let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let job = |script: &str| {
                let launch = LaunchRequest {
                    ssh_public_key: Some(public.clone()),
                    ttl: Some(Duration::from_secs(3600)),
                    ..LaunchRequest::new("H100_80GB", 1, "detached")
                };
                let mut job = Job::new(launch, ["sh", "-c", script]);
                job.session = options.clone();
                job
            };

            // A detached job without a lease is refused before any request: on PrimeIntellect
            // nothing else ends its pod; on RunPod nothing does until the job has started.
            let mut unleased = job("true");
            unleased.launch.ttl = None;
            for fleet in [common::fleet(&emulator), Fleet::new().with(common::runpod(&emulator))] {
                let refused = fleet.submit(&unleased, |_| {}, std::future::pending()).await.unwrap_err();
                assert!(matches!(&refused, Error::InvalidInput { field: "ttl", .. }), "{refused}");
                assert!(refused.to_string().contains("only the lease and a running reaper"), "{refused}");
            }
            assert!(emulator.all_pods().is_empty());

            // The job: 40 numbered lines, slowly, then exit 3; its pod ends itself 2 s after.
            let mut counting = job("i=1; while [ $i -le 40 ]; do echo line $i; i=$((i+1)); sleep 0.02; done; exit 3");
            counting.linger = Duration::from_secs(2);
            counting.setup = Some("echo set up".into());
            let submitted = fleet.submit(&counting, |_| {}, std::future::pending()).await.unwrap();
            assert!(submitted.guards.watchdog && submitted.guards.linger_s == Some(2), "{:?}", submitted.guards);
            let id = submitted.id.clone();
            let expected: String =
                std::iter::once("set up\n".to_string()).chain((1..=40).map(|i| format!("line {i}\n"))).collect();

            // Followed in two goes: the first stops after some bytes, the second resumes at the byte
            // after the last one received. Nothing lost, nothing repeated.
            let mut first = Vec::new();
            let (enough_tx, enough_rx) = tokio::sync::oneshot::channel::<()>();
            let mut enough = Some(enough_tx);
            let stopped = fleet
                .follow_job_log(
                    &id,
                    0,
                    &options,
                    Duration::from_millis(50),
                    |bytes| {
                        first.extend_from_slice(bytes);
                        if first.len() >= 20
                            && let Some(tx) = enough.take()
                        {
                            let _ = tx.send(());
                        }
                    },
                    async {
                        let _ = enough_rx.await;
                    },
                )
                .await
                .unwrap();
            assert!(stopped.is_none() || first.len() == expected.len(), "stopped on request: {stopped:?}");
            let mut rest = Vec::new();
            let code = fleet
                .follow_job_log(
                    &id,
                    first.len() as u64,
                    &options,
                    Duration::from_millis(50),
                    |bytes| rest.extend_from_slice(bytes),
                    std::future::pending(),
                )
                .await
                .unwrap();
            assert_eq!(code, Some(3), "the command's exit status");
            first.extend_from_slice(&rest);
            assert_eq!(String::from_utf8_lossy(&first), expected, "the log whole, once, in order");
            assert_eq!(
                fleet.wait_job(&id, &options, Duration::from_millis(100), Duration::from_secs(10)).await.unwrap(),
                3
            );
            let report = fleet.job(&id, &options).await.unwrap();
            assert_eq!(report.state, Ok(JobState::Exited { code: 3 }));
            assert_eq!(report.log_bytes, Some(expected.len() as u64));

            // The watchdog ends the pod with its own key after the linger, nobody else asking.
            let deletes = |e: &Emulator| e.stats().requests_by_route.get("DELETE /v2/pods/{id}").copied().unwrap_or(0);
            let before = deletes(&emulator);
            let took = pod_ends(&emulator, "the pod ends itself after its linger", Duration::from_secs(15)).await;
            assert!(deletes(&emulator) > before, "ended by a DELETE from the pod itself");
            eprintln!("the pod ended itself {took:?} after the command's log was read (linger 2 s)");

            // At the deadline in every case: a command that would run a minute, kept after its end,
            // with a long linger, is stopped and its pod ended at the 4 s deadline.
            let mut long = job("echo started; sleep 60; echo never");
            long.linger = Duration::from_secs(600);
            long.keep = true;
            long.deadline = Some(Duration::from_secs(4));
            let submitted = fleet.submit(&long, |_| {}, std::future::pending()).await.unwrap();
            assert_eq!(submitted.guards.linger_s, None, "kept");
            assert!(submitted.guards.deadline_s.is_some_and(|s| s <= 4));
            assert!(submitted.pod.lease_expires_at.is_some(), "the lease stays the second line of defence");
            pod_ends(&emulator, "the pod ends itself at the job's deadline", Duration::from_secs(20)).await;

            // The scoped key opens its own pod's routes only.
            let mut short = job("sleep 30");
            short.linger = Duration::from_secs(600);
            let submitted = fleet.submit(&short, |_| {}, std::future::pending()).await.unwrap();
            let raw_id = submitted.id.id().to_string();
            let key = emulator.pod_scoped_key(&raw_id).unwrap();
            let http = reqwest::Client::builder()
                .tls_backend_preconfigured(runpod_api::tls_config().unwrap())
                .build()
                .unwrap();
            let get = |path: String| http.get(format!("{}{path}", emulator.base_url())).bearer_auth(&key).send();
            assert_eq!(get(format!("/v2/pods/{raw_id}")).await.unwrap().status(), 200, "its own pod");
            assert_eq!(get("/v2/pods".into()).await.unwrap().status(), 403, "the pod list is refused");
            assert_eq!(get("/v2/account/ssh-keys".into()).await.unwrap().status(), 403, "the account is refused");
            assert_eq!(get("/v2/pods/someoneelse".into()).await.unwrap().status(), 403, "another pod is refused");
            // Cancelled: the command stops and the pod is terminated.
            fleet.cancel_job(&submitted.id, &options, false).await.unwrap();
            assert!(emulator.live_pods().is_empty(), "cancel ends the pod");
            let _ = std::fs::remove_dir_all(&scratch);
        },
    ));
}
