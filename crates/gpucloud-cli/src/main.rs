//! `gpucloud`: the command-line face of the gpucloud SDK. See `gpucloud --help`.

mod cli;
mod cost;
mod remote;
mod render;
mod setup;
mod signals;

use clap::Parser;
use cli::{Cli, Command, SshKeysCommand, VolumesCommand};
use gpucloud::fleet::LaunchEvent;
use gpucloud::{Error, LaunchRequest, OfferQuery, Provider, VolumeSpec};
use indicatif::{ProgressBar, ProgressStyle};
use render::outln;
use serde_json::Value;
use setup::Session;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for an error; documented in `gpucloud --help`.
fn exit_code(error: &Error) -> u8 {
    match error {
        // A request the provider's document refuses (422) is bad input too, not missing capacity.
        // No SSH key: the request must change (--ssh-key, or --ready status).
        Error::InvalidInput { .. }
        | Error::RequestTooLarge { .. }
        | Error::NoSshKey { .. }
        | Error::Api { status: 422, .. } => 2,
        Error::MissingCredentials { .. } => 3,
        Error::Api { status: 401 | 403, .. } => 3,
        Error::NoCapacity { .. } | Error::HostFull { .. } => 4,
        Error::OverBudget { .. } | Error::BurnCapExceeded { .. } => 6,
        Error::Timeout { .. } => 5,
        Error::Cancelled => signals::exit_code(),
        _ => 1,
    }
}

fn report(error: &Error) {
    eprintln!("gpucloud: error: {error}");
    if matches!(error, Error::MissingCredentials { .. }) {
        eprintln!(
            "hint: export PRIME_API_KEY=... and/or RUNPOD_API_KEY=..., or try the built-in emulator with --emulator"
        );
    }
}

async fn session(cli: &Cli, providers: &[Provider], ready_delay: Duration) -> Result<Session, Error> {
    session_waiting_for(cli, providers, ready_delay, gpucloud::Readiness::default()).await
}

