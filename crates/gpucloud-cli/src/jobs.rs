//! `run --detach` and `jobs ls|logs|wait|download|cancel`: jobs that outlive this process.

use crate::cli::{JobsCommand, RunArgs};
use crate::render::{self, outln};
use crate::setup::Session;
use gpucloud::jobs::{Job, JobEvent, JobRecords, JobReport, JobState};
use gpucloud::remote::SessionOptions;
use gpucloud::{Error, PodId, Provider};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn options(id: &PodId, key: Option<&Path>) -> SessionOptions {
    SessionOptions { identity_file: crate::remote::key_for(id, key), ..SessionOptions::default() }
}

/// `gpucloud run --detach`: prints the job's id (or `--json` an object with `id`) and which
/// guards end its pod.
pub async fn submit(session: &Session, args: &RunArgs, mut request: gpucloud::LaunchRequest) -> Result<(), Error> {
    if args.up.pods > 1 || args.up.no_wait {
        return Err(Error::InvalidInput { field: "pods", message: "run launches one pod and waits for it".into() });
    }
    if !args.downloads.is_empty() {
        return Err(Error::InvalidInput {
            field: "download",
            message: "a detached job has nobody to copy results when it ends: collect them with `gpucloud jobs download ID REMOTE:LOCAL`".into(),
        });
    }
    request.ready_timeout = Duration::from_secs(args.up.timeout);
    let mut job = Job::new(request, args.command.clone());
    job.workdir = args.workdir.clone();
    job.remote_dir = args.remote_dir.clone();
    job.setup = args.setup.clone();
    job.keep = args.keep;
    job.deadline = args.deadline;
    job.linger = args.linger;
    job.recovery = gpucloud::jobs::Recovery { max_interruptions: args.recover, on_demand_after: args.on_demand_after };
    job.checkpoint =
        args.checkpoint_dir.clone().map(|remote| gpucloud::jobs::Checkpoint { remote, every: args.checkpoint_every });
    job.session = SessionOptions {
        identity_file: crate::remote::private_key(args.up.ssh_key.as_deref()),
        ..SessionOptions::default()
    };
    let json = args.up.json;
    let shutdown = crate::signals::Shutdown::listen()?;
    let progress = |event: JobEvent<'_>| match event {
        JobEvent::Connecting(pod) if !json => eprintln!("gpucloud: {} is ready; starting the job", pod.id),
        JobEvent::Synced(report) if !json => {
            eprintln!("gpucloud: synced {} files ({} bytes)", report.sent.len(), report.bytes);
        }
        _ => {}
    };
    let recorded = args.recover > 0;
    let submitted = if recorded {
        let records = JobRecords::open_default();
        session.fleet.submit_recorded(&job, &records, progress, shutdown.received()).await?
    } else {
        session.fleet.submit(&job, progress, shutdown.received()).await?
    };
    crate::launch::remember_key(&submitted.id, args.up.ssh_key.as_deref());
    eprintln!("gpucloud: job {} started; guards: {}", submitted.id, submitted.guards.describe());
    if recorded {
        eprintln!(
            "gpucloud: recorded in {}: an interruption is recovered (up to {} times) by `gpucloud jobs wait --recover {}` or a running `gpucloud reap --every 60s --recover` on this machine",
            JobRecords::default_dir().display(),
            args.recover,
            submitted.id
        );
    }
    if submitted.pod.provider == Provider::PrimeIntellect {
        eprintln!(
            "gpucloud: PrimeIntellect gives a pod no key of its own and gpucloud never puts yours on a pod: only the lease and a running `gpucloud reap` end this pod"
        );
    }
    if json {
        render::print_json(&json!({
            "id": submitted.id.to_string(),
            "pod": render::pod_json(&submitted.pod),
            "guards": submitted.guards,
        }));
    } else {
        outln!("{}", submitted.id);
    }
    Ok(())
}

/// The pod job `id` runs on now: a recorded job that was relaunched ([`JobRecords`]) answers to its
/// first id and to each of its pods' ids.
pub fn resolve(id: &PodId) -> PodId {
    match JobRecords::open_default().find(id) {
        Ok(Some(record)) => record.current.id,
        _ => id.clone(),
    }
}

fn state_text(report: &JobReport) -> String {
    match &report.state {
        Ok(JobState::Running) => "running".into(),
        Ok(JobState::Exited { code }) => format!("exited {code}"),
        Ok(JobState::None) => "no job".into(),
        Err(why) => format!("unknown ({why})"),
    }
}

