//! One error type for everything the facade does.
//!
//! Every error from a provider carries the provider, the operation, the HTTP status and the
//! provider's own message (PrimeIntellect's `errors[]`, RunPod's RFC 9457 problem document).
//! [`Error::is_retryable`] says whether sending the same *read or delete* again could succeed;
//! creates follow stricter rules (see [`crate::transport::retry`]).
//!
//! No error message ever contains an API key: messages are built from server bodies and
//! transport errors, and server text is scrubbed of the key before it is stored.

use crate::model::{PodId, Provider};
use std::time::Duration;

/// Convenient alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider answered with an error status.
    #[error("{provider} {operation}: HTTP {status}: {message}")]
    Api {
        /// Which cloud.
        provider: Provider,
        /// Which operation (`create_pod`, `list_pods`, ...).
        operation: &'static str,
        /// HTTP status code.
        status: u16,
        /// The provider's own message.
        message: String,
        /// How long the provider asked us to wait (`Retry-After`, or RunPod's `RateLimit` reset).
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connection refused or reset, timeout, TLS failure.
    #[error("{provider} {operation}: {message}")]
    Transport {
        /// Which cloud.
        provider: Provider,
        /// Which operation.
        operation: &'static str,
        /// What happened.
        message: String,
        /// Whether the request may have reached the server (false only for connect failures).
        maybe_sent: bool,
    },
    /// The provider answered, but the body is not what its API documents (truncated, malformed).
    #[error("{provider} {operation}: HTTP {status}: unreadable response: {message}")]
    Decode {
        /// Which cloud.
        provider: Provider,
        /// Which operation.
        operation: &'static str,
        /// HTTP status code of the unreadable response.
        status: u16,
        /// What could not be decoded.
        message: String,
    },
    /// Bad input, caught before any request was sent.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field at fault (`gpu_count`, `disk_gb`, `image`, ...).
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The provider cannot do this (PrimeIntellect has no stop/start).
    #[error("{provider} does not support {operation}")]
    Unsupported {
        /// Which cloud.
        provider: Provider,
        /// What was asked.
        operation: &'static str,
    },
    /// No API key was given and the environment variable is unset.
    #[error("no API key: set {variable} (or pass a key explicitly)")]
    MissingCredentials {
        /// Which cloud.
        provider: Provider,
        /// The variable that was read.
        variable: &'static str,
    },
    /// The client could not be configured (bad base URL, TLS backend).
    #[error("{provider}: {message}")]
    Config {
        /// Which cloud.
        provider: Provider,
        /// What is wrong.
        message: String,
    },
    /// A wait ran past its deadline.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The pod reached a state it will not recover from.
    #[error("pod {id} failed: provider status {status}")]
    PodFailed {
        /// The pod.
        id: PodId,
        /// The provider's status (and, for a failed PrimeIntellect installation, why).
        status: String,
    },
    /// A paginated listing could not be completed; nothing partial is returned as complete.
    #[error("{provider} {operation}: listing stopped after {pages} pages: {message}")]
    Pagination {
        /// Which cloud.
        provider: Provider,
        /// Which listing.
        operation: &'static str,
        /// Pages read before stopping.
        pages: u64,
        /// Why it stopped.
        message: String,
    },
    /// A create failed ambiguously and reconciliation could not tell whether a pod exists.
    /// Anything found later under `launch_tag` belongs to this attempt.
    #[error("{provider}: create_pod outcome unknown (launch tag {launch_tag}): {cause}")]
    CreateUnconfirmed {
        /// Which cloud.
        provider: Provider,
        /// The unique tag the attempt carried in its name.
        launch_tag: String,
        /// The failure that made the outcome ambiguous.
        cause: Box<Error>,
    },
    /// A cluster will not become ready (a member failed or ended); the launch deleted it and
    /// confirmed the deletion before returning this.
    #[error("cluster {id} failed: {reason}")]
    ClusterFailed {
        /// The cluster (`provider:id`).
        id: String,
        /// What was seen.
        reason: String,
    },
    /// The caller cancelled the operation (e.g. Ctrl-C); anything it started was cleaned up.
    #[error("cancelled")]
    Cancelled,
    /// A request body is larger than the provider accepts (RunPod `POST /v2/pods`: 102,400
    /// bytes, the document's 413). Caught before sending when the SDK can measure it; a 413 from
    /// the server (e.g. a template's inherited settings pushed it over) becomes this too. Never
    /// retried and never ambiguous: the provider created nothing.
    #[error(
        "{provider} {operation}: the request body is {} bytes, over the provider's {limit}-byte limit{}; shorten env, cmd or entrypoint",
        size.map_or_else(|| "an unknown number of".to_string(), |s| s.to_string()),
        if *sent { " (refused by the server with 413)" } else { " (not sent)" }
    )]
    RequestTooLarge {
        /// Which cloud.
        provider: Provider,
        /// Which operation.
        operation: &'static str,
        /// The body's size in bytes, when known.
        size: Option<usize>,
        /// The provider's limit in bytes.
        limit: usize,
        /// Whether the server saw the request and answered 413.
        sent: bool,
    },
    /// The account has no SSH public key registered, so a pod created now would have no SSH
    /// access (RunPod: `startSsh` "does nothing" without registered keys) and a wait for SSH
    /// readiness would bill until its deadline. Raised before any create is sent.
    #[error(
        "{provider}: the account has no SSH public key, so the pod would have no SSH access; pass one to register (LaunchRequest::ssh_public_key, CLI --ssh-key ~/.ssh/id_ed25519.pub), register one (gpucloud ssh-keys add), or wait for the provider's status only (Readiness::Status, CLI --ready status)"
    )]
    NoSshKey {
        /// Which cloud.
        provider: Provider,
    },
    /// The pod has no SSH endpoint a session can use: none reported yet, or only RunPod's
    /// proxy, which "carries an interactive shell only — SCP, SFTP, rsync, and port forwarding
    /// need `direct`" (`direct` exists only when `22/tcp` is exposed).
    #[error("{id}: no direct SSH endpoint: {reason}")]
    NoDirectSsh {
        /// The pod.
        id: PodId,
        /// Why, and what to do.
        reason: String,
    },
    /// The pod's SSH server refused every key offered.
    #[error("{id}: SSH authentication refused (tried {tried}): {message}")]
    SshAuth {
        /// The pod.
        id: PodId,
        /// Which key was tried: a key file, or the user's own ssh configuration and agent.
        tried: String,
        /// What ssh said.
        message: String,
    },
    /// The pod answered with a host key other than the one recorded for it on first contact.
    #[error(
        "{id}: the pod's SSH host key changed since first contact (recorded in {known_hosts}): refusing to connect"
    )]
    SshHostKeyChanged {
        /// The pod.
        id: PodId,
        /// The pod's known-hosts file gpucloud manages.
        known_hosts: String,
    },
    /// The connection to the pod was lost while a command ran: whether it finished, and how,
    /// is unknown.
    #[error("{id}: connection lost while running {command:?}: its fate on the pod is unknown")]
    SshConnectionLost {
        /// The pod.
        id: PodId,
        /// The command.
        command: String,
    },
    /// The remote shell found no such program. No longer returned by a command's run: an exit
    /// status of 127 is the command's exit status (with a hint), never an error; kept so that
    /// callers matching on it still compile.
    #[error("{id}: command not found on the pod: {program}")]
    RemoteCommandNotFound {
        /// The pod.
        id: PodId,
        /// The program.
        program: String,
    },
    /// A download was refused because the pod's `tar` stream would have written outside the
    /// download (an absolute name, `..`, a link leading out, a member through a link) or held a
    /// device file; nothing of it was kept.
    #[error("{id}: download of {path:?} refused: {reason}")]
    UnsafeDownload {
        /// The pod.
        id: PodId,
        /// The remote path being downloaded.
        path: String,
        /// The member refused, and why.
        reason: String,
    },
    /// gpucloud's state directory (per-pod host keys, ControlMaster sockets, sync manifests)
    /// is missing or not private: another user owns it or may write to it.
    #[error("refusing the state directory {path:?}: {reason}")]
    UnsafeStateDir {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Any other SSH failure (connecting, a local `ssh`/`tar`/`rsync` that would not run).
    #[error("{id}: ssh: {message}")]
    Ssh {
        /// The pod.
        id: PodId,
        /// What went wrong.
        message: String,
    },
    /// A launch's budget allows none of the offers ([`crate::fleet::spend`]); nothing was created.
    #[error("over budget (${budget:.2}): {reason}")]
    OverBudget {
        /// The budget, USD.
        budget: f64,
        /// What the cheapest refused offer would cost, USD, when it can be priced in USD.
        needed: Option<f64>,
        /// Why, with the numbers.
        reason: String,
    },
    /// A create would take the fleet's pods past their burn cap ([`crate::fleet::spend`]); nothing
    /// was created.
    #[error(
        "burn cap: the providers' pods burn ${current:.2}/h now; this offer adds ${offer:.2}/h, over the cap of ${cap:.2}/h"
    )]
    BurnCapExceeded {
        /// The cap, USD per hour.
        cap: f64,
        /// What all live pods burn now, USD per hour.
        current: f64,
        /// What the refused offer would add, USD per hour.
        offer: f64,
    },
    /// The burn cap could not be checked ([`crate::fleet::spend`]), so nothing was created or
    /// started: an unknown burn is not under the cap. The provider named is the one whose pods
    /// could not be read, whose pod reports no rate, or whose offer or pod is priced in a
    /// currency no exchange rate was given for.
    #[error("burn cap: cannot check it: {provider}: {reason}; nothing was created or started")]
    BurnUnknown {
        /// The provider concerned.
        provider: Provider,
        /// Why, naming the pod or offer where there is one.
        reason: String,
    },
    /// A stopped pod could not start: it resumes on the host it ran on, and that host has no
    /// free GPU now (RunPod's capacity `400`). The pod is still there, stopped.
    #[error(
        "pod {id} cannot start: its host has no free GPU now ({message}); retry later, or replace it with a new pod from its configuration (Fleet::start_or_redeploy, gpucloud start --or-redeploy; data to keep belongs on a network volume, up --volume)"
    )]
    HostFull {
        /// The pod.
        id: PodId,
        /// The provider's message.
        message: String,
    },
    /// A job's spot pod was taken back by its provider (see [`crate::model::spot`]), and no
    /// recovery was allowed or left: the last interruption, after every earlier one. Never the
    /// command's own failure.
    #[error("interrupted: {}", summarize_interruptions(.interruptions))]
    Interrupted {
        /// Every interruption of the job, in order; the last one ended it.
        interruptions: Vec<crate::model::spot::Interruption>,
    },
    /// A recorded detached job (`gpucloud::jobs::record`, feature `remote`) ended without an exit
    /// status to report: cancelled or ended through gpucloud, or its on-demand pod lost.
    #[error("job {id} ended without an exit status: {end}")]
    JobEnded {
        /// The job's id (its first pod's).
        id: PodId,
        /// How it ended.
        end: String,
    },
    /// A job failed (`cause`), and then its pod's termination could not be confirmed: the pod
    /// may still be running and billing. Check with a list; end it with a terminate.
    #[error(
        "{cause}; and pod {id} could not be confirmed terminated: {termination} (it may still be billing: check with `gpucloud ls`, end it with `gpucloud down {id}`)"
    )]
    TerminationUnconfirmed {
        /// The pod that may be left.
        id: PodId,
        /// Why the job failed.
        cause: Box<Error>,
        /// Why its termination could not be confirmed.
        termination: String,
    },
    /// A launch found no offer it could start; each attempt's failure is listed.
    #[error("no capacity: {}", summarize(.attempts))]
    NoCapacity {
        /// The offers tried and why each failed (empty when no offer matched).
        attempts: Vec<LaunchAttempt>,
    },
}

