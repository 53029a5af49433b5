//! `gpucloud reap`: the reaper, once or on a timer.

use crate::cli::{self, Cli};
use crate::render::{self, outln};
use crate::setup::session;
use crate::{remote, signals};
use gpucloud::{Error, Provider};
use std::time::Duration;

pub(crate) async fn reap(cli: &Cli, args: &cli::ReapArgs) -> Result<(), Error> {
    let only: Vec<Provider> = args.provider.into_iter().collect();
    let session = session(cli, &only, Duration::from_secs(2)).await?;
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
    };
    let records = gpucloud::jobs::JobRecords::open_default();
    let sweep = || async {
        let report = session.fleet.reap(&policy).await?;
        // A recorded job whose pod a rule ended is over: no recoverer may relaunch it.
        for reaped in report.reaped.iter().filter(|_| !report.dry_run) {
            if let Err(e) = records.end_pod(&reaped.id, "the reaper").await {
                eprintln!("gpucloud: warning: {}: its job record could not be closed: {e}", reaped.id);
            }
        }
        let mut value = render::reap_json(&report);
        if !args.json {
            render::reap_summary(&report);
        }
        if args.recover {
            let swept = session.fleet.recover_recorded(&records).await;
            let jobs: Vec<_> = swept.iter().map(|s| render::record_sweep(s, args.json)).collect();
            value["recorded_jobs"] = serde_json::Value::Array(jobs);
        }
        if args.json {
            match args.every {
                // One sweep per line, for log collectors.
                Some(_) => outln!("{value}"),
                None => render::print_json(&value),
            }
        }
        Ok::<_, Error>(report)
    };
    let Some(every) = args.every else {
        let report = sweep().await?;
        // Failures were printed with the report; the first one sets the exit code.
        return report.failures.into_iter().next().map_or(Ok(()), |f| Err(f.into_error()));
    };
    let shutdown = signals::Shutdown::listen()?;
    let serve = async {
        loop {
            // A failed sweep is reported; the next one runs on schedule.
            if let Err(e) = sweep().await {
                crate::exit::report(&e);
            }
            tokio::time::sleep(every).await;
        }
    };
    // Stopping mid-sweep is safe: terminations are idempotent and the next run picks up.
    tokio::select! {
        () = serve => Ok(()),
        () = shutdown.received() => Ok(()),
    }
}
