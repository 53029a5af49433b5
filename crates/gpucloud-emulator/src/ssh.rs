//! Each pod created through the API is a real SSH host on its loopback port (an SSH server
//! built with `russh`), so everything after readiness can be tested with the system `ssh`,
//! `rsync` over ssh and `tar` over ssh, unmodified.
//!
//! **Emulated pods run commands on this machine, as the user running the emulator.** They listen
//! on 127.0.0.1 only, accept nothing but public-key authentication with the keys registered for
//! the pod (PrimeIntellect: its `sshKeyId`; RunPod: the account's keys at create time) or, as
//! sshd does, listed in `~/.ssh/authorized_keys` of the pod's own `HOME` at the time, and run
//! each exec request with `sh -c` in the pod's own directory (a temporary directory per pod, `HOME`
//! there, removed when the pod is terminated), with the pod's environment and `bin/` first on
//! `PATH` (an `nvidia-smi` there reports the utilization set for the pod). Absolute paths reach
//! the real file system: the emulator is a test bench, not a sandbox.
//!
//! The host answers only while the pod runs: while it provisions or is stopped a connection is
//! closed before any identification; once it is terminated the listener is closed. As on a real
//! cloud, stopping or terminating a pod cuts its open connections and kills every process its
//! commands started (each command runs in a process group of its own, as sshd's `setsid`). A RunPod pod
//! answers only when created with `startSsh` while the account had keys (the document's
//! `startSsh` and `PodSsh`). Under [`crate::FaultKind::SshBannerDelay`] the host starts
//! answering only some time after the pod reports running; under
//! [`crate::FaultKind::SshDropMidCommand`] a connection is cut once a command has started; under
//! [`crate::FaultKind::SshStall`] it stays open but goes silent once a command has started
//! (nothing read, nothing answered: only a client's keepalives can tell); under
//! [`crate::FaultKind::SshMasterHang`] it goes silent once a command has ended (its exit status
//! sent), so the client's channel and connection close are never answered.
//! `sftp` is not served (`scp` needs `-O`, its legacy protocol).
//!
//! A PrimeIntellect multi-node pod is one such host per node: each node has its own port, its
//! own host key (from the seed, the pod id and the node's index), its own directory and `/data`,
//! the pod's keys and environment; they answer, are cut and have their processes killed
//! together, as the pod's phase says.

use crate::Inner;
use crate::state::{Api, Phase};
use russh::keys::PublicKey;
use russh::server::{Auth, Handler, Msg, Session};
use russh::{Channel, ChannelId, CryptoVec, MethodKind, MethodSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// What the emulated `sshd` identifies itself as.
pub const BANNER: &str = "SSH-2.0-gpucloud-emulator\r\n";

/// How often a listener checks whether its pod is gone.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// A bound, not yet serving, SSH listener.
pub(crate) struct SshListener(std::net::TcpListener);

impl SshListener {
    /// Binds a free loopback port (or `None` when none can be had: the pod then has an endpoint
    /// that refuses connections, like a pod whose SSH never came up).
    pub fn bind() -> Option<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
        listener.set_nonblocking(true).ok()?;
        Some(Self(listener))
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves node `node` of pod `id` (0 for a single-node pod) until the pod is terminated or
    /// the emulator is gone.
    pub fn serve(self, inner: &Arc<Inner>, api: Api, id: String, node: usize) {
        let port = self.port();
        let Ok(listener) = tokio::net::TcpListener::from_std(self.0) else { return };
        let config = Arc::new(server_config(host_key(inner.config.seed, &id, node)));
        let inner = Arc::downgrade(inner);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => Some(accepted),
                    () = tokio::time::sleep(CHECK_EVERY) => None,
                };
                let Some(answer) = answering(&inner, api, &id) else { return };
                // The pod moved to another port (a RunPod start): this listener closes.
                if current_port(&inner, api, &id, node) != Some(port) {
                    return;
                }
                if let Some(Ok((socket, _))) = accepted
                    && answer
                {
                    // Small packets at once, as sshd does: with Nagle on, each short exchange
                    // waits out a delayed ACK (about 40 ms on Linux); the benchmark showed it.
                    let _ = socket.set_nodelay(true);
                    let Some((socket, link)) = Link::wrap(socket) else { continue };
                    let Some(host) = PodHost::new(&inner, api, &id, node, link.clone()) else { continue };
                    let config = Arc::clone(&config);
                    let (inner, id) = (inner.clone(), id.clone());
                    tokio::spawn(async move {
                        let Ok(running) = russh::server::run_stream(config, socket, host).await else { return };
                        // The pod stopped or gone: the connection is cut and its processes killed,
                        // as a real host's would be.
                        let gone = async {
                            while answering(&inner, api, &id) == Some(true) {
                                tokio::time::sleep(CHECK_EVERY).await;
                            }
                        };
                        tokio::select! {
                            _ = running => {}
                            () = gone => link.cut(),
                        }
                    });
                }
            }
        });
    }
}