/// One failed candidate of a launch.
#[derive(Debug, Clone)]
pub struct LaunchAttempt {
    /// Which cloud.
    pub provider: Provider,
    /// The GPU offered.
    pub gpu_type: String,
    /// Its price.
    pub price_per_hour: f64,
    /// Why it failed.
    pub error: Error,
}

fn summarize_interruptions(interruptions: &[crate::model::spot::Interruption]) -> String {
    let Some(last) = interruptions.last() else { return "no interruption recorded".into() };
    match interruptions.len() {
        1 => last.to_string(),
        n => format!("{last} (interruption {n}; no recovery left)"),
    }
}

fn summarize(attempts: &[LaunchAttempt]) -> String {
    if attempts.is_empty() {
        return "no offer matched the request".into();
    }
    attempts
        .iter()
        .map(|a| format!("{} {} ${:.2}/h: {}", a.provider, a.gpu_type, a.price_per_hour, a.error))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput { field, message: message.into() }
    }

    /// The HTTP status, when the provider answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::RequestTooLarge { sent: true, .. } => Some(413),
            Error::CreateUnconfirmed { cause, .. } | Error::TerminationUnconfirmed { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// How long the provider asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same read or delete could succeed if sent again: connection errors,
    /// timeouts, 408, 429, 5xx and unreadable bodies. Never true for bad input, auth or 4xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::Transport { .. } => true,
            Error::Decode { .. } => true,
            _ => false,
        }
    }

    /// Whether the server certainly did not act on the request, so even a create may be sent
    /// again: a 429 (rejected by the rate limiter) or a connection that never opened.
    pub fn certainly_not_processed(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429,
            Error::Transport { maybe_sent, .. } => !maybe_sent,
            _ => false,
        }
    }

    /// A 404 from the provider.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}