/// A session whose provisioners wait for `readiness`.
async fn session_waiting_for(
    cli: &Cli,
    providers: &[Provider],
    ready_delay: Duration,
    readiness: gpucloud::Readiness,
) -> Result<Session, Error> {
    // An empty PRIME_TEAM_ID means no team, as an unset one does.
    let team = cli.team.as_deref().filter(|t| !t.is_empty());
    if cli.emulator {
        setup::emulated(providers, ready_delay, team, readiness).await
    } else {
        setup::from_env(providers, cli.allow_insecure_http, team, readiness)
    }
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

async fn offers(cli: &Cli, args: &cli::OffersArgs) -> Result<(), Error> {
    let session = session(cli, &args.providers, Duration::from_secs(2)).await?;
    let query = OfferQuery {
        gpu: args.gpu.clone(),
        gpu_count: args.count,
        regions: args.regions.clone(),
        max_price_per_hour: args.max_price,
        spot: if args.spot {
            Some(true)
        } else if args.on_demand {
            Some(false)
        } else {
            None
        },
        volume_id: args.volume.clone(),
        allow_prepaid: args.allow_prepaid,
        in_stock_only: !args.all,
    };
    // A region no provider knows is a usage error (exit 2) before any request.
    query.validate()?;
    let results = session.fleet.offers(&query).await;
    // A volume no provider has is the caller's mistake, not a provider's failure.
    if let Some((_, error)) = results.errors.iter().find(|(_, e)| matches!(e, Error::InvalidInput { .. })) {
        return Err(error.clone());
    }
    for (provider, error) in &results.errors {
        eprintln!("gpucloud: warning: no offers from {provider}: {error}");
    }
    let shown: Vec<_> = results.offers.into_iter().take(args.limit).collect();
    if shown.is_empty()
        && let Some(unknown) = unknown_gpu(args.gpu.as_deref())
    {
        return Err(unknown);
    }
    if args.json {
        render::print_json(&Value::Array(shown.iter().map(render::offer_json).collect()));
    } else if shown.is_empty() {
        eprintln!("no matching offers");
    } else {
        render::offers_table(&shown);
    }
    match results.errors.into_iter().next() {
        Some((_, error)) if shown.is_empty() => Err(error),
        _ => Ok(()),
    }
}

/// When `gpu` is a name gpucloud does not know, the error that says so, with the closest known
/// names. Unknown names are still asked for (a provider may list a GPU newer than this
/// release); this is for when nothing matched.
fn unknown_gpu(gpu: Option<&str>) -> Option<Error> {
    let gpu = gpu?;
    if gpucloud::gpu::lookup(gpu).is_some() {
        return None;
    }
    let closest: Vec<&str> = gpucloud::gpu::closest(gpu, 3).iter().map(|m| m.name).collect();
    Some(Error::InvalidInput {
        field: "gpu",
        message: format!(
            "{gpu:?} is not a GPU gpucloud knows and no provider offers it; closest known: {}",
            closest.join(", ")
        ),
    })
}

/// Launches with a spinner; SIGINT, SIGTERM or SIGHUP cancel it, and the launch cleans up.
async fn launch(session: &Session, request: &LaunchRequest, quiet: bool) -> Result<gpucloud::Pod, Error> {
    launch_timed(session, request, quiet).await.map(|(pod, _)| pod)
}

/// [`launch`], with how long each phase took: create accepted, provider running, SSH answering.
async fn launch_timed(
    session: &Session,
    request: &LaunchRequest,
    quiet: bool,
) -> Result<(gpucloud::Pod, gpucloud::job::PhaseTimings), Error> {
    // Listening starts here, before any create: a signal from now on is a cancel, never a kill.
    let shutdown = signals::Shutdown::listen()?;
    let bar = if quiet { ProgressBar::hidden() } else { spinner() };
    bar.set_message("looking for offers");
    let started = std::time::Instant::now();
    let timings = std::sync::Mutex::new(gpucloud::job::PhaseTimings::default());
    let record = |event: &LaunchEvent<'_>| {
        timings.lock().unwrap_or_else(|e| e.into_inner()).observe_launch(event, started.elapsed());
    };
    let progress = |event: LaunchEvent<'_>| {
        record(&event);
        match event {
            LaunchEvent::Creating { offer } => {
                if let Some(charge) = offer.upfront_charge() {
                    bar.println(format!(
                        "prepaid offer: {} charged up front for {} h, whatever the use",
                        render::money(charge, &offer.currency),
                        offer.prepaid_hours.unwrap_or_default()
                    ));
                }
                bar.set_message(format!(
                    "creating {}x {} on {}{} at {}/h",
                    offer.gpu_count,
                    offer.gpu_type,
                    offer.provider,
                    offer.via.as_deref().map(|v| format!(" via {v}")).unwrap_or_default(),
                    render::money(offer.price_per_hour, &offer.currency)
                ));
            }
            LaunchEvent::Created { pod } => bar.set_message(format!("created {}", pod.id)),
            LaunchEvent::Waiting { pod } => bar.set_message(format!("waiting for {} to be ready", pod.id)),
            LaunchEvent::Observed { pod } => {
                bar.set_message(format!("waiting for {} to be ready: {}", pod.id, pod.progress_text()));
            }
            LaunchEvent::CleaningUp => bar.set_message("cleaning up"),
            _ => {}
        }
    };
    let cancel = shutdown.received();
    let result = session.fleet.launch_with_progress(request, progress, cancel).await;
    bar.finish_and_clear();
    let mut timings = timings.into_inner().unwrap_or_else(|e| e.into_inner());
    if request.wait {
        timings.launch_ready(started.elapsed());
    }
    result.map(|pod| (pod, timings))
}

/// The public key line for `path`: the file itself, or `path.pub` when `path` is a private key
/// with its public half beside it (as `ssh-keygen` leaves them).
fn read_public_key(path: &std::path::Path) -> Result<String, Error> {
    let sibling = std::path::PathBuf::from(format!("{}.pub", path.display()));
    let file =
        if path.extension().is_none_or(|e| e != "pub") && sibling.is_file() { sibling } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::InvalidInput {
        field: "ssh_key",
        message: format!("cannot read {}: {e}", file.display()),
    })?;
    gpucloud::ssh::parse_public_key(&text)
}