/// The pod's (node's) host key: Ed25519 from the emulator's seed, the pod id and the node's
/// index, so a pod keeps one key for its life and every pod, and every node of a multi-node pod,
/// has its own. Node 0's is what a single-node pod has always had.
fn host_key(seed: u64, id: &str, node: usize) -> russh::keys::PrivateKey {
    use std::hash::{Hash, Hasher};
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        if node == 0 {
            (seed, id, i).hash(&mut hasher);
        } else {
            (seed, id, i, node).hash(&mut hasher);
        }
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    let keypair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&bytes);
    russh::keys::PrivateKey::from(keypair)
}

fn server_config(key: russh::keys::PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(BANNER.trim_end().to_string()),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![key],
        // A refused key is answered at once: tests try wrong keys on purpose.
        auth_rejection_time: Duration::from_millis(50),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        ..Default::default()
    }
}

/// `None`: stop serving (pod terminated, or the emulator shut down); `Some(answer)`: whether a
/// connection is served now.
fn answering(inner: &Weak<Inner>, api: Api, id: &str) -> Option<bool> {
    let inner = inner.upgrade()?;
    let state = inner.state();
    let pod = state.pods.iter().find(|p| p.api == api && p.id == id)?;
    match pod.phase(inner.config.ready_delay) {
        Phase::Terminated => None,
        // RunPod's `startSsh` "requires registered keys — with none registered the flag does
        // nothing and the pod has no SSH access" (and a pod created without it has none
        // "regardless of what this block reports"): no sshd answers, whatever `ssh` says.
        Phase::Running if api == Api::RunPod && pod.authorized_keys.is_empty() => Some(false),
        Phase::Running => Some(pod.created.elapsed() >= inner.config.ready_delay + pod.banner_delay),
        Phase::Provisioning | Phase::Stopped | Phase::Failed => Some(false),
    }
}

/// The port node `node` of pod `id`'s SSH host answers on now.
fn current_port(inner: &Weak<Inner>, api: Api, id: &str, node: usize) -> Option<u16> {
    let inner = inner.upgrade()?;
    let state = inner.state();
    state.pods.iter().find(|p| p.api == api && p.id == id).and_then(|p| p.node_port(node))
}

/// A fresh directory under which one emulator keeps its pods' directories.
pub(crate) fn new_home_root() -> PathBuf {
    static INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("gpucloud-emulator-{}-{n}", std::process::id()))
}

/// Where PrimeIntellect mounts a pod's disk: "mounted at `/data` once the instance completes
/// provisioning" (its provisioning guide).
pub const DISK_MOUNT: &str = "/data";

/// The directory that holds PrimeIntellect disk `id`'s files, whichever pod it is attached to.
pub(crate) fn disk_dir(root: &Path, id: &str) -> PathBuf {
    // Every byte but [A-Za-z0-9-] written as %XX: two ids never share a directory, and none
    // leaves `disks/`.
    let clean: String = id
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    root.join("disks").join(clean)
}

