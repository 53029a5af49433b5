//! Sessions on running pods: run commands with their output streamed line by line and their exit
//! status returned, copy files and directories both ways, over **one** SSH connection per pod.
//!
//! [`RemoteSession::connect`] starts an OpenSSH ControlMaster with the user's own `ssh` (their
//! `~/.ssh/config`, keys and agent; the key file of the launch when one is given) through the
//! `openssh` crate, and every step after it (commands, `tar` streams, `rsync -e`) multiplexes
//! over that master: one TCP connection and one authentication per pod, however many steps. Why
//! the system client rather than an SSH library: it is what the user's keys, agent, config,
//! `ProxyJump` and hardware tokens already work with.
//!
//! **Host keys**: each pod gets a known-hosts file of its own, managed by gpucloud under
//! [`state_dir`]`/known_hosts/` (never the user's `~/.ssh/known_hosts`, never host-key checking
//! off): the key is accepted on first contact (`StrictHostKeyChecking=accept-new`) and must match
//! after that (`StrictHostKeyChecking=yes`: OpenSSH's accept-new alone only warns about a changed
//! key), a changed key for the same pod is [`Error::SshHostKeyChanged`], and the file is forgotten when gpucloud
//! terminates the pod ([`forget_pod`]). Cloud IP:port pairs are reused between pods; a file per
//! pod means one pod's key never vouches for the next.
//!
//! The known-hosts file pins the key to the pod, not to its address: before each contact its
//! entries are rewritten to the pod's current endpoint ([`pin_known_hosts`]), so a new port after
//! a RunPod stop/start is no alarm, while a new key still is.
//!
//! **Nothing waits without a bound.** Connecting is bounded ([`SessionOptions::connect_timeout`]);
//! a connection that stays open but goes silent is detected by SSH keepalives
//! ([`SessionOptions::keepalive_interval`], three unanswered probes) and is
//! [`Error::SshConnectionLost`]; [`RemoteSession::close`] gives the ControlMaster
//! [`CLOSE_TIMEOUT`] and then kills it, and a session dropped without a close ends its master at
//! once.
//!
//! **Output is bytes**: both streams are always read to their end; lines are split on `\n` and
//! handed on as lossy text ([`OutputLine`]), the raw bytes as they came to an [`OutputSink`] that
//! wants them; a line without a newline is handed on in pieces of [`MAX_LINE_BYTES`].
//!
//! Errors are typed: no direct endpoint ([`Error::NoDirectSsh`]: RunPod's proxy "carries an
//! interactive shell only"), authentication refused ([`Error::SshAuth`], naming the key tried),
//! a connection lost mid-command ([`Error::SshConnectionLost`]: the command's fate is unknown).
//! An exit status is an exit status, 127 included ([`RunResult::hint`] says what 127 usually
//! means); it is never an error.

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId, SshEndpoint};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

/// Overrides where gpucloud keeps per-pod state (known-hosts files, SSH control sockets, sync
/// manifests).
pub const STATE_DIR_ENV: &str = "GPUCLOUD_STATE_DIR";

/// How many trailing output lines a [`RunResult`] keeps.
pub const TAIL_LINES: usize = 50;

/// How long [`RemoteSession::close`] waits for the ControlMaster to stop before killing it.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an interrupted command's output is still read after SIGINT, before SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// The default [`SessionOptions::keepalive_interval`].
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The default [`SessionOptions::connect_timeout`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest line handed on whole: past it, a line without a newline (a `\r` progress bar
/// that never ends one) is handed on in pieces of this size, so memory stays bounded.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Where gpucloud keeps per-pod state: `$GPUCLOUD_STATE_DIR`, else `$XDG_STATE_HOME/gpucloud`,
/// else `~/.local/state/gpucloud`, else (no `HOME`, as for a system service)
/// `$XDG_RUNTIME_DIR/gpucloud-state`; never a shared path such as `/tmp`. With none of these set
/// it is empty, and everything that would write there refuses ([`Error::UnsafeStateDir`]). Every
/// directory gpucloud writes under it is created private (0700) and refused when another user
/// owns it or others may write to it.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = env_path(STATE_DIR_ENV) {
        return dir;
    }
    if let Some(dir) = env_path("XDG_STATE_HOME") {
        return dir.join("gpucloud");
    }
    match (env_path("HOME"), env_path("XDG_RUNTIME_DIR")) {
        (Some(home), _) => home.join(".local/state/gpucloud"),
        (None, Some(runtime)) => runtime.join("gpucloud-state"),
        (None, None) => PathBuf::new(),
    }
}

/// Where ControlMaster sockets go: `$XDG_RUNTIME_DIR/gpucloud` (a per-user, private, short path),
/// else [`state_dir`]`/control`.
pub fn control_dir() -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(runtime) if env_path(STATE_DIR_ENV).is_none() => runtime.join("gpucloud"),
        _ => state_dir().join("control"),
    }
}

/// Creates `dir` (and its parents) private to this user (0700), or checks that it already is
/// safe: owned by this user, and not writable by group or others (someone who can write there
/// could plant a host key or swap the ControlMaster's socket).
pub(crate) fn ensure_private(dir: &Path) -> Result<()> {
    let refuse = |reason: String| Error::UnsafeStateDir { path: dir.display().to_string(), reason };
    if dir.as_os_str().is_empty() {
        return Err(Error::UnsafeStateDir {
            path: String::new(),
            reason: format!("no place for gpucloud's state: set HOME, XDG_STATE_HOME or {STATE_DIR_ENV}"),
        });
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
    let meta = std::fs::metadata(dir).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(format!("it is owned by user {} (not you, {me})", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!("others may write to it (mode {:o}); chmod go-w it", meta.mode() & 0o7777)));
    }
    Ok(())
}