fn launch_request(args: &cli::UpArgs) -> LaunchRequest {
    let mut request = LaunchRequest::new(args.gpu.clone(), args.count, args.name.clone());
    request.image = args.image.clone();
    request.env = args.env.iter().cloned().collect();
    request.volume_ids = args.volumes.clone();
    request.query.regions = args.regions.clone();
    request.query.allow_prepaid = args.allow_prepaid;
    request.disk_gb = args.disk;
    request.min_cuda_version = args.min_cuda.clone();
    request.budget_usd = args.budget;
    request.max_price_per_hour = args.max_price;
    request.query.max_price_per_hour = args.max_price;
    if args.spot {
        request.query.spot = None;
    }
    request.ready_timeout = Duration::from_secs(args.timeout);
    request.ttl = args.ttl;
    request.wait = !args.no_wait;
    request
}

fn print_pod(pod: &gpucloud::Pod, json: bool) {
    if json {
        render::print_json(&render::pod_json(pod));
    } else {
        render::pods_table(std::slice::from_ref(pod));
    }
}

/// `up --pods N`: N launches at once through one fleet (one client per provider, so one
/// rate-limit budget), each with its own launch tag. Unless all become ready (or
/// `--allow-partial`), every pod that did is terminated too, and so on a signal.
async fn up_many(session: &Session, args: &cli::UpArgs, request: &LaunchRequest) -> Result<(), Error> {
    use futures::FutureExt as _;
    let shutdown = signals::Shutdown::listen()?;
    let cancel = shutdown.received().shared();
    let bar = if args.json { ProgressBar::hidden() } else { spinner() };
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = args.pods as usize;
    bar.set_message(format!("launching {total} pods"));
    let launches = (1..=total).map(|i| {
        let request = LaunchRequest { name: format!("{}-{i}", request.name), ..request.clone() };
        let (cancel, bar, ready) = (cancel.clone(), bar.clone(), std::sync::Arc::clone(&ready));
        async move {
            let progress = |event: LaunchEvent<'_>| {
                if let LaunchEvent::Created { .. } = event {
                    bar.set_message(format!(
                        "{} of {total} created",
                        ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
                    ));
                }
            };
            session.fleet.launch_with_progress(&request, progress, cancel).await
        }
    });
    let results = futures::future::join_all(launches).await;
    bar.finish_and_clear();
    let (pods, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let pods: Vec<gpucloud::Pod> = pods.into_iter().filter_map(Result::ok).collect();
    let errors: Vec<Error> = errors.into_iter().filter_map(Result::err).collect();
    let interrupted = errors.iter().any(|e| matches!(e, Error::Cancelled));
    if let Some(first) = errors.into_iter().next() {
        if args.allow_partial && !interrupted && !pods.is_empty() {
            eprintln!("gpucloud: warning: {} of {total} pods did not launch: {first}", total - pods.len());
        } else {
            eprintln!("gpucloud: {} of {total} pods ready; terminating them", pods.len());
            for pod in &pods {
                if let Err(e) = session.fleet.terminate(&pod.id).await {
                    eprintln!("gpucloud: error: {}: {e}", pod.id);
                }
            }
            return Err(first);
        }
    }
    if args.json {
        render::print_json(&Value::Array(pods.iter().map(render::pod_json).collect()));
    } else {
        render::pods_table(&pods);
    }
    Ok(())
}