/// Whether this machine lets the emulator give each PrimeIntellect pod its own [`DISK_MOUNT`]:
/// a private mount namespace per SSH session with a bind mount there (Linux, as root). Probed
/// once; the mount point is created if missing (an empty directory). Elsewhere pods have no
/// `/data` of their own, and what a command writes there lands on this machine.
pub fn mounts_disks() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: geteuid(2) takes nothing and cannot fail.
            if unsafe { libc::geteuid() } != 0 || std::fs::create_dir_all(DISK_MOUNT).is_err() {
                return false;
            }
            let probe = tempfile_dir();
            let Some(mount) = DataMount::new(&probe) else { return false };
            let mut command = std::process::Command::new("true");
            // SAFETY: only async-signal-safe system calls between fork and exec (DataMount::enter).
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || mount.enter());
            }
            let supported = command.status().is_ok_and(|s| s.success());
            let _ = std::fs::remove_dir_all(&probe);
            supported
        }
        #[cfg(not(target_os = "linux"))]
        false
    })
}

#[cfg(target_os = "linux")]
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpucloud-emulator-mount-probe-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A bind mount of a directory at [`DISK_MOUNT`] in a private mount namespace, entered by a
/// session's process between fork and exec.
#[derive(Clone)]
pub(crate) struct DataMount {
    source: std::ffi::CString,
    target: std::ffi::CString,
    root: std::ffi::CString,
}

impl DataMount {
    pub(crate) fn new(source: &Path) -> Option<Self> {
        use std::os::unix::ffi::OsStrExt as _;
        Some(Self {
            source: std::ffi::CString::new(source.as_os_str().as_bytes()).ok()?,
            target: std::ffi::CString::new(DISK_MOUNT).ok()?,
            root: std::ffi::CString::new("/").ok()?,
        })
    }