/// `gpucloud jobs ...`; returns the exit status to leave with.
pub async fn jobs(session: &Session, command: &JobsCommand) -> Result<u8, Error> {
    match command {
        JobsCommand::Ls { ssh_key, json, .. } => {
            let options = SessionOptions {
                identity_file: crate::remote::private_key(ssh_key.as_deref()),
                ..SessionOptions::default()
            };
            let (reports, failed) = session.fleet.jobs(&options).await;
            for (provider, error) in &failed {
                eprintln!("gpucloud: error: {provider}: {error}");
            }
            if *json {
                let rows: Vec<_> = reports
                    .iter()
                    .map(|r| {
                        json!({
                            "id": r.id.to_string(),
                            "pod": render::pod_json(&r.pod),
                            "state": r.state.as_ref().ok(),
                            "error": r.state.as_ref().err(),
                            "log_bytes": r.log_bytes,
                            "remote_dir": r.remote_dir,
                        })
                    })
                    .collect();
                render::print_json(&serde_json::Value::Array(rows));
            } else {
                // Widths from the rows: a PrimeIntellect job id alone is 47 characters.
                let rows = reports
                    .iter()
                    .map(|r| {
                        let lease = r
                            .pod
                            .lease_expires_at
                            .map_or("-".to_string(), |at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                        let log = r.log_bytes.map_or("-".to_string(), |b| b.to_string());
                        vec![r.id.to_string(), r.pod.status.to_string(), state_text(r), log, lease]
                    })
                    .collect();
                render::table(&["ID", "POD", "STATE", "LOG BYTES", "LEASE"], rows);
            }
            Ok(if failed.is_empty() { 0 } else { 1 })
        }
        JobsCommand::Logs { id, follow, offset, ssh_key, poll } => {
            let id = &resolve(id);
            let options = options(id, ssh_key.as_deref());
            if !*follow {
                let mut offset = *offset;
                loop {
                    let piece = session.fleet.job_log_piece(id, offset, &options).await?;
                    render::write_stdout_or_drop(&piece.bytes);
                    offset += piece.bytes.len() as u64;
                    if (piece.bytes.len() as u64) < gpucloud::jobs::detached::LOG_CHUNK {
                        return Ok(0);
                    }
                }
            }
            let shutdown = crate::signals::Shutdown::listen()?;
            let code = session
                .fleet
                .follow_job_log(id, *offset, &options, *poll, render::write_stdout_or_drop, shutdown.received())
                .await?;
            match code {
                Some(code) => {
                    eprintln!("gpucloud: the job's command exited {code}");
                    Ok(crate::exit::of_status(code))
                }
                None => Err(Error::Cancelled),
            }
        }
        JobsCommand::Wait { id, timeout, poll, end, recover, ssh_key } => {
            let (code, last) = if *recover {
                let records = JobRecords::open_default();
                let shutdown = crate::signals::Shutdown::listen()?;
                let recovered = session
                    .fleet
                    .wait_recorded(
                        &records,
                        id,
                        *poll,
                        *timeout,
                        |next| {
                            eprintln!(
                                "gpucloud: the job's spot pod was interrupted; relaunched as {} (guards: {})",
                                next.id,
                                next.guards.describe()
                            );
                            if let Some(restored) = &next.restored {
                                eprintln!(
                                    "gpucloud: its checkpoint was {} ({:.0} s old)",
                                    restored.how,
                                    restored.age.as_secs_f64()
                                );
                            }
                        },
                        shutdown.received(),
                    )
                    .await?;
                for interruption in &recovered.interruptions {
                    eprintln!("gpucloud: recovered: {interruption}");
                }
                (recovered.code, recovered.id)
            } else {
                let id = &resolve(id);
                let options = options(id, ssh_key.as_deref());
                (session.fleet.wait_job(id, &options, *poll, *timeout).await?, id.clone())
            };
            eprintln!("gpucloud: the job's command exited {code} (on {last})");
            if *end {
                JobRecords::open_default().end_pod(&last, "jobs wait --end").await?;
                session.fleet.terminate(&last).await?;
                eprintln!("gpucloud: terminated {last}");
            }
            Ok(crate::exit::of_status(code))
        }
        JobsCommand::Download { id, spec, ssh_key } => {
            let id = &resolve(id);
            let options = options(id, ssh_key.as_deref());
            session.fleet.job_download(id, &spec.0, &spec.1, &options).await?;
            outln!("copied {id}:{} to {}/", spec.0, spec.1.display());
            Ok(0)
        }
        JobsCommand::Cancel { id, keep, ssh_key } => {
            // First, under the job's lock, so that no recoverer relaunches the job or takes its
            // pod's end for an interruption; the pod the job runs on now is the one cancelled.
            let records = JobRecords::open_default();
            let id = &match records.find(id) {
                Ok(_) => {
                    session.fleet.end_recorded_job(&records, id, "jobs cancel").await?.unwrap_or_else(|| id.clone())
                }
                // No recoverer can read it either: the cancel goes on.
                Err(e) => {
                    eprintln!("gpucloud: warning: {e}; cancelling {id} anyway");
                    id.clone()
                }
            };
            let options = options(id, ssh_key.as_deref());
            session.fleet.cancel_job(id, &options, *keep).await?;
            if *keep {
                eprintln!("gpucloud: cancelled the job; kept {id}");
            } else {
                eprintln!("gpucloud: cancelled the job and terminated {id}");
            }
            Ok(0)
        }
    }
}