async fn up(cli: &Cli, args: &cli::UpArgs) -> Result<(), Error> {
    let mut request = launch_request(args);
    request.ssh_public_key = args.ssh_key.as_deref().map(read_public_key).transpose()?;
    let mut session = session_waiting_for(cli, &args.providers, Duration::from_secs(2), args.ready.into()).await?;
    if let Some(cap) = args.max_burn {
        session.fleet = session.fleet.with_max_burn(cap);
    }
    if args.pods > 1 {
        return up_many(&session, args, &request).await;
    }
    let (pod, timings) = match launch_timed(&session, &request, args.json).await {
        Err(Error::NoCapacity { attempts }) if attempts.is_empty() => {
            return Err(unknown_gpu(Some(&args.gpu)).unwrap_or(Error::NoCapacity { attempts }));
        }
        other => other?,
    };
    if args.json {
        // The pod, and how long each phase of its launch took (`run --json` has the same keys).
        let mut value = render::pod_json(&pod);
        let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        value["timings_s"] = serde_json::json!({
            "create_accepted": seconds(timings.create_accepted),
            "provider_running": seconds(timings.provider_running),
            "ssh_answering": seconds(timings.ssh_answering),
        });
        render::print_json(&value);
    } else {
        print_pod(&pod, false);
    }
    if !args.json {
        if let Some(ssh) = &pod.ssh {
            eprintln!("ready: {ssh}");
        }
        if let Some(expiry) = pod.lease_expires_at {
            eprintln!(
                "leased until {expiry} (gpucloud reap terminates it after that; extend with: gpucloud extend {} --ttl 2h)",
                pod.id
            );
        }
        let key = args.ssh_key.as_ref().map(|k| format!(" --ssh-key {}", k.display())).unwrap_or_default();
        eprintln!("shell with: gpucloud ssh {}{key}", pod.id);
        eprintln!("terminate with: gpucloud down {}", pod.id);
    }
    Ok(())
}

async fn ls(cli: &Cli, args: &cli::LsArgs) -> Result<(), Error> {
    let only: Vec<Provider> = args.provider.into_iter().collect();
    let session = session(cli, &only, Duration::from_secs(2)).await?;
    let (pods, errors) = session.fleet.list().await;
    if args.json {
        render::print_json(&Value::Array(pods.iter().map(render::pod_json).collect()));
    } else {
        render::pods_table(&pods);
    }
    for (provider, error) in &errors {
        eprintln!("gpucloud: warning: could not list {provider} pods: {error}");
    }
    errors.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))
}

async fn get(cli: &Cli, args: &cli::GetArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let pod = session.fleet.get(&args.pod).await?;
    if args.json {
        render::print_json(&render::pod_json(&pod));
    } else {
        render::pod_details(&pod);
    }
    Ok(())
}

async fn logs(cli: &Cli, args: &cli::LogsArgs) -> Result<(), Error> {
    use futures::StreamExt as _;
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let provisioner = session.fleet.provisioner(args.pod.provider())?;
    let mut lines = provisioner.logs(&args.pod, gpucloud::LogOptions { tail: args.tail, follow: args.follow });
    while let Some(line) = lines.next().await {
        outln!("{}", line?);
    }
    Ok(())
}

