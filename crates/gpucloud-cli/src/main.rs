//! `gpucloud`: the command-line face of the gpucloud SDK. See `gpucloud --help`.
//!
//! This file parses and dispatches; each command group lives in a module of its own (`offers`,
//! `launch` for `up`, `pods`, `accounts`, `reap`, `cost`, `remote` for run/exec/cp/ssh-config,
//! `emulator` for `emulator` and `demo`), over `setup` (sessions), `render` and `exit`.

mod accounts;
mod cli;
mod cost;
mod emulator;
mod exit;
mod jobs;
mod launch;
mod offers;
mod pods;
mod reap;
mod remote;
mod render;
mod setup;
mod signals;

use clap::Parser;
use cli::{Cli, Command};
use gpucloud::{Error, Provider};
use std::process::ExitCode;
use std::time::Duration;

/// Dispatches the parsed command to its module.
async fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Offers(args) => offers::offers(cli, args).await,
        Command::Up(args) => launch::up(cli, args).await,
        Command::Ls(args) => pods::ls(cli, args).await,
        Command::Get(args) => pods::get(cli, args).await,
        Command::Down(args) => pods::down(cli, args).await,
        Command::Stop(args) => pods::stop(cli, args).await,
        Command::Start(args) if args.or_redeploy => pods::start_or_redeploy(cli, args).await,
        Command::Start(args) => pods::start(cli, args).await,
        Command::Extend(args) => pods::extend(cli, args).await,
        Command::Reap(args) => reap::reap(cli, args).await,
        Command::Run(args) => {
            launch::check_spot(&args.up)?;
            if args.detach && args.checkpoint_dir.is_some() && args.recover == 0 {
                return Err(gpucloud::Error::InvalidInput {
                    field: "checkpoint-dir",
                    message: "--checkpoint-dir with --detach needs --recover N: a detached job's checkpoints are pulled and carried only by its recoverers (`jobs wait --recover`, `reap --every --recover`)".into(),
                });
            }
            // What `run` cannot do with these flags is refused before any request.
            remote::check_run_flags(args)?;
            let mut request = launch::launch_request(&args.up);
            request.ssh_public_key = args.up.ssh_key.as_deref().map(launch::read_public_key).transpose()?;
            let limits = setup::Limits { max_burn: args.up.max_burn, usd_per_eur: args.up.usd_per_eur };
            let session =
                setup::limited_session(cli, &args.up.providers, Duration::from_secs(2), args.up.ready.into(), limits)
                    .await?;
            if args.detach {
                return jobs::submit(&session, args, request).await;
            }
            let code = match args.up.nodes {
                Some(nodes) => remote::run_cluster(&session, args, nodes).await?,
                None => remote::run(&session, args, request).await?,
            };
            REMOTE_EXIT.store(code, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        Command::Jobs(command) => {
            let only: Vec<Provider> = match command {
                cli::JobsCommand::Ls { providers, .. } => providers.clone(),
                // A recovery may relaunch the job on any cloud its launch allows.
                cli::JobsCommand::Wait { recover: true, .. } => Vec::new(),
                cli::JobsCommand::Logs { id, .. }
                | cli::JobsCommand::Wait { id, .. }
                | cli::JobsCommand::Download { id, .. }
                | cli::JobsCommand::Cancel { id, .. } => vec![jobs::resolve(id).provider()],
            };
            let session = setup::session(cli, &only, Duration::from_secs(2)).await?;
            let code = jobs::jobs(&session, command).await?;
            REMOTE_EXIT.store(code, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        Command::Exec(args) => {
            let session = setup::session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
            let code = remote::exec(&session, args).await?;
            REMOTE_EXIT.store(code, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        Command::Cp(args) => {
            let session = setup::session(cli, &[], Duration::from_secs(2)).await?;
            remote::cp(&session, args).await
        }
        Command::SshConfig(args) => {
            let only: Vec<Provider> = args.pod.iter().map(|p| p.provider()).collect();
            let session = setup::session(cli, &only, Duration::from_secs(2)).await?;
            remote::ssh_config(&session, args).await
        }
        Command::Cost(args) => {
            let session = setup::session(cli, &args.providers, Duration::from_secs(2)).await?;
            cost::report(&session.fleet, args).await
        }
        Command::Teams(args) => accounts::teams(cli, args).await,
        Command::Ssh(args) => pods::ssh(cli, args).await,
        Command::Logs(args) => pods::logs(cli, args).await,
        Command::SshKeys(command) => accounts::ssh_keys(cli, command).await,
        Command::Volumes(command) => accounts::volumes(cli, command).await,
        Command::Emulator(args) => emulator::emulator(args).await,
        Command::Demo(args) => emulator::demo(args).await,
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "gpucloud", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The exit status `run` and `exec` leave with: the remote command's.
pub(crate) static REMOTE_EXIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

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
    // Host keys and sync manifests kept for a pod go when any command confirms its end.
    gpucloud::remote::forget_terminated_pods();
    match runtime.block_on(run(&cli)) {
        // `run` and `exec` leave with the remote command's exit status.
        Ok(()) => ExitCode::from(REMOTE_EXIT.load(std::sync::atomic::Ordering::SeqCst)),
        Err(error) => {
            exit::report(&error);
            ExitCode::from(exit::exit_code(&error))
        }
    }
}
