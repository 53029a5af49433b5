//! Copies between the local machine and a pod: [`RemoteSession::upload`] and
//! [`RemoteSession::download`], as `tar` streams over the session's connection.

use crate::model::error::{Error, Result};
use crate::remote::extract::{self, ChannelReader, PrivateDir};
use crate::remote::session::{RemoteSession, quote, read_text};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncReadExt as _;

/// How long the end of a copy (the remote `tar`'s error stream and exit status) may take once
/// its data has all gone through.
const STREAM_END_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

use super::session::DOWNLOAD_MIN_BYTES;

impl RemoteSession {
    /// Copies local `path` (a file or a directory) into the remote directory `remote_dir`
    /// (created if missing), as `remote_dir/<name of path>`, with a `tar` stream over the session.
    pub async fn upload(&self, path: &Path, remote_dir: &str) -> Result<()> {
        let (parent, name) =
            split_path(path).ok_or_else(|| Error::invalid("path", format!("{} has no name", path.display())))?;
        let names = vec![name];
        tar_up(self, &parent, &names, remote_dir).await
    }

    /// Copies remote `path` (a file or a directory; relative to the login directory, or
    /// absolute) into local directory `local_dir` (created if missing), as
    /// `local_dir/<name of path>`. A stream that brings fewer than
    /// [`DOWNLOAD_MIN_BYTES`] in a
    /// [`download_stall_window`](super::SessionOptions::download_stall_window) (default two
    /// minutes) is given up as stalled ([`Error::Ssh`]), and the download leaves nothing behind.
    pub async fn download(&self, path: &str, local_dir: &Path) -> Result<()> {
        tar_down(self, path, local_dir).await
    }
}

pub(crate) fn local_error(session: &RemoteSession, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Ssh { id: session.pod().clone(), message: format!("{what}: {e}") }
}

/// Sends `names` (relative to `dir`) into `remote_dir` as a tar stream over the session.
pub(crate) async fn tar_up(session: &RemoteSession, dir: &Path, names: &[String], remote_dir: &str) -> Result<()> {
    let line = format!("mkdir -p {0} && tar -xf - -C {0}", quote(remote_dir));
    let mut remote = session.spawn_piped(&line, true, false).await?;
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--null", "-T", "-", "-cf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| local_error(session, "tar", e))?;
    let list: Vec<u8> = names.iter().flat_map(|f| f.bytes().chain([0])).collect();
    let mut tar_in = tar.stdin.take().ok_or_else(|| local_error(session, "tar", "no stdin"))?;
    let feed = async move {
        let written = tokio::io::AsyncWriteExt::write_all(&mut tar_in, &list).await;
        drop(tar_in);
        written
    };
    let mut tar_out = tar.stdout.take().ok_or_else(|| local_error(session, "tar", "no stdout"))?;
    let mut remote_in = remote.stdin().take().ok_or_else(|| local_error(session, "ssh", "no stdin"))?;
    let pump = async {
        let copied = tokio::io::copy(&mut tar_out, &mut remote_in).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut remote_in).await;
        drop(remote_in);
        copied
    };
    let (fed, pumped) = tokio::join!(feed, pump);
    tracing::debug!(pod = %session.pod(), "tar stream sent; waiting for both tars");
    fed.map_err(|e| local_error(session, "tar", e))?;
    pumped.map_err(|e| local_error(session, "sending the tar stream", e))?;
    let local = tar.wait_with_output().await.map_err(|e| local_error(session, "tar", e))?;
    let finishing = async { (read_text(remote.stderr().take()).await, remote.wait().await) };
    let (remote_err, status) = tokio::time::timeout(STREAM_END_TIMEOUT, finishing)
        .await
        .map_err(|_| local_error(session, "remote tar", "its exit status never came after its stream ended"))?;
    let code = session.exit_code(&line, status)?;
    if !local.status.success() {
        return Err(local_error(session, "tar", String::from_utf8_lossy(&local.stderr).trim()));
    }
    if code != 0 {
        return Err(local_error(session, "remote tar", format!("exit {code}: {}", remote_err.trim())));
    }
    Ok(())
}

/// Receives remote `path` into local `local_dir` as a tar stream over the session.
pub(crate) async fn tar_down(session: &RemoteSession, path: &str, local_dir: &Path) -> Result<()> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => (".", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::invalid("path", format!("{path:?} names no file or directory")));
    }
    let created =
        CreatedDirs::create(local_dir).map_err(|e| local_error(session, "creating the local directory", e))?;
    let received = receive(session, path, parent, name, local_dir).await;
    if received.is_ok() {
        created.keep();
    }
    received
}