/// Checks (creating them private where missing) the directories a session writes to: the state
/// directory, its `known_hosts`, and the ControlMaster's directory, which it returns. Run before
/// a launch ([`crate::Fleet::run`] does), so an unsafe or missing state directory is refused
/// before a pod bills, not after it is up.
///
/// Errors: [`Error::UnsafeStateDir`] naming the directory and why.
pub fn check_state_dirs() -> Result<PathBuf> {
    private_state_subdir("known_hosts")?;
    let control = control_dir();
    ensure_private(&control)?;
    Ok(control)
}

/// [`ensure_private`] for a directory under the state directory, the state directory first.
fn private_state_subdir(name: &str) -> Result<PathBuf> {
    let root = state_dir();
    ensure_private(&root)?;
    let dir = root.join(name);
    ensure_private(&dir)?;
    Ok(dir)
}

fn pod_file_name(id: &PodId) -> String {
    format!("{}-{}", id.provider(), id.id())
}

/// The known-hosts file gpucloud keeps for pod `id`.
pub fn known_hosts_file(id: &PodId) -> PathBuf {
    state_dir().join("known_hosts").join(pod_file_name(id))
}

/// How a pod's host key is checked: OpenSSH's `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// First contact: the key is recorded (`accept-new`).
    AcceptNew,
    /// The key is recorded and must match (`yes`).
    Strict,
}

impl HostKeyCheck {
    /// The value for `-o StrictHostKeyChecking=`.
    pub fn ssh_option(self) -> &'static str {
        match self {
            Self::AcceptNew => "accept-new",
            Self::Strict => "yes",
        }
    }
}

/// Pod `id`'s known-hosts file, its directory created, and how its key is to be checked now:
/// accepted on first contact (the file missing or empty), required to match after that.
/// OpenSSH's `accept-new` alone only warns about a changed key and goes on with public-key
/// authentication, so every contact after the first is `Strict`.
pub fn pod_known_hosts(id: &PodId) -> Result<(PathBuf, HostKeyCheck)> {
    // A file written here must go when the pod does.
    forget_terminated_pods();
    let file = private_state_subdir("known_hosts")?.join(pod_file_name(id));
    let first_contact = std::fs::metadata(&file).map_or(true, |m| m.len() == 0);
    Ok((file, if first_contact { HostKeyCheck::AcceptNew } else { HostKeyCheck::Strict }))
}

/// Rewrites the host field of every entry in a pod's known-hosts `file` to `endpoint`'s address
/// (`host`, or `[host]:port` off port 22), keeping the keys: the file belongs to one pod, so its
/// keys are that pod's wherever it now answers. OpenSSH looks keys up by address, and a RunPod
/// pod gets a new public port on every start; without this the recorded key stops matching the
/// address and strict checking reports a changed key for the same host. A missing file is left
/// missing.
pub fn pin_known_hosts(file: &Path, endpoint: &SshEndpoint) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let address =
        if endpoint.port == 22 { endpoint.host.clone() } else { format!("[{}]:{}", endpoint.host, endpoint.port) };
    let mut pinned = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        match trimmed.split_once(char::is_whitespace) {
            // Markers (@cert-authority, @revoked) and comments are kept as they are.
            Some((hosts, key)) if !hosts.starts_with('@') && !hosts.starts_with('#') => {
                pinned.push_str(&address);
                pinned.push(' ');
                pinned.push_str(key.trim_start());
            }
            _ => pinned.push_str(line),
        }
        pinned.push('\n');
    }
    if pinned != text {
        // Written beside and renamed: ssh never reads half a file.
        let staged = file.with_extension("pinning");
        std::fs::write(&staged, pinned)?;
        std::fs::rename(&staged, file)?;
    }
    Ok(())
}

/// The sync manifest gpucloud keeps for pod `id` (see [`crate::remote::sync`]).
pub(crate) fn manifest_file(id: &PodId) -> PathBuf {
    state_dir().join("sync").join(format!("{}.json", pod_file_name(id)))
}

/// Forgets what gpucloud kept for pod `id` (its host key, its sync manifest): run when the
/// pod's termination is confirmed ([`forget_terminated_pods`]), so a later pod on the same
/// address starts afresh.
pub fn forget_pod(id: &PodId) {
    if state_dir().as_os_str().is_empty() {
        return;
    }
    for file in [known_hosts_file(id), manifest_file(id), key_file(id)] {
        let _ = std::fs::remove_file(file);
    }
    forget_nodes_of(id);
}

