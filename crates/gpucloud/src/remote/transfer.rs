//! Copies between the local machine and a pod: [`RemoteSession::upload`] and
//! [`RemoteSession::download`], as `tar` streams over the session's connection.

use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, quote, read_text};
use std::path::{Path, PathBuf};
use std::process::Stdio;

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
    /// `local_dir/<name of path>`.
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
    fed.map_err(|e| local_error(session, "tar", e))?;
    pumped.map_err(|e| local_error(session, "sending the tar stream", e))?;
    let local = tar.wait_with_output().await.map_err(|e| local_error(session, "tar", e))?;
    let remote_err = read_text(remote.stderr().take()).await;
    let code = session.exit_code(&line, remote.wait().await)?;
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
    std::fs::create_dir_all(local_dir).map_err(|e| local_error(session, "creating the local directory", e))?;
    let line = format!("tar -cf - -C {} {}", quote(parent), quote(name));
    let mut remote = session.spawn_piped(&line, false, true).await?;
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(local_dir)
        .args(["-xf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| local_error(session, "tar", e))?;
    let mut remote_out = remote.stdout().take().ok_or_else(|| local_error(session, "ssh", "no stdout"))?;
    let mut tar_in = tar.stdin.take().ok_or_else(|| local_error(session, "tar", "no stdin"))?;
    let copied = tokio::io::copy(&mut remote_out, &mut tar_in).await;
    drop(tar_in);
    let remote_err = read_text(remote.stderr().take()).await;
    let code = session.exit_code(&line, remote.wait().await)?;
    let local = tar.wait_with_output().await.map_err(|e| local_error(session, "tar", e))?;
    copied.map_err(|e| local_error(session, "receiving the tar stream", e))?;
    if code != 0 {
        return Err(local_error(
            session,
            &format!("remote tar of {path:?}"),
            format!("exit {code}: {}", remote_err.trim()),
        ));
    }
    if !local.status.success() {
        return Err(local_error(session, "tar", String::from_utf8_lossy(&local.stderr).trim()));
    }
    Ok(())
}

/// `(parent, file name)` of a local path (`.` for a bare name).
fn split_path(path: &Path) -> Option<(PathBuf, String)> {
    let path = if path.is_relative() { std::env::current_dir().ok()?.join(path) } else { path.to_path_buf() };
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some((path.parent()?.to_path_buf(), name))
}