/// The directories a download created for its destination: removed again (when still empty)
/// if the download fails, so a failed download leaves nothing behind.
struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    fn create(dir: &Path) -> std::io::Result<Self> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err()) {
            missing.push(path.to_path_buf());
            at = path.parent();
        }
        std::fs::create_dir_all(dir)?;
        Ok(Self(missing))
    }

    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        // Deepest first; `remove_dir` removes only an empty directory.
        for dir in &self.0 {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

async fn receive(session: &RemoteSession, path: &str, parent: &str, name: &str, local_dir: &Path) -> Result<()> {
    // Unpacked into a private directory beside the destination (same file system: the final
    // moves are renames), checked member by member; moved into place only when whole.
    let staging = PrivateDir::new_in(local_dir)
        .map_err(|e| local_error(session, "creating a private directory for the download", e))?;
    let line = format!("tar -cf - -C {} {}", quote(parent), quote(name));
    let mut remote = session.spawn_piped(&line, false, true).await?;
    let mut remote_out = remote.stdout().take().ok_or_else(|| local_error(session, "ssh", "no stdout"))?;
    let (chunks, received) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let root = staging.path().to_path_buf();
    let top = std::ffi::OsString::from(name);
    let unpacking = tokio::task::spawn_blocking(move || extract::unpack(ChannelReader::new(received), &root, &top));
    let window = session.download_stall_window();
    let pump = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let (mut window_end, mut in_window) = (tokio::time::Instant::now() + window, 0u64);
        loop {
            // A stream that keeps its connection alive but brings next to nothing is stalled.
            let n = match tokio::time::timeout_at(window_end, remote_out.read(&mut buffer)).await {
                Ok(read) => read?,
                Err(_) if in_window < DOWNLOAD_MIN_BYTES => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("stalled: {in_window} bytes in {window:?} (fewer than {DOWNLOAD_MIN_BYTES})"),
                    ));
                }
                Err(_) => {
                    (window_end, in_window) = (tokio::time::Instant::now() + window, 0);
                    continue;
                }
            };
            in_window += n as u64;
            // The end, or the unpacker stopped (its own error says why).
            if n == 0 || chunks.send(buffer[..n].to_vec()).await.is_err() {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    // Read on the side: a refused stream's remote tar may never close it, and is not waited for.
    let remote_err = tokio::spawn(read_text(remote.stderr().take()));
    let pumped = pump.await;
    if let Err(stalled) = pumped.as_ref().map_err(|e| e.kind() == std::io::ErrorKind::TimedOut)
        && stalled
    {
        remote_err.abort();
        drop(remote);
        // The unpacker sees the stream end and stops; nothing of it is kept (the staging goes).
        let _ = unpacking.await;
        let why = pumped.err().map(|e| e.to_string()).unwrap_or_default();
        return Err(local_error(session, &format!("downloading {path:?}"), why));
    }
    tracing::debug!(pod = %session.pod(), path, "tar stream received");
    let unpacked = unpacking.await.map_err(|e| local_error(session, "unpacking", e))?;
    tracing::debug!(pod = %session.pod(), path, ok = unpacked.is_ok(), "unpacked");
    if let Err(refused) = unpacked {
        remote_err.abort();
        drop(remote);
        return Err(Error::UnsafeDownload { id: session.pod().clone(), path: path.to_string(), reason: refused.0 });
    }
    // The stream has ended: the remote tar's stderr and exit status follow at once, or the
    // connection is gone. Bounded all the same: a download must not hang a job.
    let finishing = async {
        let remote_err = remote_err.await.unwrap_or_default();
        tracing::debug!(pod = %session.pod(), path, "remote stderr closed");
        (remote_err, remote.wait().await)
    };
    let (remote_err, status) = tokio::time::timeout(STREAM_END_TIMEOUT, finishing).await.map_err(|_| {
        local_error(session, &format!("remote tar of {path:?}"), "its exit status never came after its stream ended")
    })?;
    let code = session.exit_code(&line, status)?;
    pumped.map_err(|e| local_error(session, "receiving the tar stream", e))?;
    // What arrived whole is kept even when the remote tar complained (GNU tar exits 1 when a
    // file changed as it was read): results are not thrown away over a warning.
    let to = local_dir.to_path_buf();
    let moved = tokio::task::spawn_blocking(move || {
        let moved = extract::move_into(staging.path(), &to);
        drop(staging);
        moved
    })
    .await
    .map_err(|e| local_error(session, "moving the download into place", e))?;
    moved.map_err(|e| local_error(session, "moving the download into place", e))?;
    if code != 0 {
        return Err(local_error(
            session,
            &format!("remote tar of {path:?}"),
            format!("exit {code}: {}", remote_err.trim()),
        ));
    }
    Ok(())
}

/// `(parent, file name)` of a local path (`.` for a bare name).
fn split_path(path: &Path) -> Option<(PathBuf, String)> {
    let path = if path.is_relative() { std::env::current_dir().ok()?.join(path) } else { path.to_path_buf() };
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some((path.parent()?.to_path_buf(), name))
}