/// Forgets the files of every node of a multi-node pod `id` (`<pod>#<rank>`,
/// [`crate::model::cluster::node_pod_id`]): the pod's end is theirs.
fn forget_nodes_of(id: &PodId) {
    let prefix = format!("{}{}", pod_file_name(id), crate::model::cluster::NODE_SEPARATOR);
    for dir in ["known_hosts", "sync", "keys"] {
        let Ok(entries) = std::fs::read_dir(state_dir().join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rank) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
            let rank = rank.strip_suffix(".json").unwrap_or(rank);
            if !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn key_file(id: &PodId) -> PathBuf {
    state_dir().join("keys").join(pod_file_name(id))
}

/// Remembers that pod `id` was launched with private key `key` (the CLI's `up --ssh-key`), so
/// that later sessions on it use that key when none is given ([`remembered_key`]); forgotten
/// with the pod ([`forget_pod`]).
pub fn remember_key(id: &PodId, key: &Path) -> Result<()> {
    forget_terminated_pods();
    let file = private_state_subdir("keys")?.join(pod_file_name(id));
    let key = if key.is_relative() {
        std::env::current_dir().map(|d| d.join(key)).unwrap_or_else(|_| key.into())
    } else {
        key.into()
    };
    std::fs::write(&file, key.as_os_str().as_encoded_bytes()).map_err(|e| Error::UnsafeStateDir {
        path: file.display().to_string(),
        reason: format!("cannot write it: {e}"),
    })
}

/// The private key pod `id` was launched with, if [`remember_key`] recorded one.
pub fn remembered_key(id: &PodId) -> Option<PathBuf> {
    if state_dir().as_os_str().is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(key_file(id)).ok()?;
    Some(PathBuf::from(text)).filter(|p| !p.as_os_str().is_empty())
}

/// Makes every confirmed termination in this process forget the pod's files ([`forget_pod`],
/// through [`crate::providers::hooks::on_termination_confirmed`]). Sessions and known-hosts
/// lookups register it themselves; a program that terminates pods without opening a session
/// (the CLI's `down`, say) calls it once at start. Idempotent.
pub fn forget_terminated_pods() {
    crate::providers::hooks::on_termination_confirmed(forget_pod);
}

/// How to connect.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SessionOptions {
    /// A private key file to offer (e.g. the launch's key); `None`: the user's own ssh
    /// configuration and agent decide.
    pub identity_file: Option<PathBuf>,
    /// How long connecting may take (default [`CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// How often a silent connection is probed (OpenSSH's `ServerAliveInterval`, default
    /// [`KEEPALIVE_INTERVAL`]); after three unanswered probes the connection is given up and a
    /// running command ends with [`Error::SshConnectionLost`].
    pub keepalive_interval: Option<Duration>,
    /// A download ([`RemoteSession::download`]) that brings fewer than
    /// [`DOWNLOAD_MIN_BYTES`] in this long is stalled and given up (default
    /// [`DOWNLOAD_STALL_WINDOW`]): a pod that keeps its connection alive but trickles its stream
    /// must not hold a job (and its pods' bills) forever. At least one second.
    #[serde(default)]
    pub download_stall_window: Option<Duration>,
}

/// How long a download may bring fewer than [`DOWNLOAD_MIN_BYTES`] before it is given up.
pub const DOWNLOAD_STALL_WINDOW: Duration = Duration::from_secs(120);

/// The fewest bytes a download must bring in each [`DOWNLOAD_STALL_WINDOW`].
pub const DOWNLOAD_MIN_BYTES: u64 = 4096;

/// The endpoint a session uses: the pod's direct SSH endpoint.
pub fn direct_endpoint(pod: &Pod) -> Result<SshEndpoint> {
    let not_running = || Error::NoDirectSsh {
        id: pod.id.clone(),
        reason: format!("the pod is {} and reports no SSH endpoint yet", pod.status),
    };
    match &pod.raw {
        #[cfg(feature = "runpod")]
        crate::model::PodRecord::RunPod(raw) => {
            let Some(direct) = &raw.ssh.direct else {
                if raw.ssh.proxy.is_some() {
                    return Err(Error::NoDirectSsh {
                        id: pod.id.clone(),
                        reason: "RunPod reports only its proxy, which carries an interactive shell only (no exec, scp, sftp or rsync); `direct` needs 22/tcp in the pod's ports (gpucloud's launches expose it)".into(),
                    });
                }
                return Err(not_running());
            };
            Ok(SshEndpoint {
                host: direct.host.clone(),
                port: u16::try_from(direct.port).unwrap_or(22),
                user: direct.username.clone(),
            })
        }
        #[allow(unreachable_patterns, reason = "only one arm with one cloud compiled in")]
        _ => pod.ssh.clone().ok_or_else(not_running),
    }
}

/// A command to run on a pod.
#[derive(Debug, Clone, Default)]
pub struct RemoteCommand {
    /// Program and arguments, each quoted for the remote shell.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory (relative to the login directory, or absolute); created if missing.
    pub cwd: Option<String>,
}

impl RemoteCommand {
    /// `argv` as given.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { argv: argv.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// A shell script run with `sh -c`.
    pub fn script(script: impl Into<String>) -> Self {
        Self::new(["sh".to_string(), "-c".to_string(), script.into()])
    }

    /// The command line the remote shell runs.
    pub fn to_shell(&self) -> String {
        let mut line = String::new();
        if let Some(cwd) = &self.cwd {
            line.push_str(&format!("mkdir -p {0} && cd {0} && ", quote(cwd)));
        }
        if !self.env.is_empty() {
            line.push_str("env ");
            for (key, value) in &self.env {
                line.push_str(&quote(&format!("{key}={value}")));
                line.push(' ');
            }
        }
        line.push_str(&self.argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "));
        line
    }
}

/// `text` for a POSIX shell: as is when it is plainly safe, else single-quoted.
pub fn quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+~".contains(c))
        && !text.starts_with('~');
    if safe { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

/// One line of a command's output, as text: invalid UTF-8 is replaced (U+FFFD), a trailing
/// `\r` dropped; a line longer than [`MAX_LINE_BYTES`] comes in pieces. The bytes as they came
/// go to [`OutputSink::bytes`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stream", content = "line", rename_all = "lowercase")]
pub enum OutputLine {
    /// From standard output.
    Stdout(String),
    /// From standard error.
    Stderr(String),
}

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Where a command's output goes: every line (lossy text), and optionally the bytes exactly as
/// they came (for a byte-exact pass-through such as the CLI's). Any `FnMut(OutputLine) + Send`
/// is a sink that takes only the lines.
pub trait OutputSink: Send {
    /// A line of output (see [`OutputLine`]).
    fn line(&mut self, line: OutputLine);

    /// Bytes as they came from `stream`, before they were split into lines; ignored by default.
    fn bytes(&mut self, stream: Stream, bytes: &[u8]) {
        let _ = (stream, bytes);
    }

    /// Whether this sink takes [`OutputSink::line`]s (yes by default). A pass-through that
    /// takes only bytes says no: the output is then not split into lines as it streams (which
    /// costs a copy and an allocation per line, most of the CPU of a large output), and the
    /// run's tail is split from the last [`TAIL_HISTORY_BYTES`] at the end.
    fn wants_lines(&self) -> bool {
        true
    }
}

/// How much of the latest output a run keeps to split its tail from when its sink takes no
/// lines ([`OutputSink::wants_lines`]).
pub const TAIL_HISTORY_BYTES: usize = 256 * 1024;

/// The latest output, as it came (both streams in order), bounded by [`TAIL_HISTORY_BYTES`].
#[derive(Default)]
struct OutputHistory {
    chunks: VecDeque<(Stream, Vec<u8>)>,
    bytes: usize,
    /// Whether a stream lost its oldest bytes (its first line kept may be a piece).
    cut: [bool; 2],
}

impl OutputHistory {
    fn index(stream: Stream) -> usize {
        match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_HISTORY_BYTES)..];
        self.chunks.push_back((stream, bytes.to_vec()));
        self.bytes += bytes.len();
        while self.bytes > TAIL_HISTORY_BYTES {
            let Some((oldest, chunk)) = self.chunks.pop_front() else { break };
            self.bytes -= chunk.len();
            self.cut[Self::index(oldest)] = true;
        }
    }

    /// The last [`TAIL_LINES`] lines, in order.
    fn tail(self) -> Vec<OutputLine> {
        let mut splitters = [LineSplitter::new(Stream::Stdout), LineSplitter::new(Stream::Stderr)];
        let mut skip = self.cut;
        let mut lines = VecDeque::with_capacity(TAIL_LINES);
        let mut keep = |stream: Stream, line: OutputLine, skip: &mut [bool; 2]| {
            if std::mem::take(&mut skip[Self::index(stream)]) {
                return;
            }
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        };
        for (stream, chunk) in &self.chunks {
            splitters[Self::index(*stream)].feed(chunk, &mut |line| keep(*stream, line, &mut skip));
        }
        for splitter in &mut splitters {
            let stream = splitter.stream;
            splitter.finish(&mut |line| keep(stream, line, &mut skip));
        }
        lines.into()
    }
}

impl<F: FnMut(OutputLine) + Send> OutputSink for F {
    fn line(&mut self, line: OutputLine) {
        self(line);
    }
}

/// Splits one stream's bytes into lines: a stray non-UTF-8 byte must not end the stream, and a
/// line that never ends must not grow memory without bound.
struct LineSplitter {
    stream: Stream,
    partial: Vec<u8>,
}

impl LineSplitter {
    fn new(stream: Stream) -> Self {
        Self { stream, partial: Vec::new() }
    }

    fn line(&self, bytes: &[u8]) -> OutputLine {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8_lossy(bytes).into_owned();
        match self.stream {
            Stream::Stdout => OutputLine::Stdout(text),
            Stream::Stderr => OutputLine::Stderr(text),
        }
    }

    fn feed(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(OutputLine)) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                emit(self.line(&bytes[..end]));
            } else {
                self.partial.extend_from_slice(&bytes[..end]);
                let whole = std::mem::take(&mut self.partial);
                emit(self.line(&whole));
            }
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE_BYTES {
            // Cut at a character boundary when the piece would end inside one.
            let cut = match std::str::from_utf8(&self.partial[..MAX_LINE_BYTES]) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                _ => MAX_LINE_BYTES,
            };
            let piece: Vec<u8> = self.partial.drain(..cut).collect();
            emit(self.line(&piece));
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(OutputLine)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            emit(self.line(&rest));
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Its exit status (128 + N when killed by signal N, as a shell reports it).
    pub exit_code: i32,
    /// The last [`TAIL_LINES`] lines of its output, both streams, in order of arrival.
    pub tail: Vec<OutputLine>,
}

