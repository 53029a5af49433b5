//! Each pod created through the API gets a real SSH endpoint: a loopback TCP listener that sends
//! an SSH identification line while the pod runs, so "ready" can be checked the way a user's
//! `ssh` would find out. A RunPod pod answers only when it was created with `startSsh` while
//! the account had keys registered (the document's `startSsh` and `PodSsh`). While the pod provisions or is stopped, a connection is closed without
//! a banner; once it is terminated, the listener is closed. Under
//! [`crate::FaultKind::SshBannerDelay`] the banner starts only some time after the pod reports
//! running (the real gap between "running" and a working `sshd`).

use crate::Inner;
use crate::state::{Api, Phase};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// What the emulated `sshd` says.
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

    /// Serves pod `id` until it is terminated or the emulator is gone.
    pub fn serve(self, inner: &Arc<Inner>, api: Api, id: String) {
        let Ok(listener) = tokio::net::TcpListener::from_std(self.0) else { return };
        let inner = Arc::downgrade(inner);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => Some(accepted),
                    () = tokio::time::sleep(CHECK_EVERY) => None,
                };
                let Some(answer) = banner_due(&inner, api, &id) else { return };
                if let Some(Ok((mut socket, _))) = accepted
                    && answer
                {
                    let _ = socket.write_all(BANNER.as_bytes()).await;
                }
            }
        });
    }
}

/// `None`: stop serving (pod terminated, or the emulator shut down); `Some(answer)`: whether a
/// connection gets the banner now.
fn banner_due(inner: &Weak<Inner>, api: Api, id: &str) -> Option<bool> {
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
        Phase::Provisioning | Phase::Stopped => Some(false),
    }
}
