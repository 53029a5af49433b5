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
//! Errors are typed: no direct endpoint ([`Error::NoDirectSsh`]: RunPod's proxy "carries an
//! interactive shell only"), authentication refused ([`Error::SshAuth`], naming the key tried),
//! a connection lost mid-command ([`Error::SshConnectionLost`]: the command's fate is unknown),
//! a program the remote shell cannot find ([`Error::RemoteCommandNotFound`]).

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId, SshEndpoint};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// Overrides where gpucloud keeps per-pod state (known-hosts files, SSH control sockets, sync
/// manifests).
pub const STATE_DIR_ENV: &str = "GPUCLOUD_STATE_DIR";

/// How many trailing output lines a [`RunResult`] keeps.
pub const TAIL_LINES: usize = 50;

/// Where gpucloud keeps per-pod state: `$GPUCLOUD_STATE_DIR`, else
/// `$XDG_STATE_HOME/gpucloud`, else `~/.local/state/gpucloud`.
pub fn state_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(STATE_DIR_ENV) {
        return dir;
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return dir.join("gpucloud");
    }
    match var("HOME") {
        Some(home) => home.join(".local/state/gpucloud"),
        None => std::env::temp_dir().join("gpucloud-state"),
    }
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
pub fn pod_known_hosts(id: &PodId) -> std::io::Result<(PathBuf, HostKeyCheck)> {
    // A file written here must go when the pod does.
    forget_terminated_pods();
    let file = known_hosts_file(id);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let first_contact = std::fs::metadata(&file).map_or(true, |m| m.len() == 0);
    Ok((file, if first_contact { HostKeyCheck::AcceptNew } else { HostKeyCheck::Strict }))
}

/// The sync manifest gpucloud keeps for pod `id` (see [`crate::remote::sync`]).
pub(crate) fn manifest_file(id: &PodId) -> PathBuf {
    state_dir().join("sync").join(format!("{}.json", pod_file_name(id)))
}

/// Forgets what gpucloud kept for pod `id` (its host key, its sync manifest): run when the
/// pod's termination is confirmed ([`forget_terminated_pods`]), so a later pod on the same
/// address starts afresh.
pub fn forget_pod(id: &PodId) {
    for file in [known_hosts_file(id), manifest_file(id)] {
        let _ = std::fs::remove_file(file);
    }
}

/// Makes every confirmed termination in this process forget the pod's files ([`forget_pod`],
/// through [`crate::providers::hooks::on_termination_confirmed`]). Sessions and known-hosts
/// lookups register it themselves; a program that terminates pods without opening a session
/// (the CLI's `down`, say) calls it once at start. Idempotent.
pub fn forget_terminated_pods() {
    crate::providers::hooks::on_termination_confirmed(forget_pod);
}

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// A private key file to offer (e.g. the launch's key); `None`: the user's own ssh
    /// configuration and agent decide.
    pub identity_file: Option<PathBuf>,
    /// How long connecting may take (default 30 s).
    pub connect_timeout: Option<Duration>,
}

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

/// One line of a command's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stream", content = "line", rename_all = "lowercase")]
pub enum OutputLine {
    /// From standard output.
    Stdout(String),
    /// From standard error.
    Stderr(String),
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Its exit status (128 + N when killed by signal N, as a shell reports it).
    pub exit_code: i32,
    /// The last [`TAIL_LINES`] lines of its output, both streams, in order of arrival.
    pub tail: Vec<OutputLine>,
}

/// An SSH session on one pod. See the [module documentation](self).
pub struct RemoteSession {
    id: PodId,
    endpoint: SshEndpoint,
    session: openssh::Session,
    known_hosts: PathBuf,
    identity: Option<PathBuf>,
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
        let (known_hosts, check) = pod_known_hosts(&id)
            .map_err(|e| ssh_error(format!("cannot create {}: {e}", known_hosts_file(&id).display())))?;
        let control = state_dir().join("control");
        std::fs::create_dir_all(&control)
            .map_err(|e| ssh_error(format!("cannot create {}: {e}", control.display())))?;
        let check = match check {
            HostKeyCheck::AcceptNew => openssh::KnownHosts::Accept,
            HostKeyCheck::Strict => openssh::KnownHosts::Strict,
        };
        let mut builder = openssh::SessionBuilder::default();
        builder
            .user(endpoint.user.clone())
            .port(endpoint.port)
            .user_known_hosts_file(&known_hosts)
            .known_hosts_check(check)
            .connect_timeout(options.connect_timeout.unwrap_or(Duration::from_secs(30)))
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(&control);
        if let Some(key) = &options.identity_file {
            builder.keyfile(key);
        }
        let session = builder.connect_mux(&endpoint.host).await.map_err(|e| {
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
        Ok(Self { id, endpoint, session, known_hosts, identity: options.identity_file.clone() })
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
        self.session.control_socket()
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

    /// Runs `command`, handing each output line to `on_line` as it comes; returns its exit
    /// status and the output's tail. A non-zero exit is a result, not an error.
    pub async fn run(
        &self,
        command: &RemoteCommand,
        on_line: &mut (dyn FnMut(OutputLine) + Send),
    ) -> Result<RunResult> {
        let line = command.to_shell();
        let mut child = self
            .session
            .raw_command(&line)
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.command_error(&line, e))?;
        let mut stdout = child.stdout().take().map(|s| BufReader::new(s).lines());
        let mut stderr = child.stderr().take().map(|s| BufReader::new(s).lines());
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut push = |line: OutputLine, tail: &mut VecDeque<OutputLine>| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            on_line(line);
        };
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                line = next_line(&mut stdout) => match line {
                    Some(text) => push(OutputLine::Stdout(text), &mut tail),
                    None => stdout = None,
                },
                line = next_line(&mut stderr) => match line {
                    Some(text) => push(OutputLine::Stderr(text), &mut tail),
                    None => stderr = None,
                },
            }
        }
        let exit_code = self.exit_code(&line, child.wait().await)?;
        // 127: the shell's "command not found" (the `openssh` crate reports it so too).
        if exit_code == 127 {
            let program = command.argv.first().cloned().unwrap_or_default();
            return Err(Error::RemoteCommandNotFound { id: self.id.clone(), program });
        }
        Ok(RunResult { exit_code, tail: tail.into() })
    }

    /// Runs a shell script and returns its exit status and both outputs, whole (for small
    /// probes, not for long jobs).
    pub async fn output(&self, script: &str) -> Result<(i32, String, String)> {
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
        self.session
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

    /// Ends the session (its ControlMaster exits).
    pub async fn close(self) -> Result<()> {
        let id = self.id.clone();
        self.session.close().await.map_err(|e| Error::Ssh { id, message: format!("closing: {e}") })
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

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Option<tokio::io::Lines<R>>) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
