//! `gpucloud reap`: the reaper, once or on a timer.

use crate::cli::{self, Cli};
use crate::render::{self, outln};
use crate::setup::session;
use crate::{remote, signals};
use futures::FutureExt as _;
use gpucloud::jobs::JobRecords;
use gpucloud::upkeep::reap::BeforeTerminate;
use gpucloud::{Error, Provider};
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn reap(cli: &Cli, args: &cli::ReapArgs) -> Result<(), Error> {
    let only: Vec<Provider> = args.provider.into_iter().collect();
    let session = session(cli, &only, Duration::from_secs(2)).await?;
    let records = JobRecords::open_default();
    // A recorded job whose pod a rule ends is over: its record is closed before the pod goes,
    // so that no recoverer (a `jobs wait --recover` elsewhere) takes the end for an interruption.
    let closing = records.clone();
    let before_terminate = BeforeTerminate(Arc::new(move |id| {
        let records = closing.clone();
        // A pod whose record cannot be closed first is left for the next sweep.
        async move {
            records
                .end_pod(&id, "the reaper")
                .await
                .map_err(|e| format!("its job record could not be closed first: {e}"))
        }
        .boxed()
    }));
    let policy = gpucloud::ReapPolicy {
        prefix: args.prefix.clone(),
        older_than: args.older_than,
        dry_run: args.dry_run,
        idle: args.idle_below.zip(args.idle_for).map(|(below, window)| {
            let rule = gpucloud::upkeep::idle::IdleRule::new(below, window).with_grace(args.idle_grace);
            if args.idle_over_ssh {
                let identity_file = remote::private_key(args.ssh_key.as_deref());
                rule.over_ssh(gpucloud::remote::SessionOptions { identity_file, ..Default::default() })
            } else {
                rule
            }
        }),
        before_terminate: Some(before_terminate),
    };
    let shutdown = signals::Shutdown::listen()?.received().shared();
    // One sweep; `None` when a signal stopped it. Stopping the reap part mid-sweep is safe
    // (terminations are idempotent and the next run picks up); the recovery part is told, and
    // cancels a relaunch under way cleanly (its pod terminated and confirmed) before it returns.
    let sweep = || async {
        let report = tokio::select! {
            report = session.fleet.reap(&policy) => report?,
            () = shutdown.clone() => return Ok(None),
        };
        let mut value = render::reap_json(&report);
        if !args.json {
            render::reap_summary(&report);
        }
        let mut recovery_failed = None;
        if args.recover {
            let swept = session.fleet.recover_recorded(&records, shutdown.clone()).await;
            let jobs: Vec<_> = swept.iter().map(|s| render::record_sweep(s, args.json)).collect();
            value["recorded_jobs"] = serde_json::Value::Array(jobs);
            recovery_failed = swept.into_iter().find_map(|s| match s {
                gpucloud::jobs::RecordSweep::Failed { error, .. } => Some(error),
                _ => None,
            });
        }
        if args.json {
            match args.every {
                // One sweep per line, for log collectors.
                Some(_) => outln!("{value}"),
                None => render::print_json(&value),
            }
        }
        Ok::<_, Error>(Some((report, recovery_failed)))
    };
    let Some(every) = args.every else {
        let Some((report, recovery_failed)) = sweep().await? else { return Err(Error::Cancelled) };
        // Failures were printed with the report; the first one sets the exit code.
        if let Some(failure) = report.failures.into_iter().next() {
            return Err(failure.into_error());
        }
        return recovery_failed.map_or(Ok(()), Err);
    };
    loop {
        // A failed sweep is reported; the next one runs on schedule.
        match sweep().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => crate::exit::report(&e),
        }
        if shutdown.clone().now_or_never().is_some() {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.clone() => return Ok(()),
        }
    }
}