/// Runs the system `ssh` for the pod, replacing this process where the platform allows.
async fn ssh(cli: &Cli, args: &cli::SshArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let pod = session.fleet.get(&args.pod).await?;
    let Some(endpoint) = pod.ssh.as_ref().filter(|_| pod.is_ready()) else {
        return Err(Error::InvalidInput {
            field: "pod",
            message: format!(
                "{} is not ready for SSH yet (it is {}); `gpucloud get {}` shows when it is",
                pod.id, pod.status, pod.id
            ),
        });
    };
    let mut command = std::process::Command::new("ssh");
    // Pods come and go on reused addresses: each pod's host key lives in a known-hosts file of
    // its own (never the user's), trusted on first contact and required to match after that
    // (accept-new alone only warns about a changed key).
    let (known_hosts, check) = remote::known_hosts(&pod.id);
    command.args(["-p", &endpoint.port.to_string(), "-o"]);
    command.arg(format!("StrictHostKeyChecking={}", check.ssh_option()));
    command.arg("-o").arg(format!("UserKnownHostsFile={}", known_hosts.display()));
    if let Some(private) = remote::private_key(args.ssh_key.as_deref()) {
        command.arg("-i").arg(private);
    }
    command.arg(format!("{}@{}", endpoint.user, endpoint.host));
    if !args.command.is_empty() {
        command.arg("--").args(&args.command);
    }
    let cannot = |e: std::io::Error| Error::Config { provider: pod.provider, message: format!("cannot run ssh: {e}") };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        Err(cannot(command.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().map_err(cannot)?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

async fn ssh_keys(cli: &Cli, command: &SshKeysCommand) -> Result<(), Error> {
    match command {
        SshKeysCommand::Ls { provider, json } => {
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            let mut keys = Vec::new();
            for provisioner in session.fleet.provisioners() {
                keys.extend(provisioner.list_ssh_keys().await?);
            }
            if *json {
                render::print_json(&serde_json::to_value(&keys).unwrap_or(Value::Null));
            } else {
                render::ssh_keys_table(&keys);
            }
        }
        SshKeysCommand::Add { path, provider } => {
            let public_key = read_public_key(path)?;
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            for provisioner in session.fleet.provisioners() {
                let key = provisioner.ensure_ssh_key(&public_key).await?;
                outln!("{}: registered{}", key.provider, key.id.map(|id| format!(" as {id}")).unwrap_or_default());
            }
        }
    }
    Ok(())
}

async fn teams(cli: &Cli, args: &cli::TeamsArgs) -> Result<(), Error> {
    let session = session(cli, &[Provider::PrimeIntellect], Duration::from_secs(2)).await?;
    let client = session.primeintellect.as_ref().ok_or(Error::MissingCredentials {
        provider: Provider::PrimeIntellect,
        variable: gpucloud::primeintellect::API_KEY_ENV,
    })?;
    let teams = client.teams().await?;
    if args.json {
        render::print_json(&serde_json::to_value(&teams).unwrap_or(Value::Null));
    } else {
        render::teams_table(&teams);
    }
    Ok(())
}

/// `stop` / `start`: each pod in turn; the first failure is the exit status, after the rest.
async fn stop_or_start(cli: &Cli, args: &cli::DownArgs, stop: bool) -> Result<(), Error> {
    let mut providers: Vec<Provider> = args.pods.iter().map(|p| p.provider()).collect();
    providers.dedup();
    let session = session(cli, &providers, Duration::from_secs(2)).await?;
    let mut first_error = None;
    for id in &args.pods {
        let done = if stop { session.fleet.stop(id).await } else { session.fleet.start(id).await };
        match done {
            Ok(()) => outln!("{} {id}", if stop { "stopped" } else { "started" }),
            Err(e) => {
                eprintln!("gpucloud: error: {id}: {e}");
                if let Error::Unsupported { provider: Provider::PrimeIntellect, .. } = e {
                    eprintln!(
                        "hint: PrimeIntellect pods only run or end: terminate it (gpucloud down {id}), keeping data on a disk attached with --volume, and relaunch next to the disk with gpucloud up --volume DISK"
                    );
                }
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `start --or-redeploy`: each pod in turn; the first failure is the exit status, after the rest.
async fn start_or_redeploy(cli: &Cli, args: &cli::StartArgs) -> Result<(), Error> {
    use gpucloud::redeploy::{Replaced, StartOutcome};
    let session = session(cli, &[Provider::RunPod], Duration::from_secs(2)).await?;
    let mut first_error = None;
    for id in &args.pods {
        match session.fleet.start_or_redeploy(id).await {
            Ok(StartOutcome::Started) => outln!("started {id}"),
            Ok(StartOutcome::Redeployed { pod, replaced }) => {
                let ssh = pod.ssh.as_ref().map(|s| format!(" (ssh {}@{} -p {})", s.user, s.host, s.port));
                outln!("{id}'s host has no free GPU: redeployed as {}{}", pod.id, ssh.unwrap_or_default());
                match replaced {
                    Replaced::Terminated(old) => outln!("terminated {old}"),
                    Replaced::KeptStopped { id, reason } => eprintln!("gpucloud: kept {id} stopped: {reason}"),
                    Replaced::TerminateFailed { id, error } => {
                        eprintln!(
                            "gpucloud: error: {id} was not terminated: {error} (it bills for its disk; gpucloud down {id})"
                        );
                        first_error.get_or_insert(error);
                    }
                    other => outln!("{other:?}"),
                }
            }
            Ok(other) => outln!("{id}: {other:?}"),
            Err(e) => {
                eprintln!("gpucloud: error: {id}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn down(cli: &Cli, args: &cli::DownArgs) -> Result<(), Error> {
    let mut providers: Vec<Provider> = args.pods.iter().map(|p| p.provider()).collect();
    providers.dedup();
    let session = session(cli, &providers, Duration::from_secs(2)).await?;
    let mut first_error = None;
    for id in &args.pods {
        // Terminating is idempotent; reading first tells the user whether there was anything to do.
        match session.fleet.get(id).await {
            Ok(pod) if pod.status == gpucloud::PodStatus::Terminated => {
                outln!("{id}: already terminated");
                continue;
            }
            Err(e) if e.is_not_found() => {
                outln!("{id}: no such pod (already gone, or never existed)");
                continue;
            }
            _ => {}
        }
        match session.fleet.terminate(id).await {
            Ok(()) => outln!("terminated {id}"),
            Err(e) => {
                eprintln!("gpucloud: error: {id}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn extend(cli: &Cli, args: &cli::ExtendArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let pod = session.fleet.extend_lease(&args.pod, args.ttl).await?;
    print_pod(&pod, args.json);
    Ok(())
}

async fn reap(cli: &Cli, args: &cli::ReapArgs) -> Result<(), Error> {
    let only: Vec<Provider> = args.provider.into_iter().collect();
    let session = session(cli, &only, Duration::from_secs(2)).await?;
    let policy = gpucloud::ReapPolicy {
        prefix: args.prefix.clone(),
        older_than: args.older_than,
        dry_run: args.dry_run,
        idle: args.idle_below.zip(args.idle_for).map(|(below, window)| {
            let rule = gpucloud::idle::IdleRule::new(below, window);
            if args.idle_over_ssh {
                let identity_file = remote::private_key(args.ssh_key.as_deref());
                rule.over_ssh(gpucloud::remote::SessionOptions { identity_file, ..Default::default() })
            } else {
                rule
            }
        }),
    };
    let sweep = || async {
        let report = session.fleet.reap(&policy).await?;
        if args.json {
            let value = render::reap_json(&report);
            match args.every {
                // One sweep per line, for log collectors.
                Some(_) => outln!("{value}"),
                None => render::print_json(&value),
            }
        } else {
            render::reap_summary(&report);
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
                report(&e);
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

async fn volumes(cli: &Cli, command: &VolumesCommand) -> Result<(), Error> {
    match command {
        VolumesCommand::Ls { provider, json } => {
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            let mut all = Vec::new();
            for provisioner in session.fleet.provisioners() {
                all.extend(provisioner.list_volumes().await?);
            }
            if *json {
                render::print_json(&Value::Array(all.iter().map(render::volume_json).collect()));
            } else {
                render::volumes_table(&all);
            }
        }
        VolumesCommand::Create { provider, name, size, data_center, via, json } => {
            let session = session(cli, &[*provider], Duration::from_secs(2)).await?;
            let spec = VolumeSpec {
                name: name.clone(),
                size_gb: *size,
                data_center: data_center.clone(),
                provider_type: via.clone(),
                ..VolumeSpec::default()
            };
            let volume = session.fleet.provisioner(*provider)?.create_volume(&spec).await?;
            if *json {
                render::print_json(&render::volume_json(&volume));
            } else {
                render::volumes_table(std::slice::from_ref(&volume));
            }
        }
        VolumesCommand::Rm { provider, id } => {
            let session = session(cli, &[*provider], Duration::from_secs(2)).await?;
            session.fleet.provisioner(*provider)?.delete_volume(id).await?;
            outln!("deleted {provider} volume {id}");
        }
    }
    Ok(())
}

async fn emulator(args: &cli::EmulatorArgs) -> Result<(), Error> {
    let faults = gpucloud_emulator::FaultConfig {
        rate: args.fault_rate,
        kinds: if args.faults.is_empty() { gpucloud_emulator::FaultKind::ALL.to_vec() } else { args.faults.clone() },
        latency: Duration::from_millis(args.latency_ms),
        ..gpucloud_emulator::FaultConfig::default()
    };
    let config = gpucloud_emulator::EmulatorConfig {
        api_key: args.api_key.clone(),
        seed: args.seed,
        ready_delay: Duration::from_secs_f64(args.ready_delay.max(0.0)),
        faults,
        port: args.port,
        quota: args.quota.clone(),
        installation_time: Duration::from_secs_f64(args.installation_time.max(0.0)),
        check_responses: false,
        log_requests: args.log_requests.clone(),
    };
    let emulator = gpucloud_emulator::Emulator::start(config).await.map_err(|e| Error::Config {
        provider: Provider::PrimeIntellect,
        message: format!("cannot listen on port {} or open the request log: {e}", args.port),
    })?;
    // A server keeps serving when whoever read its banner goes away: write errors are ignored.
    let banner = format!(
        "gpucloud emulator listening on {0}\n  export PRIME_API_BASE_URL={0} RUNPOD_API_BASE_URL={0}\n  export PRIME_API_KEY={1} RUNPOD_API_KEY={1}\n  state: curl {0}/_emulator/state     (Ctrl-C stops)\n",
        emulator.base_url(),
        args.api_key
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}

/// A throwaway Ed25519 key pair for the demo: the private half in a fresh temporary file (mode
/// 0600, removed when the demo ends) and the public key line.
fn throwaway_key() -> Result<(std::path::PathBuf, String), Error> {
    let failed = |e: &dyn std::fmt::Display| Error::InvalidInput {
        field: "ssh_public_key",
        message: format!("generating a demo key: {e}"),
    };
    let key = ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| failed(&e))?;
    let public = key.public_key().to_openssh().map_err(|e| failed(&e))?;
    let dir = std::env::temp_dir().join(format!("gpucloud-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| failed(&e))?;
    let path = dir.join("id_ed25519");
    key.write_openssh_file(&path, ssh_key::LineEnding::LF).map_err(|e| failed(&e))?;
    Ok((path, format!("{public} gpucloud-demo-throwaway")))
}

async fn demo(args: &cli::DemoArgs) -> Result<(), Error> {
    let ready_delay = Duration::from_secs_f64(args.ready_delay.max(0.0));
    let session = setup::emulated(&[], ready_delay, None, gpucloud::Readiness::default()).await?;
    // On-demand capacity only, as `gpucloud up` launches by default. A new emulated account has
    // no SSH key, and a RunPod pod created without one has no SSH access (the document's
    // `startSsh`), so the demo brings a throwaway key, removed when it ends.
    let (key, public) = throwaway_key()?;
    let result = demo_with_key(&session, args, &key, public).await;
    if let Some(dir) = key.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn demo_with_key(
    session: &Session,
    args: &cli::DemoArgs,
    key: &std::path::Path,
    public: String,
) -> Result<(), Error> {
    let mut request = LaunchRequest::new(args.gpu.clone(), 1, "demo");
    request.ssh_public_key = Some(public);
    let results = session.fleet.offers(&request.query).await;
    outln!("On-demand offers for 1x {} from both clouds, cheapest first:", args.gpu);
    render::offers_table(&results.offers.iter().take(6).cloned().collect::<Vec<_>>());
    let pod = launch(session, &request, false).await?;
    outln!("\nLaunched the cheapest offer:");
    render::pods_table(std::slice::from_ref(&pod));
    match &pod.ssh {
        Some(ssh) => outln!("SSH endpoint: {ssh}"),
        None => outln!("SSH endpoint: (not reported)"),
    }
    // A command on the pod over SSH, as `gpucloud run` and `exec` do (with the system ssh).
    let ran = async {
        let options = gpucloud::remote::SessionOptions { identity_file: Some(key.to_path_buf()), ..Default::default() };
        let remote = gpucloud::remote::RemoteSession::connect(&pod, &options).await?;
        let command = gpucloud::remote::RemoteCommand::script(
            "echo hello from the pod; nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits",
        );
        let result = remote
            .run(&command, &mut |line| {
                outln!(
                    "  pod> {}",
                    match line {
                        gpucloud::remote::OutputLine::Stdout(text) | gpucloud::remote::OutputLine::Stderr(text) => text,
                    }
                )
            })
            .await;
        let _ = remote.close().await;
        result
    };
    if std::process::Command::new("ssh").arg("-V").output().is_ok() {
        outln!("Ran a command on it over SSH:");
        match ran.await {
            Ok(result) => outln!("  (exit status {})", result.exit_code),
            Err(e) => outln!("  could not: {e}"),
        }
    } else {
        outln!("(no ssh client here: skipped running a command on the pod)");
    }
    session.fleet.terminate(&pod.id).await?;
    let left = session.emulator.as_ref().map(|e| e.live_pods().len()).unwrap_or(0);
    outln!("Terminated {} (confirmed); pods left on the emulator: {left}", pod.id);
    Ok(())
}

async fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Offers(args) => offers(cli, args).await,
        Command::Up(args) => up(cli, args).await,
        Command::Ls(args) => ls(cli, args).await,
        Command::Get(args) => get(cli, args).await,
        Command::Down(args) => down(cli, args).await,
        Command::Stop(args) => stop_or_start(cli, args, true).await,
        Command::Start(args) if args.or_redeploy => start_or_redeploy(cli, args).await,
        Command::Start(args) => stop_or_start(cli, &cli::DownArgs { pods: args.pods.clone() }, false).await,
        Command::Extend(args) => extend(cli, args).await,
        Command::Reap(args) => reap(cli, args).await,
        Command::Run(args) => {
            let mut request = launch_request(&args.up);
            request.ssh_public_key = args.up.ssh_key.as_deref().map(read_public_key).transpose()?;
            let mut session =
                session_waiting_for(cli, &args.up.providers, Duration::from_secs(2), args.up.ready.into()).await?;
            if let Some(cap) = args.up.max_burn {
                session.fleet = session.fleet.with_max_burn(cap);
            }
            let code = remote::run(&session, args, request).await?;
            REMOTE_EXIT.store(code, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        Command::Exec(args) => {
            let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
            let code = remote::exec(&session, args).await?;
            REMOTE_EXIT.store(code, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        Command::Cp(args) => {
            let session = session(cli, &[], Duration::from_secs(2)).await?;
            remote::cp(&session, args).await
        }
        Command::SshConfig(args) => {
            let only: Vec<Provider> = args.pod.iter().map(|p| p.provider()).collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            remote::ssh_config(&session, args).await
        }
        Command::Cost(args) => {
            let session = session(cli, &args.providers, Duration::from_secs(2)).await?;
            cost::report(&session.fleet, args).await
        }
        Command::Teams(args) => teams(cli, args).await,
        Command::Ssh(args) => ssh(cli, args).await,
        Command::Logs(args) => logs(cli, args).await,
        Command::SshKeys(command) => ssh_keys(cli, command).await,
        Command::Volumes(command) => volumes(cli, command).await,
        Command::Emulator(args) => emulator(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "gpucloud", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The exit status `run` and `exec` leave with: the remote command's.
static REMOTE_EXIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "gpucloud=info,warn",
        2 => "gpucloud=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPUCLOUD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a person at a terminal: never in a log file or pipe, never with NO_COLOR.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gpucloud: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        // `run` and `exec` leave with the remote command's exit status.
        Ok(()) => ExitCode::from(REMOTE_EXIT.load(std::sync::atomic::Ordering::SeqCst)),
        Err(error) => {
            report(&error);
            ExitCode::from(exit_code(&error))
        }
    }
}