impl RunResult {
    /// What an exit status usually means, when it is one a shell gives a meaning to (127: a
    /// program not found; 126: found but not executable). A hint only: a script may exit so on
    /// its own.
    pub fn hint(&self) -> Option<&'static str> {
        exit_hint(self.exit_code)
    }
}

/// See [`RunResult::hint`].
pub fn exit_hint(exit_code: i32) -> Option<&'static str> {
    match exit_code {
        127 => Some(
            "127 is what a shell exits with when it cannot find a program (is it installed on the pod and on PATH?)",
        ),
        126 => Some("126 is what a shell exits with when a program is found but cannot be executed (permissions?)"),
        _ => None,
    }
}

/// An SSH session on one pod. See the [module documentation](self).
pub struct RemoteSession {
    id: PodId,
    endpoint: SshEndpoint,
    /// `None` only once closed or dropped (both take it).
    session: Option<openssh::Session>,
    /// The ControlMaster's process, to end it when it does not stop in time.
    master: Option<Master>,
    known_hosts: PathBuf,
    identity: Option<PathBuf>,
    download_stall_window: Duration,
}

impl std::fmt::Debug for RemoteSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSession").field("id", &self.id).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl RemoteSession {
    /// Connects to `pod`'s direct SSH endpoint (one ControlMaster for the whole session).
    pub async fn connect(pod: &Pod, options: &SessionOptions) -> Result<Self> {
        let endpoint = direct_endpoint(pod)?;
        let id = pod.id.clone();
        let ssh_error = |message: String| Error::Ssh { id: id.clone(), message };
        let (known_hosts, check) = pod_known_hosts(&id)?;
        let control = check_state_dirs()?;
        pin_known_hosts(&known_hosts, &endpoint)
            .map_err(|e| ssh_error(format!("cannot update {}: {e}", known_hosts.display())))?;
        let check = match check {
            HostKeyCheck::AcceptNew => openssh::KnownHosts::Accept,
            HostKeyCheck::Strict => openssh::KnownHosts::Strict,
        };
        let connect_timeout = options.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let mut builder = openssh::SessionBuilder::default();
        builder
            .user(endpoint.user.clone())
            .port(endpoint.port)
            .user_known_hosts_file(&known_hosts)
            .known_hosts_check(check)
            .connect_timeout(connect_timeout)
            .server_alive_interval(options.keepalive_interval.unwrap_or(KEEPALIVE_INTERVAL))
            .control_directory(&control);
        if let Some(key) = &options.identity_file {
            builder.keyfile(key);
        }
        // ssh's ConnectTimeout covers the TCP connect and the banner, not a server that stalls
        // during key exchange or authentication: the whole connect gets a bound of its own.
        let bound = connect_timeout * 2 + Duration::from_secs(10);
        let connecting = tokio::time::timeout(bound, builder.connect_mux(&endpoint.host)).await.map_err(|_| {
            ssh_error(format!("connecting to {}:{} took longer than {bound:?}", endpoint.host, endpoint.port))
        })?;
        let session = connecting.map_err(|e| {
            let message = e.to_string();
            let detail = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            let text = format!("{message}: {detail}");
            if text.contains("IDENTIFICATION HAS CHANGED") || text.contains("Host key verification failed") {
                Error::SshHostKeyChanged { id: id.clone(), known_hosts: known_hosts.display().to_string() }
            } else if text.contains("Permission denied") {
                let tried = options
                    .identity_file
                    .as_ref()
                    .map_or_else(|| "your ssh configuration and agent".to_string(), |k| format!("key {}", k.display()));
                Error::SshAuth { id: id.clone(), tried, message: detail.trim().to_string() }
            } else {
                ssh_error(text.trim().to_string())
            }
        })?;
        tracing::debug!(pod = %id, "connected");
        let master = Master::find(session.control_socket()).await;
        if master.is_none() {
            tracing::debug!(pod = %id, "the ControlMaster's process id is unknown: a close that hangs cannot end it");
        }
        let download_stall_window =
            options.download_stall_window.unwrap_or(DOWNLOAD_STALL_WINDOW).max(Duration::from_secs(1));
        Ok(Self {
            id,
            endpoint,
            session: Some(session),
            master,
            known_hosts,
            identity: options.identity_file.clone(),
            download_stall_window,
        })
    }

    fn mux(&self) -> &openssh::Session {
        // Only `close` and `drop` take the session, and both consume `self`.
        self.session.as_ref().expect("a RemoteSession's master is there until it is closed")
    }

    /// The ControlMaster's process id, when it could be learnt (`ssh -O check`).
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(|m| m.pid)
    }

    /// How long a download may bring fewer than [`DOWNLOAD_MIN_BYTES`]
    /// ([`SessionOptions::download_stall_window`]).
    pub fn download_stall_window(&self) -> Duration {
        self.download_stall_window
    }

    /// The pod.
    pub fn pod(&self) -> &PodId {
        &self.id
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &SshEndpoint {
        &self.endpoint
    }

    /// The pod's known-hosts file.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The ControlMaster's socket: `ssh -S SOCKET` reuses this session's connection.
    pub fn control_socket(&self) -> &Path {
        self.mux().control_socket()
    }

    /// An `ssh` command line that goes over this session's connection (for `rsync -e`).
    pub(crate) fn ssh_over_master(&self) -> String {
        let mut line = format!(
            "ssh -S {} -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            quote(&self.control_socket().display().to_string()),
            self.endpoint.port,
            quote(&self.known_hosts.display().to_string())
        );
        if let Some(key) = &self.identity {
            line.push_str(&format!(" -i {}", quote(&key.display().to_string())));
        }
        line
    }

    /// `user@host` for tools that take a destination.
    pub(crate) fn destination(&self) -> String {
        format!("{}@{}", self.endpoint.user, self.endpoint.host)
    }

    /// Runs `command`, handing its output to `sink` as it comes (each line, and the bytes as
    /// they came to a sink that wants them); returns its exit status and the output's tail once
    /// both streams have ended. Any exit status is a result, not an error (127 included: see
    /// [`RunResult::hint`]). A closure `|line: OutputLine| ...` is a sink.
    pub async fn run(&self, command: &RemoteCommand, sink: &mut dyn OutputSink) -> Result<RunResult> {
        self.run_interruptible(command, sink, std::future::pending()).await
    }

    /// [`RemoteSession::run`], until `interrupt` completes (a Ctrl-C, a deadline): then the
    /// command's process group on the pod gets SIGINT (its session leader's, as sshd makes every
    /// session: so what the command started gets it too), its output is still read for
    /// [`INTERRUPT_GRACE`], then the group gets SIGKILL, and this returns
    /// [`Error::Cancelled`]. Without this, a command whose caller went away would run on: an
    /// SSH session without a terminal forwards no signal.
    pub async fn run_interruptible(
        &self,
        command: &RemoteCommand,
        sink: &mut dyn OutputSink,
        interrupt: impl std::future::Future<Output = ()> + Send,
    ) -> Result<RunResult> {
        // The remote shell records its process id, which is its process group's (sshd starts
        // each session with setsid), so that an interrupt can reach the command's whole group.
        let pid_file = format!("${{TMPDIR:-/tmp}}/.gpucloud-{:016x}.pid", fastrand::u64(..));
        let line = format!(
            "echo $$ > \"{pid_file}\"; {}\ngpucloud_status=$?; rm -f \"{pid_file}\"; exit $gpucloud_status",
            command.to_shell()
        );
        tracing::debug!(pod = %self.id, command = %command.to_shell(), "running");
        tokio::pin!(interrupt);
        let mut interrupted: Option<tokio::time::Instant> = None;
        let mut killed = false;
        let mut child = self
            .mux()
            .raw_command(&line)
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.command_error(&line, e))?;
        let mut stdout = child.stdout().take();
        let mut stderr = child.stderr().take();
        let (mut out_lines, mut err_lines) = (LineSplitter::new(Stream::Stdout), LineSplitter::new(Stream::Stderr));
        let (mut out_buffer, mut err_buffer) = (vec![0u8; 64 * 1024], vec![0u8; 16 * 1024]);
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut lines = Vec::new();
        let mut history = (!sink.wants_lines()).then(OutputHistory::default);
        // Both streams are read to their end, whatever they carry: a stream left unread would
        // block the remote command once its pipe fills, and the exit status would never come.
        while stdout.is_some() || stderr.is_some() {
            let grace_over = async {
                match interrupted {
                    Some(at) => tokio::time::sleep_until(at + INTERRUPT_GRACE * if killed { 2 } else { 1 }).await,
                    None => std::future::pending().await,
                }
            };
            let (stream, read) = tokio::select! {
                read = read_some(&mut stdout, &mut out_buffer) => (Stream::Stdout, read),
                read = read_some(&mut stderr, &mut err_buffer) => (Stream::Stderr, read),
                () = &mut interrupt, if interrupted.is_none() => {
                    interrupted = Some(tokio::time::Instant::now());
                    tracing::debug!(pod = %self.id, "interrupted: SIGINT to the command's process group");
                    self.signal_group(&pid_file, "INT").await;
                    continue;
                }
                () = grace_over => {
                    if killed {
                        // Output still open after SIGKILL (a child that left the group): given up.
                        break;
                    }
                    killed = true;
                    self.signal_group(&pid_file, "KILL").await;
                    continue;
                }
            };
            let (splitter, buffer) = match stream {
                Stream::Stdout => (&mut out_lines, &out_buffer),
                Stream::Stderr => (&mut err_lines, &err_buffer),
            };
            match read {
                Ok(n) if n > 0 => {
                    sink.bytes(stream, &buffer[..n]);
                    match &mut history {
                        Some(history) => history.push(stream, &buffer[..n]),
                        None => splitter.feed(&buffer[..n], &mut |line| lines.push(line)),
                    }
                }
                // The end, or a pipe that cannot be read (the connection's end decides the rest).
                _ => {
                    if history.is_none() {
                        splitter.finish(&mut |line| lines.push(line));
                    }
                    match stream {
                        Stream::Stdout => stdout = None,
                        Stream::Stderr => stderr = None,
                    }
                }
            }
            for line in lines.drain(..) {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                sink.line(line);
            }
        }
        if interrupted.is_some() {
            // Its status is not waited for: the caller has gone.
            return Err(Error::Cancelled);
        }
        let exit_code = self.exit_code(&line, child.wait().await)?;
        let tail = match history {
            Some(history) => history.tail(),
            None => tail.into(),
        };
        Ok(RunResult { exit_code, tail })
    }

    /// Sends `signal` to the process group whose leader wrote `pid_file` (bounded; a failure
    /// only means the command has already gone).
    async fn signal_group(&self, pid_file: &str, signal: &str) {
        // An interrupt may come before the command's shell has written its pid: wait for it a
        // little (2 s at most). After SIGKILL nobody removes the file but this. `kill -SIG -PGID`
        // without `--`: dash's kill refuses `--`.
        let cleanup = if signal == "KILL" { format!("rm -f \"{pid_file}\"") } else { "true".into() };
        let script = format!(
            "i=0; while [ ! -s \"{pid_file}\" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; \
             p=$(cat \"{pid_file}\" 2>/dev/null) && [ -n \"$p\" ] && kill -{signal} \"-$p\" 2>/dev/null; {cleanup}"
        );
        let line = RemoteCommand::script(script).to_shell();
        let signalled = async {
            let mut child = self.spawn_piped(&line, false, false).await?;
            let _ = read_text(child.stderr().take()).await;
            self.exit_code(&line, child.wait().await)
        };
        match tokio::time::timeout(Duration::from_secs(5), signalled).await {
            Ok(Ok(code)) => tracing::debug!(pod = %self.id, signal, code, "signalled the command's process group"),
            Ok(Err(e)) => tracing::debug!(pod = %self.id, signal, error = %e, "signalling the command's process group"),
            Err(_) => tracing::debug!(pod = %self.id, signal, "signalling the command's process group timed out"),
        }
    }

    /// Runs a shell script and returns its exit status and both outputs, whole (for small
    /// probes, not for long jobs).
    pub async fn output(&self, script: &str) -> Result<(i32, String, String)> {
        tracing::debug!(pod = %self.id, script, "running");
        let line = RemoteCommand::script(script).to_shell();
        let mut child = self.spawn_piped(&line, false, true).await?;
        let (stdout, stderr) = tokio::join!(read_text(child.stdout().take()), read_text(child.stderr().take()));
        let code = self.exit_code(&line, child.wait().await)?;
        Ok((code, stdout, stderr))
    }

    /// Whether `program` is on the pod's `PATH`.
    pub async fn has_program(&self, program: &str) -> Result<bool> {
        Ok(self.output(&format!("command -v {} >/dev/null 2>&1", quote(program))).await?.0 == 0)
    }

    /// Utilization per GPU, percent, from the pod's `nvidia-smi` (PrimeIntellect reports none
    /// through its API).
    pub async fn gpu_utilization(&self) -> Result<Vec<u8>> {
        let (code, stdout, stderr) =
            self.output("nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits").await?;
        if code != 0 {
            return Err(Error::Ssh {
                id: self.id.clone(),
                message: format!("nvidia-smi exited {code}: {}", stderr.trim()),
            });
        }
        stdout
            .lines()
            .map(|l| l.trim().parse::<u8>().map(|u| u.min(100)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::Ssh {
                id: self.id.clone(),
                message: format!("unreadable nvidia-smi output {stdout:?}"),
            })
    }

    /// Spawns a remote command with piped stdin/stdout, for streams.
    pub(crate) async fn spawn_piped(
        &self,
        line: &str,
        stdin: bool,
        stdout: bool,
    ) -> Result<openssh::Child<&openssh::Session>> {
        let pipe = |on: bool| if on { openssh::Stdio::piped() } else { openssh::Stdio::null() };
        self.mux()
            .raw_command(line)
            .stdin(pipe(stdin))
            .stdout(pipe(stdout))
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.command_error(line, e))
    }

    /// A finished command's exit status: 128 + N for a signal, 127 for "not found".
    pub(crate) fn exit_code(
        &self,
        line: &str,
        status: std::result::Result<std::process::ExitStatus, openssh::Error>,
    ) -> Result<i32> {
        match status {
            Ok(status) => Ok(status.code().unwrap_or(255)),
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(127),
            Err(e) => Err(self.command_error(line, e)),
        }
    }

    pub(crate) fn command_error(&self, line: &str, error: openssh::Error) -> Error {
        match error {
            openssh::Error::Disconnected | openssh::Error::RemoteProcessTerminated => {
                Error::SshConnectionLost { id: self.id.clone(), command: line.to_string() }
            }
            other => Error::Ssh { id: self.id.clone(), message: format!("{line:?}: {other}") },
        }
    }

    /// Ends the session: the ControlMaster is asked to stop, and given [`CLOSE_TIMEOUT`] in
    /// all; past it (or when the request cannot be made) its process is killed. Never waits
    /// longer.
    pub async fn close(mut self) -> Result<()> {
        let id = self.id.clone();
        let master = self.master.take();
        let Some(session) = self.session.take() else { return Ok(()) };
        let started = tokio::time::Instant::now();
        let closed = tokio::time::timeout(CLOSE_TIMEOUT, session.close()).await;
        if let Some(master) = master {
            master.end(CLOSE_TIMEOUT.saturating_sub(started.elapsed())).await;
        }
        match closed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Ssh { id, message: format!("closing: {e} (its ControlMaster was ended)") }),
            Err(_) => Err(Error::Ssh {
                id,
                message: format!("closing took longer than {CLOSE_TIMEOUT:?}: its ControlMaster was killed"),
            }),
        }
    }
}

