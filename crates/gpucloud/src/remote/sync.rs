//! Syncing a local working directory to a pod, and the `tar` streams that copy files both ways.
//!
//! [`sync`] sends a local directory to a remote one over a [`RemoteSession`]:
//!
//! - **What**: every file under the directory except `.git/` and what `.gitignore` and
//!   `.gpucloudignore` files exclude (gitignore syntax, read whether or not the directory is a git
//!   repository; `.gpucloudignore` takes precedence).
//! - **Only what changed**: gpucloud keeps a manifest per pod (path, size, modification time of
//!   what it sent, under [`crate::remote::state_dir`]); a second sync sends only files that are
//!   new or changed since. Files deleted locally are not deleted on the pod.
//! - **How**: `rsync` when both sides have it, run over the session's connection with
//!   `--no-owner --no-group` (RunPod containers refuse rsync's `chown`: "chown: Invalid
//!   argument", exit 23), otherwise a `tar` stream over the same connection.
//!
//! [`SyncReport`] says what moved.

use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, quote};
use crate::remote::transfer::{local_error, tar_up};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

/// The ignore file gpucloud reads besides `.gitignore`.
pub const IGNORE_FILE: &str = ".gpucloudignore";

/// How files were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// `rsync` over the session.
    Rsync,
    /// A `tar` stream over the session.
    Tar,
}

/// What a sync moved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// How.
    pub method: SyncMethod,
    /// Files sent, relative to the directory.
    pub sent: Vec<String>,
    /// Their total size, bytes.
    pub bytes: u64,
    /// Files left out because they had not changed since the last sync.
    pub unchanged: usize,
}

/// `(size, modification time in ns)` per relative path.
type Manifest = BTreeMap<String, (u64, u128)>;

/// The files a sync considers: relative paths (with `/`), sizes and modification times.
pub fn files_to_sync(dir: &Path) -> Result<Manifest> {
    if !dir.is_dir() {
        return Err(Error::invalid("workdir", format!("{} is not a directory", dir.display())));
    }
    let mut files = Manifest::new();
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| Error::invalid("workdir", e.to_string()))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let meta = entry.metadata().map_err(|e| Error::invalid("workdir", e.to_string()))?;
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        files.insert(relative, (meta.len(), modified));
    }
    Ok(files)
}

/// Sends `dir` to `remote_dir` on the session's pod. See the [module documentation](self).
pub async fn sync(session: &RemoteSession, dir: &Path, remote_dir: &str) -> Result<SyncReport> {
    let files = files_to_sync(dir)?;
    let manifest_path = crate::remote::session::manifest_file(session.pod());
    let key = format!("{}\u{0}{remote_dir}", dir.display());
    let mut manifests: BTreeMap<String, Manifest> =
        std::fs::read(&manifest_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let previous = manifests.get(&key).cloned().unwrap_or_default();
    let changed: Vec<String> =
        files.iter().filter(|(path, stamp)| previous.get(*path) != Some(stamp)).map(|(p, _)| p.clone()).collect();
    let bytes = changed.iter().map(|p| files[p].0).sum();
    let unchanged = files.len() - changed.len();
    let method = if !changed.is_empty() && local_has("rsync") && session.has_program("rsync").await? {
        rsync_up(session, dir, &changed, remote_dir).await?;
        SyncMethod::Rsync
    } else {
        if !changed.is_empty() {
            tar_up(session, dir, &changed, remote_dir).await?;
        }
        SyncMethod::Tar
    };
    manifests.insert(key, files);
    if let Some(parent) = manifest_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&manifest_path, serde_json::to_vec(&manifests).unwrap_or_default());
    Ok(SyncReport { method, sent: changed, bytes, unchanged })
}

fn local_has(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn rsync_up(session: &RemoteSession, dir: &Path, files: &[String], remote_dir: &str) -> Result<()> {
    session.output(&format!("mkdir -p {}", quote(remote_dir))).await?;
    let mut rsync = tokio::process::Command::new("rsync")
        .args(["-a", "--no-owner", "--no-group", "--files-from=-", "--from0", "-e", &session.ssh_over_master()])
        .arg(format!("{}/", dir.display()))
        .arg(format!("{}:{}/", session.destination(), remote_dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| local_error(session, "rsync", e))?;
    let list: Vec<u8> = files.iter().flat_map(|f| f.bytes().chain([0])).collect();
    if let Some(mut stdin) = rsync.stdin.take() {
        tokio::io::AsyncWriteExt::write_all(&mut stdin, &list).await.map_err(|e| local_error(session, "rsync", e))?;
    }
    let output = rsync.wait_with_output().await.map_err(|e| local_error(session, "rsync", e))?;
    if !output.status.success() {
        return Err(local_error(
            session,
            "rsync",
            format!("exit {:?}: {}", output.status.code(), String::from_utf8_lossy(&output.stderr).trim()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_ignored_files_are_left_out() {
        let dir = std::env::temp_dir().join(format!("gpucloud-sync-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, body) in [
            ("train.py", "x"),
            (".git/HEAD", "ref"),
            ("data/big.bin", "0000"),
            ("data/keep.txt", "k"),
            ("out/log.txt", "l"),
            (".gitignore", "out/\n"),
            (IGNORE_FILE, "*.bin\n"),
        ] {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, body).unwrap();
        }
        let files: Vec<String> = files_to_sync(&dir).unwrap().into_keys().collect();
        assert_eq!(files, [".gitignore", IGNORE_FILE, "data/keep.txt", "train.py"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
