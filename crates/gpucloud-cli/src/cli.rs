//! Command-line syntax.

use clap::{Args, Parser, Subcommand};
use gpucloud::Provider;

/// GPU machines on PrimeIntellect and RunPod, through one command.
///
/// Credentials: PRIME_API_KEY and RUNPOD_API_KEY (each provider whose key is set is used).
/// Endpoints: PRIME_API_BASE_URL and RUNPOD_API_BASE_URL (server roots). --emulator (or
/// GPUCLOUD_EMULATOR=1) runs everything against a built-in emulator instead: nothing is real.
///
/// Exit codes: 0 ok, 1 error, 2 bad usage or input (or a request over a size limit), 3 credentials or authentication,
/// 4 no capacity, 5 timeout, 6 over budget, 7 (`run`) the job's pod could not be confirmed
/// terminated (it may still be billing), whatever the command or the job did, 8 (`run`, `jobs wait`)
/// the job's spot pod was interrupted and no recovery was allowed or left; a launch stopped by a
/// signal cleans up, then exits 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
/// `run` and `exec` otherwise exit with the remote command's status (127 included: the shell's
/// "not found", with a hint on stderr).
#[derive(Debug, Parser)]
#[command(name = "gpucloud", version, propagate_version = true)]
pub struct Cli {
    /// Use a built-in, in-process emulator of both clouds instead of the real APIs.
    #[arg(long, global = true, env = "GPUCLOUD_EMULATOR", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub emulator: bool,

    /// Allow plain-http base URLs for hosts other than loopback (the API key would travel unencrypted).
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,

    /// PrimeIntellect team to act for: pods and volumes are created for it and paid from its
    /// wallet (see `gpucloud teams`).
    #[arg(long, global = true, env = "PRIME_TEAM_ID", hide_env_values = true)]
    pub team: Option<String>,