impl Drop for RemoteSession {
    /// A session dropped without [`RemoteSession::close`] (a cancelled job, an error path) ends
    /// its ControlMaster at once, without blocking: `openssh`'s own drop would send the stop
    /// request synchronously, which a hung master never answers.
    fn drop(&mut self) {
        let Some(session) = self.session.take() else { return };
        match self.master.take() {
            Some(master) => {
                master.signal(libc::SIGTERM);
                let (socket, _log) = session.detach();
                if let Some(dir) = socket.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            None => drop(session),
        }
    }
}

/// A ControlMaster's process.
#[derive(Debug)]
struct Master {
    pid: u32,
    socket: PathBuf,
}

impl Master {
    /// Asks the master behind `socket` for its process id (`ssh -O check`, bounded).
    async fn find(socket: &Path) -> Option<Self> {
        let check = tokio::process::Command::new("ssh")
            .arg("-S")
            .arg(socket)
            .args(["-O", "check", "gpucloud-pod"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(5), check).await.ok()?.ok()?;
        // "Master running (pid=12345)"
        let text = String::from_utf8_lossy(&output.stderr);
        let digits: String = text.split("pid=").nth(1)?.chars().take_while(char::is_ascii_digit).collect();
        Some(Self { pid: digits.parse().ok()?, socket: socket.to_path_buf() })
    }

    /// Whether the process still runs and is still this master (where `/proc` can tell: a
    /// process id is reused once its process is gone).
    fn alive(&self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else { return false };
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return false;
        }
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if !proc.exists() {
            return true;
        }
        let zombie = std::fs::read_to_string(proc.join("stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
            .unwrap_or(false);
        let ours = std::fs::read(proc.join("cmdline"))
            .map(|cmdline| {
                let socket = self.socket.as_os_str().as_encoded_bytes();
                cmdline.windows(socket.len()).any(|w| w == socket)
            })
            .unwrap_or(false);
        !zombie && ours
    }

    fn signal(&self, signal: i32) {
        if self.alive()
            && let Ok(pid) = i32::try_from(self.pid)
        {
            // SAFETY: kill(2) on a process id just checked to be this master; no memory involved.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Waits up to `grace` (at most 1 s) for the master to exit, then ends it: SIGTERM, and
    /// SIGKILL a second later, each followed by up to a second for it to be gone.
    async fn end(self, grace: Duration) {
        let step = Duration::from_millis(50);
        let deadline = tokio::time::Instant::now() + grace.min(Duration::from_secs(1));
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(step).await;
        }
        if !self.alive() {
            return;
        }
        for signal in [libc::SIGTERM, libc::SIGKILL] {
            self.signal(signal);
            // Gone when this returns (a killed process takes a moment to be marked so).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while self.alive() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(step).await;
            }
            if !self.alive() {
                return;
            }
        }
        tracing::warn!(pid = self.pid, "a ControlMaster outlived SIGKILL");
    }
}

/// All of a child's output stream as text (lossy), `""` without one or when reading fails.
pub(crate) async fn read_text(reader: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut bytes = Vec::new();
    if let Some(mut reader) = reader {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads some bytes from `reader`; pending forever once it is gone (for `select!`).
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buffer: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buffer).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_split_from_the_history_matches_the_lines_streamed() {
        let texts = |lines: &[OutputLine]| {
            lines
                .iter()
                .map(|l| match l {
                    OutputLine::Stdout(t) => format!("out:{t}"),
                    OutputLine::Stderr(t) => format!("err:{t}"),
                })
                .collect::<Vec<_>>()
        };
        // Short: everything kept, streams in the order they came, unterminated ends included.
        let mut history = OutputHistory::default();
        history.push(Stream::Stdout, b"a\nb");
        history.push(Stream::Stderr, b"warn\n");
        history.push(Stream::Stdout, b"c\nd");
        assert_eq!(texts(&history.tail()), ["out:a", "err:warn", "out:bc", "out:d"]);
        // Long: the last TAIL_LINES lines, the piece of a line cut at the history's start dropped.
        let mut history = OutputHistory::default();
        for i in 0..100_000 {
            history.push(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        history.push(Stream::Stderr, b"done\n");
        let tail = texts(&history.tail());
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "err:done");
        assert_eq!(tail[0], format!("out:line {}", 100_000 - TAIL_LINES + 1));
        // A chunk larger than the history keeps its end.
        let mut history = OutputHistory::default();
        history.push(Stream::Stdout, &vec![b'x'; 3 * TAIL_HISTORY_BYTES]);
        history.push(Stream::Stdout, b"\nlast\n");
        assert_eq!(texts(&history.tail()), ["out:last"], "the cut line is not shown as if whole");
        assert!(history_bytes_bounded());
    }

    fn history_bytes_bounded() -> bool {
        let mut history = OutputHistory::default();
        for _ in 0..1000 {
            history.push(Stream::Stdout, &[b'y'; 4096]);
        }
        history.bytes <= TAIL_HISTORY_BYTES
            && history.chunks.iter().map(|(_, c)| c.len()).sum::<usize>() == history.bytes
    }

    fn split(chunks: &[&[u8]]) -> Vec<OutputLine> {
        let mut splitter = LineSplitter::new(Stream::Stdout);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, &mut |line| lines.push(line));
        }
        splitter.finish(&mut |line| lines.push(line));
        lines
    }

    #[test]
    fn output_is_bytes_split_on_newlines_and_never_ends_on_a_bad_byte() {
        let out = |text: &str| OutputLine::Stdout(text.into());
        // A non-UTF-8 byte is replaced, and the lines after it still come (R1).
        assert_eq!(
            split(&[b"before\nbad\xffbyte\r\naf", b"ter\nno newline"]),
            [out("before"), out("bad\u{fffd}byte"), out("after"), out("no newline")]
        );
        // A line that never ends comes in bounded pieces, cut between characters.
        let long = "\u{e9}".repeat(MAX_LINE_BYTES);
        let lines = split(&[long.as_bytes()]);
        assert_eq!(lines.len(), 2);
        let joined: String = lines
            .iter()
            .map(|l| match l {
                OutputLine::Stdout(t) => t.as_str(),
                OutputLine::Stderr(_) => unreachable!(),
            })
            .collect();
        assert_eq!(joined, long, "no character was cut in two");
    }

    #[test]
    fn known_hosts_are_pinned_to_the_pod_not_its_port() {
        let file = std::env::temp_dir().join(format!("gpucloud-pin-{}", std::process::id()));
        std::fs::write(&file, "[127.0.0.1]:40001 ssh-ed25519 AAAAkey\n@revoked * ssh-ed25519 AAAAold\n").unwrap();
        let endpoint = SshEndpoint { host: "127.0.0.1".into(), port: 40002, user: "root".into() };
        pin_known_hosts(&file, &endpoint).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "[127.0.0.1]:40002 ssh-ed25519 AAAAkey\n@revoked * ssh-ed25519 AAAAold\n"
        );
        let _ = std::fs::remove_file(&file);
        pin_known_hosts(&file, &endpoint).unwrap();
        assert!(!file.exists(), "a first contact stays a first contact");
    }

    #[test]
    fn state_directories_are_private_or_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = std::env::temp_dir().join(format!("gpucloud-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fresh = root.join("state/known_hosts");
        ensure_private(&fresh).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
        // A directory others may write to (a pre-created /tmp/gpucloud-state, say) is refused,
        // named.
        let shared = root.join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = ensure_private(&shared);
        assert!(
            matches!(&refused, Err(Error::UnsafeStateDir { path, .. }) if path == &shared.display().to_string()),
            "{refused:?}"
        );
        // No place at all (no HOME, no XDG_* variables): refused, never a shared fallback.
        assert!(matches!(ensure_private(Path::new("")), Err(Error::UnsafeStateDir { .. })));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn commands_are_quoted_for_the_remote_shell() {
        let mut command = RemoteCommand::new(["python", "train.py", "--name", "it's", "a b"]);
        command.env.insert("STAGE".into(), "two words".into());
        command.cwd = Some("job dir".into());
        assert_eq!(
            command.to_shell(),
            r"mkdir -p 'job dir' && cd 'job dir' && env 'STAGE=two words' python train.py --name 'it'\''s' 'a b'"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("~/x"), "'~/x'");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}