    /// Runs in the child between fork and exec: unshare(2) and mount(2) only, nothing allocated.
    #[cfg(target_os = "linux")]
    pub(crate) fn enter(&self) -> std::io::Result<()> {
        // SAFETY: system calls with pointers to C strings this value owns; async-signal-safe.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Mounts made here stay here (the host's root is often shared).
            if libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                self.source.as_ptr(),
                self.target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// The directory an emulated pod's commands run in.
pub(crate) fn pod_home(root: &Path, api: Api, id: &str) -> PathBuf {
    let api = match api {
        Api::PrimeIntellect => "primeintellect",
        Api::RunPod => "runpod",
    };
    root.join(format!("{api}-{id}"))
}

/// The directory node `node` of a pod runs its commands in: the pod's own ([`pod_home`]) for
/// node 0, a sibling `….node{N}` for the other nodes of a PrimeIntellect multi-node pod.
pub(crate) fn node_home(root: &Path, api: Api, id: &str, node: usize) -> PathBuf {
    let home = pod_home(root, api, id);
    if node == 0 {
        return home;
    }
    let mut name = home.into_os_string();
    name.push(format!(".node{node}"));
    PathBuf::from(name)
}

/// Writes the utilization `nvidia-smi` reports in the directory of each of the pod's `nodes`,
/// where it exists.
pub(crate) fn write_utilization(root: &Path, api: Api, id: &str, nodes: usize, percent: u8) {
    for node in 0..nodes.max(1) {
        let dir = node_home(root, api, id, node).join(".gpucloud-emulator");
        if dir.is_dir() {
            let _ = std::fs::write(dir.join("gpu-util"), format!("{percent}\n"));
        }
    }
}

/// Creates the pod's directory with its `bin/nvidia-smi`; idempotent, and no writes once done
/// (every connection calls it, readiness probes included).
fn prepare_home(home: &Path, gpus: u32, utilization: u8) -> std::io::Result<()> {
    let bin = home.join("bin");
    let path = bin.join("nvidia-smi");
    if path.exists() && home.join(".gpucloud-emulator/gpu-util").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(home.join(".gpucloud-emulator"))?;
    let util = home.join(".gpucloud-emulator/gpu-util");
    if !util.exists() {
        std::fs::write(&util, format!("{utilization}\n"))?;
    }
    let script = format!(
        "#!/bin/sh\n# gpucloud emulator: one line per GPU with the utilization set for this pod\n\
         u=$(cat \"$HOME/.gpucloud-emulator/gpu-util\" 2>/dev/null || echo 0)\n\
         i=0\nwhile [ $i -lt {gpus} ]; do echo \"$u\"; i=$((i+1)); done\n"
    );
    std::fs::write(&path, script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// One connection's socket as the SSH server sees it, with the means to make it go silent (the
/// stall faults) or cut it (the pod stopped or terminated), and the process groups its commands
/// started (killed when it is cut).
#[derive(Clone)]
struct Link {
    shared: Arc<LinkShared>,
}

struct LinkShared {
    /// A second handle on the socket, to shut it down from outside the SSH server's task.
    socket: std::net::TcpStream,
    silent: std::sync::atomic::AtomicBool,
    groups: std::sync::Mutex<Vec<u32>>,
}

impl Link {
    fn wrap(socket: tokio::net::TcpStream) -> Option<(SilenceableStream, Self)> {
        let std = socket.into_std().ok()?;
        let clone = std.try_clone().ok()?;
        let socket = tokio::net::TcpStream::from_std(std).ok()?;
        let shared = Arc::new(LinkShared {
            socket: clone,
            silent: std::sync::atomic::AtomicBool::new(false),
            groups: std::sync::Mutex::new(Vec::new()),
        });
        Some((SilenceableStream { inner: socket, shared: Arc::clone(&shared) }, Self { shared }))
    }

    /// From now on nothing is answered: what the client sends is read and dropped, what the
    /// server would send is dropped; the connection stays open.
    fn go_silent(&self) {
        self.shared.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn started(&self, group: u32) {
        if let Ok(mut groups) = self.shared.groups.lock() {
            groups.push(group);
        }
    }

    /// The group's leader has exited: it is no longer this connection's to kill (process ids
    /// are reused, within seconds on a busy machine with a small `pid_max`).
    fn ended(&self, group: u32) {
        if let Ok(mut groups) = self.shared.groups.lock() {
            groups.retain(|g| *g != group);
        }
    }

    /// Cuts the connection and kills every process its commands started.
    fn cut(&self) {
        let _ = self.shared.socket.shutdown(std::net::Shutdown::Both);
        let groups = self.shared.groups.lock().map(|g| g.clone()).unwrap_or_default();
        for group in groups {
            kill_group(group);
        }
    }
}

/// Kills process group `group` (a command and everything it started).
fn kill_group(group: u32) {
    #[cfg(unix)]
    if let Ok(group) = i32::try_from(group) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    #[cfg(not(unix))]
    let _ = group;
}

/// The socket, silenced on demand.
struct SilenceableStream {
    inner: tokio::net::TcpStream,
    shared: Arc<LinkShared>,
}

impl SilenceableStream {
    fn silent(&self) -> bool {
        self.shared.silent.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl AsyncRead for SilenceableStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if !self.silent() {
            return std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        // Read and drop what arrives (keepalives included) until the socket ends.
        let mut sink = [0u8; 4096];
        loop {
            let mut scratch = tokio::io::ReadBuf::new(&mut sink);
            match std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(())) if scratch.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        }
    }
}

impl tokio::io::AsyncWrite for SilenceableStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.silent() {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One SSH connection to a pod.
struct PodHost {
    inner: Weak<Inner>,
    api: Api,
    id: String,
    authorized: Vec<PublicKey>,
    home: PathBuf,
    env: Vec<(String, String)>,
    /// What the pod sees at [`DISK_MOUNT`] (PrimeIntellect, where [`mounts_disks`]): its
    /// attached disk, or a directory of its own.
    data: Option<DataMount>,
    channels: HashMap<ChannelId, ChannelState>,
    link: Link,
}

#[derive(Default)]
struct ChannelState {
    env: Vec<(String, String)>,
    stdin: Option<tokio::process::ChildStdin>,
}

impl PodHost {
    /// Whether `key` opens this pod: one of the pod's keys (the account's, or the create's), or,
    /// as with sshd, a line of `~/.ssh/authorized_keys` in the pod's home as it is now (read at
    /// each attempt, so a key added or removed there counts at once). Lines with options are not
    /// understood here and are skipped.
    fn trusts(&self, key: &PublicKey) -> bool {
        let same = |k: &PublicKey| k.key_data() == key.key_data();
        self.authorized.iter().any(same)
            || std::fs::read_to_string(self.home.join(".ssh/authorized_keys")).is_ok_and(|text| {
                text.lines().filter_map(|line| PublicKey::from_openssh(line.trim()).ok()).any(|k| same(&k))
            })
    }

    fn new(inner: &Weak<Inner>, api: Api, id: &str, node: usize, link: Link) -> Option<Self> {
        let strong = inner.upgrade()?;
        let state = strong.state();
        let pod = state.pods.iter().find(|p| p.api == api && p.id == id)?;
        let authorized =
            pod.authorized_keys.iter().filter_map(|line| PublicKey::from_openssh(line.trim()).ok()).collect();
        let home = node_home(&state.home_root, api, id, node);
        // A node has its share of the pod's GPUs (every node alike).
        let gpus = pod.gpu_count / u32::try_from(pod.node_count()).unwrap_or(1).max(1);
        prepare_home(&home, gpus.max(1), pod.gpu_utilization).ok()?;
        let mut env: Vec<(String, String)> = pod.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // RunPod's `startSsh` "injects a `PUBLIC_KEY` environment variable carrying your
        // account's registered SSH public keys, unless the request already sets one".
        if api == Api::RunPod && !pod.authorized_keys.is_empty() && !env.iter().any(|(k, _)| k == "PUBLIC_KEY") {
            env.push(("PUBLIC_KEY".into(), pod.authorized_keys.join("\n")));
        }
        // RunPod documents, in every pod, `RUNPOD_POD_ID` and a `RUNPOD_API_KEY` "limited in
        // scope to only the pod"; the emulator's key is accepted for this pod's own routes only
        // (`middleware::gate`). `RUNPOD_API_BASE_URL` tells the pod where this emulator answers
        // (a real pod uses RunPod's own server).
        if api == Api::RunPod {
            env.retain(|(k, _)| !matches!(k.as_str(), "RUNPOD_POD_ID" | "RUNPOD_API_KEY" | "RUNPOD_API_BASE_URL"));
            env.push(("RUNPOD_POD_ID".into(), pod.id.clone()));
            env.push(("RUNPOD_API_KEY".into(), pod.pod_key.clone()));
            env.push(("RUNPOD_API_BASE_URL".into(), strong.base_url.clone()));
        }
        // Every process the pod starts carries its mark, so ending the pod ends them all.
        env.push((crate::procs::MARK_VAR.into(), home.display().to_string()));
        let data = (api == Api::PrimeIntellect && mounts_disks())
            .then(|| {
                let dir = match pod.disks.first() {
                    Some(disk) => disk_dir(&state.home_root, disk),
                    None if node == 0 => state.home_root.join("pod-data").join(format!("primeintellect-{id}")),
                    None => state.home_root.join("pod-data").join(format!("primeintellect-{id}.node{node}")),
                };
                std::fs::create_dir_all(&dir).ok()?;
                DataMount::new(&dir)
            })
            .flatten();
        Some(Self {
            inner: inner.clone(),
            api,
            id: id.to_string(),
            authorized,
            home,
            env,
            data,
            channels: HashMap::new(),
            link,
        })
    }

    fn spawn(&mut self, channel: ChannelId, command: Option<&str>, session: &mut Session) -> std::io::Result<()> {
        let mut process = tokio::process::Command::new("sh");
        if let Some(command) = command {
            process.arg("-c").arg(command);
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        process
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("PATH", format!("{}:{path}", self.home.join("bin").display()))
            .envs(self.env.iter().cloned())
            .envs(self.channels.get(&channel).map(|c| c.env.clone()).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A process group of its own, as sshd's setsid gives each session: the command and what
        // it starts can be signalled (and killed with the pod) together.
        #[cfg(unix)]
        process.process_group(0);
        // And with the default dispositions a session gets on a pod, whatever this process
        // inherited: started in the background by a shell, it ignores SIGINT and SIGQUIT, and a
        // client's interrupt (gpucloud's Ctrl-C) would then never reach the pod's command.
        #[cfg(unix)]
        // SAFETY: signal(2) is async-signal-safe, the only kind of call allowed between fork
        // and exec; nothing is allocated.
        unsafe {
            let data = self.data.clone();
            process.pre_exec(move || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                #[cfg(target_os = "linux")]
                if let Some(data) = &data {
                    data.enter()?;
                }
                Ok(())
            });
        }
        let mut child = process.spawn()?;
        let group = child.id();
        if let Some(group) = group {
            self.link.started(group);
        }
        let state = self.channels.entry(channel).or_default();
        state.stdin = child.stdin.take();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let handle = session.handle();
        let fault = self.inner.upgrade().and_then(|inner| inner.faults().roll(crate::faults::RequestClass::SshCommand));
        let drop_after = (fault == Some(crate::FaultKind::SshDropMidCommand)).then_some(Duration::from_millis(300));
        let link = self.link.clone();
        if fault == Some(crate::FaultKind::SshStall) {
            // Silent once the command has had a moment to start.
            let link = link.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                link.go_silent();
            });
        }
        let hang_after = fault == Some(crate::FaultKind::SshMasterHang);
        tokio::spawn(async move {
            let out = forward(stdout, handle.clone(), channel, None);
            let err = forward(stderr, handle.clone(), channel, Some(1));
            let finished = async {
                tokio::join!(out, err);
                let status = child.wait().await;
                if let Some(group) = group {
                    link.ended(group);
                }
                status
            };
            let status = match drop_after {
                // The fault: the connection goes while the command runs (its output so far sent).
                Some(after) => tokio::select! {
                    status = finished => status,
                    () = tokio::time::sleep(after) => {
                        if let Some(group) = group {
                            link.ended(group);
                        }
                        let _ = handle
                            .disconnect(russh::Disconnect::ByApplication, "connection lost (emulated)".into(), "en".into())
                            .await;
                        return;
                    }
                },
                None => finished.await,
            };
            // A command killed by a signal reports 128 + the signal, as a shell would.
            let code = status.ok().and_then(|s| s.code().or_else(|| signal_of(&s).map(|n| 128 + n))).unwrap_or(255);
            let _ = handle.exit_status_request(channel, code as u32).await;
            if hang_after {
                // The exit status is out; then nothing more: the close is never answered.
                let _ = handle.eof(channel).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                link.go_silent();
                return;
            }
            // CLOSE without a separate EOF (a CLOSE implies it; output queued before it is sent
            // first). With an EOF first, OpenSSH may send its own CLOSE before this one, and
            // russh drops a channel on the peer's CLOSE without answering it, so this CLOSE
            // would never go: the client's channel then stays half-closed, its stderr never
            // ends, and its ControlMaster never exits (the hang tests/job.rs saw under load).
            let _ = handle.close(channel).await;
        });
        Ok(())
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Copies a child's output to the channel (`ext`: stderr's extended-data code).
async fn forward(
    reader: Option<impl AsyncRead + Unpin>,
    handle: russh::server::Handle,
    channel: ChannelId,
    ext: Option<u32>,
) {
    let Some(mut reader) = reader else { return };
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = CryptoVec::from_slice(&buffer[..n]);
        let sent = match ext {
            Some(code) => handle.extended_data(channel, code, data).await,
            None => handle.data(channel, data).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

impl Handler for PodHost {
    type Error = russh::Error;

    async fn auth_publickey_offered(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        Ok(if self.trusts(key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        // Still running, and the key still one the pod trusts.
        let running = answering(&self.inner, self.api, &self.id) == Some(true);
        Ok(if running && self.trusts(key) { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(&mut self, channel: Channel<Msg>, _: &mut Session) -> Result<bool, Self::Error> {
        self.channels.insert(channel.id(), ChannelState::default());
        Ok(true)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.entry(channel).or_default().env.push((name.to_string(), value.to_string()));
        session.channel_success(channel)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _px_w: u32,
        _px_h: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // No terminal is emulated; the shell still runs, line by line.
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        match self.spawn(channel, Some(&command), session) {
            Ok(()) => session.channel_success(channel),
            Err(_) => session.channel_failure(channel),
        }
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        match self.spawn(channel, None, session) {
            Ok(()) => session.channel_success(channel),
            Err(_) => session.channel_failure(channel),
        }
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _: &mut Session) -> Result<(), Self::Error> {
        if let Some(stdin) = self.channels.get_mut(&channel).and_then(|c| c.stdin.as_mut())
            && stdin.write_all(data).await.is_err()
        {
            // The command stopped reading: what it did not read is dropped, as with a pipe.
            self.channels.get_mut(&channel).map(|c| c.stdin.take());
        }
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _: &mut Session) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.stdin = None;
        }
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}