    /// Log what the SDK does (retries, reconciliations) to stderr; repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How long a termination may take to be confirmed (the provider lists the pod as
    /// terminated or gone) before the command gives up and says so (exit 7 where the pod may
    /// still bill).
    #[arg(long, global = true, env = "GPUCLOUD_CONFIRM_TIMEOUT", value_parser = parse_duration, default_value = "3m")]
    pub confirm_timeout: std::time::Duration,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List live offers from every configured provider, cheapest first.
    Offers(OffersArgs),
    /// Launch a pod: cheapest matching offer first, failing over; wait until it is ready.
    Up(UpArgs),
    /// List pods.
    Ls(LsArgs),
    /// Show one pod (POD is provider:id).
    Get(GetArgs),
    /// Terminate pods (POD is provider:id) and wait for the termination to be confirmed.
    Down(DownArgs),
    /// Stop pods (RunPod). Compute stops billing; a pod volume still bills. The container disk
    /// is wiped when the pod starts again: files not on a volume are lost (asks for --yes when
    /// a pod has no volume and stdin is not a terminal).
    Stop(StopArgs),
    /// Start stopped pods (RunPod): on the host they ran on, which may have no free GPU.
    Start(StartArgs),
    /// Set a pod's lease to expire TTL from now (RunPod; PrimeIntellect pods cannot be renamed).
    Extend(ExtendArgs),
    /// Terminate every pod whose lease has expired (and, with --prefix, old pods so named).
    ///
    /// The lease is written in the pod's name, so the provider's pod list is the only state: run
    /// this anywhere the API keys are, on a schedule (--every, a systemd timer, a CronJob).
    /// Pods without an expired gpucloud lease are never touched unless --prefix names them (or
    /// --idle-below finds them idle past their grace). A RunPod pod marked locked is never
    /// stopped or terminated by any rule; it is listed as left, with why.
    Reap(ReapArgs),
    /// What was spent in the window: RunPod's account-wide billing (pods, volumes, clusters, the
    /// rest as "other"), PrimeIntellect's history (each ended resource by the share of its life in
    /// the window), plus an estimate for running pods and live PrimeIntellect disks.
    Cost(CostArgs),
    /// Print a pod's log (the last --tail lines; --follow keeps printing new ones).
    Logs(LogsArgs),
    /// Open a shell on a pod (or run COMMAND there) with the system `ssh`.
    Ssh(SshArgs),
    /// Run a job: launch a pod (as `up`), sync --workdir to it, run --setup and COMMAND with
    /// their output streamed, copy --download results back, terminate the pod (unless --keep).
    /// Output is passed through byte for byte. Every --download is attempted; failures are listed
    /// together. Exits with COMMAND's exit status (1 when it was 0 but a download failed; 7 when
    /// the pod's termination could not be confirmed; gpucloud's own codes when the launch fails).
    Run(Box<RunArgs>),
    /// Detached jobs (`run --detach`): list, logs, wait, download, cancel.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Run COMMAND on a running pod over SSH, output streamed; exits with its exit status.
    Exec(ExecArgs),
    /// Copy files or directories to or from a pod: one side is POD:PATH (POD as provider:id);
    /// the other is a local path. DST is a directory that SRC is copied into.
    Cp(CpArgs),
    /// Print an OpenSSH `Host` block per running pod (or for POD), for editors and IDEs that
    /// connect over SSH: direct endpoint, user, key, and the pod's known-hosts file.
    #[command(name = "ssh-config")]
    SshConfig(SshConfigArgs),
    /// SSH public keys registered with the providers.
    #[command(subcommand, name = "ssh-keys")]
    SshKeys(SshKeysCommand),
    /// PrimeIntellect teams you belong to (their ids go to --team or PRIME_TEAM_ID).
    Teams(TeamsArgs),
    /// Network volumes (PrimeIntellect disks, RunPod network volumes).
    #[command(subcommand)]
    Volumes(VolumesCommand),
    /// Run the emulator as a standalone server until interrupted.
    #[command(after_help = gpucloud_emulator::COVERAGE)]
    Emulator(EmulatorArgs),
    /// Print a shell completion script: `gpucloud completions bash > /etc/bash_completion.d/gpucloud`.
    Completions(CompletionsArgs),
    /// The whole job on the built-in emulator: offers from both clouds, launch the cheapest,
    /// wait with progress, show its SSH endpoint, run a command on it over SSH, terminate it.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct OffersArgs {
    /// GPU model, any spelling (H100_80GB, "NVIDIA H100 80GB HBM3", "H100 SXM", ...).
    #[arg(long)]
    pub gpu: Option<String>,
    /// GPUs per pod.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub count: Option<u32>,
    /// Only these providers (primeintellect, runpod); repeatable.
    #[arg(long = "provider", value_parser = parse_provider)]
    pub providers: Vec<Provider>,
    /// Highest price per hour, USD.
    #[arg(long, value_parser = parse_price)]
    pub max_price: Option<f64>,
    /// Only spot (interruptible) offers.
    #[arg(long, conflicts_with = "on_demand")]
    pub spot: bool,
    /// Only on-demand offers.
    #[arg(long)]
    pub on_demand: bool,
    /// Regions, repeatable: a PrimeIntellect region (eu_west), a RunPod data center or prefix
    /// (US-KS-2, EU), a country (DE) or a continent (europe); see the README.
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Also list/launch offers with prepaid hours (charged in full at create).
    #[arg(long)]
    pub allow_prepaid: bool,
    /// Only offers that can attach this volume (its provider, where it is).
    #[arg(long)]
    pub volume: Option<String>,
    /// Cluster offers of this many nodes (2-250), each with --count GPUs, ranked by price per
    /// GPU-hour: RunPod clusters and PrimeIntellect multi-node offers, each launchable with
    /// up --nodes. --max-price is then for all nodes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=250), conflicts_with = "volume")]
    pub nodes: Option<u32>,
    /// Every shape of this many GPUs in one list, ranked by price per GPU-hour: one node with
    /// them all, and clusters of every node count that divides them (2-64 nodes), e.g. 1x8,
    /// 2x4, 4x2 for 8. Launch one with up --count C [--nodes N].
    #[arg(
        long,
        value_parser = clap::value_parser!(u32).range(1..=2048),
        conflicts_with_all = ["count", "nodes", "volume"]
    )]
    pub total_gpus: Option<u32>,
    /// Show at most this many offers.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Include offers reported as out of stock.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `run --on-member-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnMemberFailure {
    /// Stop, delete the cluster, fail.
    Abort,
    /// Delete the cluster and run the job again on a new one (at most --recreate-max times).
    Recreate,
}

/// `run --download-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DownloadFrom {
    /// Rank 0 only.
    #[value(alias = "rank0", alias = "0")]
    Primary,
    /// Every node, each into LOCAL/node-<rank>/.
    All,
}

impl From<DownloadFrom> for gpucloud::jobs::cluster::DownloadFrom {
    fn from(from: DownloadFrom) -> Self {
        match from {
            DownloadFrom::Primary => Self::Primary,
            DownloadFrom::All => Self::All,
        }
    }
}

