//! Readiness that means a shell will open: the pod's SSH endpoint accepts a TCP connection and
//! sends an SSH identification line (`SSH-2.0-...`, RFC 4253 section 4.2).
//!
//! A provider reports a pod "running" as soon as its container or VM starts; the SSH daemon
//! often answers only seconds to minutes later, and a pod created without a usable SSH setup
//! never does. [`Provisioner::wait_until_ready`](crate::Provisioner::wait_until_ready) therefore
//! waits, within the same deadline, until the endpoint answers with a banner
//! ([`Readiness::SshBanner`], the default). [`Readiness::Status`] keeps the provider's word alone,
//! for images without SSH.
//!
//! A shell also needs a key the pod trusts: [`Provisioner::ensure_ssh_key`](crate::Provisioner::ensure_ssh_key)
//! makes sure a public key is registered with the provider (PrimeIntellect's SSH keys; RunPod's
//! account keys, which reach pods created with SSH), and [`crate::LaunchRequest::ssh_public_key`]
//! does it as part of a launch.

use crate::model::error::{Error, Result};
use crate::model::{Provider, SshEndpoint};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

/// What "ready" means for [`Provisioner::wait_until_ready`](crate::Provisioner::wait_until_ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// Running, an SSH endpoint known, and that endpoint answers with an SSH banner.
    #[default]
    SshBanner,
    /// Running with an SSH endpoint known, as the provider reports it; nothing is probed.
    Status,
}

/// A public key registered with a provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SshKey {
    /// Which cloud.
    pub provider: Provider,
    /// The provider's id for it (PrimeIntellect; RunPod keeps keys as a plain list).
    pub id: Option<String>,
    /// Its name, where the provider keeps one.
    pub name: Option<String>,
    /// The `authorized_keys` line: `<type> <base64> [comment]`.
    pub public_key: String,
}

/// Checks that `text` is one OpenSSH public key line (`ssh-ed25519 AAAA... comment`, also
/// `ssh-rsa`, `ecdsa-sha2-*`, `sk-*`) and returns it trimmed. A private key is refused with a
/// hint to pass the `.pub` file.
pub fn parse_public_key(text: &str) -> Result<String> {
    let line = text.trim();
    if line.contains("PRIVATE KEY") {
        return Err(Error::invalid("ssh_public_key", "this is a private key; give the public one (the .pub file)"));
    }
    let mut words = line.split_whitespace();
    let (kind, body) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let kind_ok = ["ssh-", "ecdsa-", "sk-"].iter().any(|p| kind.starts_with(p)) && kind.len() > 4;
    let body_ok = body.len() >= 16 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    if !kind_ok || !body_ok || line.lines().count() != 1 {
        return Err(Error::invalid(
            "ssh_public_key",
            "is not an OpenSSH public key line (`ssh-ed25519 AAAA... comment`, as in ~/.ssh/id_ed25519.pub)",
        ));
    }
    Ok(line.to_string())
}

/// Whether two public key lines hold the same key (type and key material; comments aside).
pub fn same_key(a: &str, b: &str) -> bool {
    a.split_whitespace().take(2).eq(b.split_whitespace().take(2))
}

/// How long one probe may take to connect, and then to receive the banner.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest identification line RFC 4253 allows, CR LF included.
const MAX_BANNER: usize = 255;

/// Connects to `endpoint` and reads its identification line: `Ok(line)` when it starts with
/// `SSH-`, otherwise why not (refused, timed out, closed, not SSH).
pub async fn probe_banner(endpoint: &SshEndpoint, timeout: Duration) -> Result<String, String> {
    let address = (endpoint.host.as_str(), endpoint.port);
    let mut stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Err(_) => return Err(format!("connecting to {}:{} timed out", endpoint.host, endpoint.port)),
        Ok(Err(e)) => return Err(format!("connecting to {}:{}: {e}", endpoint.host, endpoint.port)),
        Ok(Ok(stream)) => stream,
    };
    let mut received = Vec::with_capacity(64);
    let read = async {
        let mut buffer = [0u8; 64];
        // Servers may send other lines before the identification line (RFC 4253 4.2).
        while received.len() < 4 * MAX_BANNER {
            let n = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the connection closed before an SSH banner".to_string());
            }
            received.extend_from_slice(&buffer[..n]);
            if let Some(line) = received.split(|b| *b == b'\n').find(|l| l.starts_with(b"SSH-")) {
                return Ok(String::from_utf8_lossy(line).trim_end().to_string());
            }
        }
        Err("no SSH identification line".to_string())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(format!("{}:{} accepted the connection but sent no SSH banner", endpoint.host, endpoint.port)),
        Ok(result) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    async fn server(reply: &'static [u8]) -> SshEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(reply).await;
                if !reply.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        SshEndpoint { host: "127.0.0.1".into(), port, user: "root".into() }
    }

    #[tokio::test]
    async fn a_banner_is_ready_and_anything_else_is_not() {
        let ok = server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        assert_eq!(probe_banner(&ok, PROBE_TIMEOUT).await.unwrap(), "SSH-2.0-OpenSSH_9.6");
        let preamble = server(b"welcome\r\nSSH-2.0-dropbear\r\n").await;
        assert_eq!(probe_banner(&preamble, PROBE_TIMEOUT).await.unwrap(), "SSH-2.0-dropbear");
        let http = server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert!(probe_banner(&http, PROBE_TIMEOUT).await.is_err());
        let closes = server(b"").await;
        assert!(probe_banner(&closes, PROBE_TIMEOUT).await.unwrap_err().contains("closed"));
        // Nothing listening.
        let port = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() };
        let refused = SshEndpoint { host: "127.0.0.1".into(), port, user: "root".into() };
        assert!(probe_banner(&refused, PROBE_TIMEOUT).await.is_err());
    }

    #[test]
    fn public_keys_are_checked_and_compared_without_comments() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ me@example.com";
        assert_eq!(parse_public_key(&format!("  {key}\n")).unwrap(), key);
        assert!(same_key(
            key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ other"
        ));
        assert!(!same_key(
            key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDIFFERENTKEYMATERIALxxxxxxxxxxxxxxxxxxxxx me@example.com"
        ));
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----";
        assert!(parse_public_key(private).unwrap_err().to_string().contains(".pub"));
        for bad in ["", "hello world", "ssh-ed25519", "ssh-ed25519 short", "rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"] {
            assert!(
                matches!(parse_public_key(bad), Err(Error::InvalidInput { field: "ssh_public_key", .. })),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let silent = SshEndpoint { host: "127.0.0.1".into(), port, user: "root".into() };
        let error = probe_banner(&silent, Duration::from_millis(200)).await.unwrap_err();
        assert!(error.contains("no SSH banner"), "{error}");
    }
}