/// `up --ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ready {
    /// The SSH endpoint answers with a banner.
    Ssh,
    /// The provider reports the pod running.
    Status,
}

impl From<Ready> for gpucloud::Readiness {
    fn from(ready: Ready) -> Self {
        match ready {
            Ready::Ssh => gpucloud::Readiness::SshBanner,
            Ready::Status => gpucloud::Readiness::Status,
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// GPU model, any spelling.
    #[arg(long)]
    pub gpu: String,
    /// GPUs per pod.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub count: u32,
    /// Only these providers; repeatable.
    #[arg(long = "provider", value_parser = parse_provider)]
    pub providers: Vec<Provider>,
    /// Image (PrimeIntellect: one of the offer's images, e.g. ubuntu_22_cuda_12; RunPod: a container image).
    #[arg(long)]
    pub image: Option<String>,
    /// Pod name (a unique launch tag is appended).
    #[arg(long, default_value = "gpucloud")]
    pub name: String,
    /// Disk size in GB.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub disk: Option<u32>,
    /// Highest price per hour, USD.
    #[arg(long, value_parser = parse_price)]
    pub max_price: Option<f64>,
    /// The most the pod may cost in all, USD: with --ttl, offers whose worst case passes it are
    /// not tried; without, it sets the lease (what it buys at the offer's worst hourly price). A
    /// variable-price offer's worst is its maxPrice (--max-price, or its price plus 10%).
    #[arg(long, env = "GPUCLOUD_BUDGET_USD", value_parser = parse_price)]
    pub budget: Option<f64>,
    /// Refuse the create if all live pods would then burn more than this, USD per hour: every
    /// pod (any client's) of every provider whose API key is set, whatever --provider selects,
    /// each at the rate it will bill (a provisioning pod at its running price, a stopped one at
    /// its disk rate). A provider whose pods cannot be read refuses the create. gpucloud
    /// processes on this machine take turns through a ledger in the state directory, so parallel
    /// launches cannot pass the cap together; processes on other machines are not covered.
    #[arg(long, env = "GPUCLOUD_MAX_BURN_USD_PER_HOUR", value_parser = parse_price)]
    pub max_burn: Option<f64>,
    /// US dollars per euro, to compare EUR-priced offers and pods with --budget and --max-burn;
    /// without it they never are (a capped create of one is refused, saying why).
    #[arg(long, env = "GPUCLOUD_USD_PER_EUR", value_parser = parse_price)]
    pub usd_per_eur: Option<f64>,
    /// Never let the idle reaper (reap --idle-below) judge this pod: for work its GPUs do not
    /// show, such as an interactive session. Its lease still applies. `run` sets it by itself.
    #[arg(long)]
    pub no_idle_reap: bool,
    /// RunPod: only hosts whose driver offers at least this CUDA version (major.minor, e.g.
    /// 12.4); the default image asks for 12.4 by itself.
    #[arg(long)]
    pub min_cuda: Option<String>,
    /// Seconds to wait for the pod to be ready; past that it is terminated.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Return as soon as the pod is created, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// Launch this many pods at once (named NAME-1 ... NAME-N); unless all become ready, all
    /// are terminated (see --allow-partial).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pods: u32,
    /// RunPod: launch one cluster of this many nodes (2-250; RunPod's self-serve Instant
    /// Clusters are 2-8), each with --count GPUs, in one data center: all or nothing (a node
    /// that fails, never starts, or the --timeout deletes the whole cluster). With --ssh-key the
    /// hostfile and ~/.gpucloud/env are written on every node. --max-price is for all nodes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=250), conflicts_with_all = ["pods", "no_wait", "volumes", "spot"])]
    pub nodes: Option<u32>,
    /// With --pods: keep the pods that became ready even if others did not.
    #[arg(long, requires = "pods")]
    pub allow_partial: bool,
    /// Allow spot (interruptible) offers, PrimeIntellect's (RunPod has none): the cheapest
    /// offer wins, spot or not; by default only on-demand capacity is launched.
    #[arg(long)]
    pub spot: bool,
    /// SSH public key to log in with (its file, or the private key's path with the .pub beside it):
    /// registered with the provider first if it is not yet.
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
    /// What "ready" means: `ssh` (the pod's SSH endpoint answers; a RunPod account must hold an
    /// SSH key, or --ssh-key gives one) or `status` (the provider says running; for images
    /// without SSH).
    #[arg(long, value_enum, default_value_t = Ready::Ssh)]
    pub ready: Ready,
    /// Environment variable for the pod, KEY=VALUE; repeatable.
    #[arg(long = "env", value_parser = parse_env_var)]
    pub env: Vec<(String, String)>,
    /// Volume to attach (PrimeIntellect disk id; RunPod network volume id, at most one); repeatable.
    #[arg(long = "volume")]
    pub volumes: Vec<String>,
    /// Regions, repeatable: a PrimeIntellect region (eu_west), a RunPod data center or prefix
    /// (US-KS-2, EU), a country (DE) or a continent (europe); see the README.
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Also list/launch offers with prepaid hours (charged in full at create).
    #[arg(long)]
    pub allow_prepaid: bool,
    /// Lease: the pod may live this long (e.g. 8h, 90m, 1h30m) before `gpucloud reap` terminates it.
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Option<std::time::Duration>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// provider:id.
    #[arg(value_parser = parse_pod_id)]
    pub pod: gpucloud::PodId,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// How many recent lines to start with.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=5000))]
    pub tail: u32,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// provider:id.
    #[arg(value_parser = parse_pod_id)]
    pub pod: gpucloud::PodId,
    /// Private key to log in with (passed to ssh as -i; a .pub path means its private key).
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
    /// Command to run instead of a shell (after --).
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// A local directory to sync to the pod first: what git ignores (.gitignore,
    /// .git/info/exclude, the global excludes file) and .gpucloudignore rules left out, and
    /// secret files (.env*, *.pem, *.key, SSH private keys, credentials) unless named with `!PATH`
    /// in .gpucloudignore; links inside sent as links, links leading out reported and left out;
    /// rsync when both sides have it, else tar.
    #[arg(long)]
    pub workdir: Option<std::path::PathBuf>,
    /// The directory the job runs in on the pod (relative to the login directory).
    #[arg(long, default_value = gpucloud::jobs::DEFAULT_REMOTE_DIR)]
    pub remote_dir: String,
    /// A shell script to run before COMMAND (its failure ends the job).
    #[arg(long)]
    pub setup: Option<String>,
    /// REMOTE:LOCAL, repeatable: copy REMOTE (relative to --remote-dir) into the local
    /// directory LOCAL after COMMAND, whatever its exit status.
    #[arg(long = "download", value_parser = parse_download)]
    pub downloads: Vec<(String, std::path::PathBuf)>,
    /// With --nodes: download from rank 0 (`primary`, the default) into LOCAL, or from every
    /// node (`all`), each into LOCAL/node-<rank>/. Every download is attempted; failures are
    /// reported per node and never cost the other results.
    #[arg(long, value_enum, default_value = "primary")]
    pub download_from: DownloadFrom,
    /// With --nodes: where each node's output (setup and command, both streams, as they came)
    /// is also written, as DIR/node-<rank>.log (default: the state directory's
    /// logs/<name>-<UTC time>/, printed at the start).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<std::path::PathBuf>,
    /// With --nodes: when a member leaves RUNNING while the job runs (a node that died), `abort`
    /// (the default: every node stopped, the cluster deleted, exit 1) or `recreate` (the cluster
    /// deleted and confirmed, the whole job run again on a new cluster, at most --recreate-max
    /// times; then as abort). A node's command failing always aborts.
    #[arg(long, value_enum, default_value = "abort")]
    pub on_member_failure: OnMemberFailure,
    /// With --on-member-failure recreate: how many new clusters at most (default 1).
    #[arg(long, value_name = "K")]
    pub recreate_max: Option<u32>,
    /// Keep the pod running afterwards once COMMAND ran, whatever its status and the downloads
    /// (it is still terminated when the job fails before COMMAND ran, on a signal, or past
    /// --deadline).
    #[arg(long)]
    pub keep: bool,
    /// The whole job's deadline (e.g. 2h); past it, the pod (with --nodes, the cluster) is
    /// terminated (exit 5). It is also written into the pod's (cluster's) name as a lease of the
    /// deadline plus 10 minutes (or --ttl when shorter), so `gpucloud reap` ends it if this
    /// process is killed.
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// Start COMMAND under a supervisor on the pod and return at once, printing the job's id
    /// (the pod's id; `--json`: an object with `id`). It survives this process and the SSH
    /// connection. Follow it with `gpucloud jobs logs|wait|download|cancel ID`. On RunPod a
    /// watchdog on the pod ends the pod --linger after COMMAND ends (never with --keep) and at
    /// --deadline in every case, with the pod's own scoped key. --ttl or --deadline is required:
    /// until the job starts there is no watchdog, and the lease lets `gpucloud reap` end a pod
    /// whose launcher died during the launch or the sync. PrimeIntellect gives a pod no key of
    /// its own: there only that lease and a running `gpucloud reap` end the pod. --download is
    /// not used (`jobs download` collects).
    #[arg(long)]
    pub detach: bool,
    /// With --detach: how long the pod stays after COMMAND ended, for `jobs wait`, `logs` and
    /// `download` to collect (e.g. 10m).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub linger: std::time::Duration,
    /// With --spot: relaunch the job up to N times when its spot pod is interrupted (the provider
    /// reads it gone or no longer ACTIVE, unasked; seen within one poll), through the usual
    /// failover with the interrupted provider and data center tried last. One interruption more
    /// (or any, with 0) ends `run` with exit 8. The command is run again from the start: carry its
    /// progress with --checkpoint-dir. With --detach the job is recorded on this machine (in the
    /// state directory's `jobs/`) and recovered by `jobs wait --recover ID` or a running
    /// `reap --every 60s --recover`.
    #[arg(long, default_value_t = 0)]
    pub recover: u32,
    /// With --recover: relaunch on on-demand capacity after K interruptions (before, on spot
    /// again, or on-demand when no spot offer can be started).
    #[arg(long, value_name = "K")]
    pub on_demand_after: Option<u32>,
    /// A directory on the pod (relative to --remote-dir) where COMMAND keeps its checkpoints:
    /// pulled back to this machine every --checkpoint-every while COMMAND runs and pushed to a
    /// relaunched pod before COMMAND runs again (the outcome says how old it was). With
    /// --detach (and --recover), pulled by whoever recovers the job (`jobs wait --recover`, or
    /// `reap --every --recover` at each sweep) into its record's directory.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<String>,
    /// How often --checkpoint-dir is pulled back (e.g. 1m).
    #[arg(long, value_parser = parse_duration, default_value = "1m", requires = "checkpoint_dir")]
    pub checkpoint_every: std::time::Duration,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Detached jobs: gpucloud's job pods from the providers' lists, each asked over SSH what it
    /// runs (no local database).
    Ls {
        /// Only these providers (primeintellect, runpod); repeatable.
        #[arg(long = "provider", value_parser = parse_provider)]
        providers: Vec<Provider>,
        /// Private key to log in with (default: the key each pod was launched with).
        #[arg(long)]
        ssh_key: Option<std::path::PathBuf>,
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print the job's log (stdout and stderr as written). --follow keeps printing until the
    /// command has ended and its log is read to the end, then exits with its status; a lost
    /// connection is reopened and the log resumed at the next byte.
    Logs {
        /// The job's id (its pod's: provider:id).
        #[arg(value_parser = parse_pod_id)]
        id: gpucloud::PodId,
        /// Keep printing until the command ends.
        #[arg(long, short)]
        follow: bool,
        /// Start at this byte of the log (to resume where an earlier reader stopped).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Private key to log in with (default: the key the pod was launched with).
        #[arg(long)]
        ssh_key: Option<std::path::PathBuf>,
        /// How often to look for more (e.g. 1s).
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        poll: std::time::Duration,
    },
    /// Wait until the job's command has ended; exit with its status.
    Wait {
        /// The job's id (provider:id).
        #[arg(value_parser = parse_pod_id)]
        id: gpucloud::PodId,
        /// Give up after this long (exit 5).
        #[arg(long, value_parser = parse_duration, default_value = "24h")]
        timeout: std::time::Duration,
        /// How often to ask the pod.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        poll: std::time::Duration,
        /// Then terminate the pod at once (the results collected).
        #[arg(long)]
        end: bool,
        /// Recover the job as its record says (`run --detach --recover N`): when its spot pod is
        /// interrupted, terminate it and relaunch the job (ID, or any of its pods' ids, follows
        /// it); a job another process (`reap --every --recover`) is recovering is waited for.
        #[arg(long)]
        recover: bool,
        /// Private key to log in with (default: the key the pod was launched with).
        #[arg(long)]
        ssh_key: Option<std::path::PathBuf>,
    },
    /// Copy REMOTE (relative to the job's directory) from the job's pod into the local
    /// directory LOCAL.
    Download {
        /// The job's id (provider:id).
        #[arg(value_parser = parse_pod_id)]
        id: gpucloud::PodId,
        /// REMOTE:LOCAL.
        #[arg(value_parser = parse_download)]
        spec: (String, std::path::PathBuf),
        /// Private key to log in with (default: the key the pod was launched with).
        #[arg(long)]
        ssh_key: Option<std::path::PathBuf>,
    },
    /// Stop the job's command (SIGTERM to its process group, SIGKILL 10 s later) and terminate
    /// its pod, confirming it (--keep: keep the pod).
    Cancel {
        /// The job's id (provider:id).
        #[arg(value_parser = parse_pod_id)]
        id: gpucloud::PodId,
        /// Keep the pod running.
        #[arg(long)]
        keep: bool,
        /// Private key to log in with (default: the key the pod was launched with).
        #[arg(long)]
        ssh_key: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// provider:id.
    #[arg(value_parser = parse_pod_id)]
    pub pod: gpucloud::PodId,
    /// Private key to log in with (a .pub path means its private key); default: your ssh
    /// configuration and agent.
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
    /// Working directory on the pod.
    #[arg(long)]
    pub cwd: Option<String>,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// What to copy: a local path, or POD:PATH.
    pub src: String,
    /// The directory to copy it into: a local directory, or POD:DIR.
    pub dst: String,
    /// Private key to log in with (a .pub path means its private key).
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// Only this pod (provider:id).
    #[arg(value_parser = parse_pod_id)]
    pub pod: Option<gpucloud::PodId>,
    /// The private key the blocks name (IdentityFile).
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
}

/// `REMOTE:LOCAL` for `run --download`.
pub fn parse_download(s: &str) -> Result<(String, std::path::PathBuf), String> {
    match s.split_once(':') {
        Some((remote, local)) if !remote.is_empty() && !local.is_empty() => Ok((remote.to_string(), local.into())),
        _ => Err(format!("{s:?} is not REMOTE:LOCAL (e.g. out:./results)")),
    }
}

#[derive(Debug, Subcommand)]
pub enum SshKeysCommand {
    /// List the keys registered with each provider.
    Ls {
        /// Only this provider.
        #[arg(long, value_parser = parse_provider)]
        provider: Option<Provider>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a public key with each provider (or one), keeping the keys already there.
    Add {
        /// The public key file (or its private key's path, if the .pub file sits beside it).
        path: std::path::PathBuf,
        /// Only this provider.
        #[arg(long, value_parser = parse_provider)]
        provider: Option<Provider>,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// provider:id.
    #[arg(value_parser = parse_pod_id)]
    pub pod: gpucloud::PodId,
    /// The new lease, counted from now (e.g. 2h).
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: std::time::Duration,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Only list what would be terminated.
    #[arg(long)]
    pub dry_run: bool,
    /// Also terminate pods whose name starts with this prefix and that are older than --older-than.
    #[arg(long, requires = "older_than")]
    pub prefix: Option<String>,
    /// The age for --prefix (e.g. 2h).
    #[arg(long, requires = "prefix", value_parser = parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Also terminate pods gpucloud launched (or --prefix names) whose GPUs all stay under this
    /// utilization, percent, for --idle-for. RunPod reports utilization; PrimeIntellect pods are
    /// listed as not measurable and never reaped on it. Watching needs --every.
    #[arg(long, requires_all = ["idle_for", "every"], value_parser = clap::value_parser!(u8).range(1..=100))]
    pub idle_below: Option<u8>,
    /// How long every reading must stay under --idle-below (e.g. 30m).
    #[arg(long, requires = "idle_below", value_parser = parse_duration)]
    pub idle_for: Option<std::time::Duration>,
    /// How long after a pod starts before --idle-below judges it at all (image pulls, installs
    /// and downloads read 0%). Pods launched by `run` or with `up --no-idle-reap` are never
    /// judged; RunPod pods marked locked are never stopped or terminated by any rule.
    #[arg(long, requires = "idle_below", value_parser = parse_duration, default_value = "15m")]
    pub idle_grace: std::time::Duration,
    /// Read the utilization of pods whose provider reports none (PrimeIntellect) on the pod,
    /// over SSH (`nvidia-smi`), with your ssh configuration and agent or --ssh-key.
    #[arg(long, requires = "idle_below")]
    pub idle_over_ssh: bool,
    /// Private key for --idle-over-ssh (a .pub path means its private key).
    #[arg(long, requires = "idle_over_ssh")]
    pub ssh_key: Option<std::path::PathBuf>,
    /// Only this provider.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<Provider>,
    /// Sweep again at this interval (e.g. 60s) until interrupted (SIGINT, SIGTERM, SIGHUP: exit 0).
    #[arg(long, value_parser = parse_interval)]
    pub every: Option<std::time::Duration>,
    /// Also recover the detached spot jobs recorded on this machine (`run --detach --recover N`):
    /// each sweep reads every recorded job's pod; an interrupted one is terminated and its job
    /// relaunched as its record says, and a job whose command exited is closed.
    #[arg(long, conflicts_with = "dry_run")]
    pub recover: bool,
    /// Print JSON (one object per sweep, one line each with --every).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// How far back the report starts (e.g. 24h, 7d, 30d).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub since: std::time::Duration,
    /// One row per provider, per pod or volume, or per UTC day.
    #[arg(long, value_enum, default_value_t = CostBy::Provider)]
    pub by: CostBy,
    /// Only these providers (primeintellect, runpod); repeatable.
    #[arg(long = "provider", value_parser = parse_provider)]
    pub providers: Vec<Provider>,
    /// Print JSON: every entry, the groups and the totals.
    #[arg(long)]
    pub json: bool,
}

/// `cost --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostBy {
    /// Per cloud.
    Provider,
    /// Per pod or volume.
    Pod,
    /// Per UTC day.
    Day,
}

impl From<CostBy> for gpucloud::upkeep::cost::GroupBy {
    fn from(by: CostBy) -> Self {
        match by {
            CostBy::Provider => Self::Provider,
            CostBy::Pod => Self::Resource,
            CostBy::Day => Self::Day,
        }
    }
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only this provider.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<Provider>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// provider:id of a pod or a RunPod cluster, e.g. runpod:xedezhzb9la3ye.
    #[arg(value_parser = parse_pod_id)]
    pub pod: gpucloud::PodId,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// One or more provider:id: pods, RunPod clusters, or a cluster's members (which delete
    /// the whole cluster).
    #[arg(required = true, value_parser = parse_pod_id)]
    pub pods: Vec<gpucloud::PodId>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// One or more provider:id.
    #[arg(required = true, value_parser = parse_pod_id)]
    pub pods: Vec<gpucloud::PodId>,
    /// Stop pods without a volume without asking: their container disk is wiped on restart.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// One or more provider:id.
    #[arg(required = true, value_parser = parse_pod_id)]
    pub pods: Vec<gpucloud::PodId>,
    /// Refuse to start a pod if all live pods would then burn more than this, USD per hour
    /// (counted as for `up --max-burn`: every provider whose API key is set).
    #[arg(long, env = "GPUCLOUD_MAX_BURN_USD_PER_HOUR", value_parser = parse_price)]
    pub max_burn: Option<f64>,
    /// When the pod's host has no free GPU: launch the same pod elsewhere (image, GPU, cloud
    /// tier, data center, registry credential, ports, disk, env without the injected PUBLIC_KEY,
    /// network volume at its mount path), wait until it is ready, then terminate the stopped one
    /// (kept when it has a pod volume, whose data would be lost). No matching offer: nothing is
    /// launched and the stopped pod stays. Only a capacity answer counts as a full host.
    #[arg(long)]
    pub or_redeploy: bool,
    /// With --or-redeploy: the new pod may land anywhere in the old data center's region
    /// (country or continent), not only in that data center.
    #[arg(long, requires = "or_redeploy")]
    pub same_region: bool,
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// List volumes.
    Ls {
        /// Only this provider.
        #[arg(long, value_parser = parse_provider)]
        provider: Option<Provider>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a volume.
    Create {
        /// Provider.
        #[arg(long, value_parser = parse_provider)]
        provider: Provider,
        /// Name.
        #[arg(long)]
        name: String,
        /// Size in GB.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        size: u32,
        /// Data center id (RunPod requires it).
        #[arg(long)]
        data_center: Option<String>,
        /// PrimeIntellect: the underlying provider (e.g. runpod, hyperstack).
        #[arg(long)]
        via: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a volume (permanent).
    Rm {
        /// Provider.
        #[arg(long, value_parser = parse_provider)]
        provider: Provider,
        /// Volume id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Seed for ids and faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The API key to accept (default: a random one, printed in the banner: the emulator's pods
    /// run commands on this machine, so a key every local user knows would be a shell for them).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Seconds a pod provisions before it runs.
    #[arg(long, default_value_t = 5.0)]
    pub ready_delay: f64,
    /// Seconds a running PrimeIntellect pod installs its image (installationStatus ACTIVE, with
    /// installationProgress) before it is FINISHED.
    #[arg(long, default_value_t = 0.0)]
    pub installation_time: f64,
    /// Probability (0-1) that a request gets a fault.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Fault kinds to inject (default all): rate-limit, server-error, connection-reset,
    /// truncated-body, stockout-as-500, create-then-500, list-lag, installation-failure,
    /// ssh-banner-delay, log-stream-drop, ssh-drop-mid-command, ssh-stall, ssh-master-hang,
    /// partial-placement (RunPod cluster creates: a node is never placed).
    #[arg(long = "fault", value_parser = parse_fault)]
    pub faults: Vec<gpucloud_emulator::FaultKind>,
    /// Extra latency per request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The preemption fault: every PrimeIntellect spot pod is taken back (TERMINATED, SSH cut),
    /// unasked, once it has run this long (e.g. 10m). Any one pod: `POST
    /// /_emulator/pods/{id}/interrupt` with `{"how": "terminated"|"stopped"|"gone"}`.
    #[arg(long, value_parser = parse_duration)]
    pub spot_lifetime: Option<std::time::Duration>,
    /// The member fault: in every RunPod cluster, one member (the highest rank) is put in ERROR
    /// (SSH cut, processes killed), unasked, once it has been RUNNING this long (e.g. 10m); the
    /// other members stay up.
    #[arg(long, value_parser = parse_duration)]
    pub member_lifetime: Option<std::time::Duration>,
    /// Enforce rate limits: `documented` (RunPod's 60/minute, 3,000/hour, 50,000/day per key, with
    /// its RateLimit headers), or `documented/N` with every window N times shorter.
    #[arg(long, value_parser = parse_quota)]
    pub quota: Option<gpucloud_emulator::Quota>,
    /// Append one JSON line per exchange to FILE: method, path, query, status, duration_ms and
    /// the request body with secrets masked.
    #[arg(long, value_name = "FILE")]
    pub log_requests: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// GPU model to launch.
    #[arg(long, default_value = "H100_80GB")]
    pub gpu: String,
    /// Seconds the emulated pod provisions.
    #[arg(long, default_value_t = 3.0)]
    pub ready_delay: f64,
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    s.parse().map_err(|e: gpucloud::Error| e.to_string())
}

fn parse_pod_id(s: &str) -> Result<gpucloud::PodId, String> {
    s.parse().map_err(|e: gpucloud::Error| e.to_string())
}

fn parse_price(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive price in USD per hour")),
    }
}

/// Parses `90s`, `30m`, `8h`, `2d`, `1h30m` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("{s:?} is not a duration; use e.g. 90s, 30m, 8h, 2d or 1h30m");
    let text = s.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        total = value.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(invalid)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(std::time::Duration::from_secs(total))
}

fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let ttl = parse_duration(s)?;
    gpucloud::model::lease::check_ttl(ttl).map_err(|e| e.to_string())?;
    Ok(ttl)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: the interval must be at least 1s")),
        d => Ok(d),
    }
}

fn parse_env_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn parse_quota(s: &str) -> Result<gpucloud_emulator::Quota, String> {
    let invalid = || format!("{s:?} is not a quota; use documented or documented/N (windows N times shorter)");
    match s.split_once('/') {
        None if s == "documented" => Ok(gpucloud_emulator::Quota::documented()),
        Some(("documented", factor)) => {
            let factor: u32 = factor.parse().ok().filter(|f| *f >= 1).ok_or_else(invalid)?;
            Ok(gpucloud_emulator::Quota::documented().compressed(factor))
        }
        _ => Err(invalid()),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

fn parse_fault(s: &str) -> Result<gpucloud_emulator::FaultKind, String> {
    gpucloud_emulator::FaultKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = gpucloud_emulator::FaultKind::ALL.iter().map(|k| k.name()).collect();
        format!("{s:?} is not a fault kind; expected one of {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_write_them() {
        for (text, seconds) in
            [("90", 90), ("90s", 90), ("30m", 1800), ("8h", 28_800), ("2d", 172_800), ("1h30m", 5400)]
        {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        for bad in ["", "h", "5x", "1.5h", "-3s", "3 h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_emulator_help_names_every_fault_kind() {
        use clap::CommandFactory as _;
        let mut command = super::Cli::command();
        let help = command.find_subcommand_mut("emulator").expect("an emulator command").render_long_help();
        let help = help.to_string().replace(char::is_whitespace, "");
        for kind in gpucloud_emulator::FaultKind::ALL {
            assert!(help.contains(kind.name()), "`gpucloud emulator --help` does not name {}", kind.name());
        }
    }
}
