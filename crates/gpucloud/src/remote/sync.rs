//! Syncing a local working directory to a pod, and the `tar` streams that copy files both ways.
//!
//! [`sync`] sends a local directory to a remote one over a [`RemoteSession`]:
//!
//! - **What**: every file under the directory except `.git/` and what git itself would ignore:
//!   `.gitignore` files, `.git/info/exclude` and the excludes file (`core.excludesFile` of the
//!   repository's `.git/config` or the global git config,
//!   else `$XDG_CONFIG_HOME/git/ignore`), plus `.gpucloudignore` files (gitignore syntax, read
//!   whether or not the directory is a git repository; `.gpucloudignore` takes precedence).
//! - **Never secrets by default**: well-known secret files ([`SECRET_PATTERNS`]: `.env*`,
//!   `*.pem`, `*.key`, SSH private keys, credential files) are left out even when nothing ignores
//!   them, unless named explicitly by a `!` line in the top `.gpucloudignore` (e.g. `!.env`).
//! - **Links**: a symbolic link that stays inside the directory is sent as a link; one that
//!   leaves it (an absolute target, or `..` past the top: `data -> /mnt/datasets`) is not sent,
//!   and the report says so. Devices, FIFOs and sockets are not sent either.
//! - **Only what changed**: gpucloud keeps a manifest per pod (path, size, modification time of
//!   what it sent, under [`crate::remote::state_dir`]) and leaves a marker file
//!   ([`MARKER_FILE`]) in the remote directory; a second sync sends only what is new or changed
//!   since, and everything again when the marker is gone or different (the pod restarted and its
//!   container disk was wiped, or someone removed the directory). Files deleted locally are not
//!   deleted on the pod.
//! - **How**: `rsync` when both sides have it, run over the session's connection with
//!   `--no-owner --no-group` (RunPod containers refuse rsync's `chown`: "chown: Invalid
//!   argument", exit 23), otherwise a `tar` stream over the same connection.
//!
//! [`SyncReport`] says what moved, and what was left out and why.

use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, quote};
use crate::remote::transfer::{local_error, tar_up};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

/// The ignore file gpucloud reads besides `.gitignore`.
pub const IGNORE_FILE: &str = ".gpucloudignore";

/// The marker a sync leaves in the remote directory: a token that the local manifest records,
/// so that a wiped directory is noticed and sent whole again.
pub const MARKER_FILE: &str = ".gpucloud-sync";

/// Files never sent unless named explicitly (gitignore syntax): environment files, keys,
/// credentials. The pod runs on a third-party host.
pub const SECRET_PATTERNS: &[&str] = &[
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    ".netrc",
    ".pgpass",
    ".pypirc",
    ".git-credentials",
    "credentials",
    "credentials.json",
    ".aws/credentials",
    ".docker/config.json",
    ".kube/config",
];

/// Why a file was left out of a sync (besides the ignore rules, which are the user's own).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeftOutReason {
    /// A well-known secret file ([`SECRET_PATTERNS`]) not named explicitly.
    Secret,
    /// A symbolic link that leaves the directory.
    LinkOutside {
        /// Where it points.
        target: String,
    },
    /// Not a regular file, a directory or a link (a device, FIFO or socket).
    Special,
}

/// A file a sync left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    /// Relative to the directory, with `/`.
    pub path: String,
    /// Why.
    #[serde(flatten)]
    pub reason: LeftOutReason,
}

/// How files were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// `rsync` over the session.
    Rsync,
    /// A `tar` stream over the session.
    Tar,
    /// Copied from another pod that was synced ([`crate::remote::relay`]: a cluster's rank 0 to
    /// its other nodes); the report is that pod's.
    Relay,
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
    /// Files left out for another reason than the ignore rules: secrets, links that leave the
    /// directory, special files.
    pub left_out: Vec<LeftOut>,
}

/// What a sync considers: the files to send and those left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// `(size, modification time in ns)` per relative path (with `/`); links included.
    pub files: Manifest,
    /// What was left out, and why.
    pub left_out: Vec<LeftOut>,
}

/// `(size, modification time in ns)` per relative path.
pub type Manifest = BTreeMap<String, (u64, u128)>;

/// The files a sync would send: relative paths (with `/`), sizes and modification times (see
/// [`plan`] for what is left out and why).
pub fn files_to_sync(dir: &Path) -> Result<Manifest> {
    Ok(plan(dir)?.files)
}

/// What a sync of `dir` considers. See the [module documentation](self).
pub fn plan(dir: &Path) -> Result<SyncPlan> {
    if !dir.is_dir() {
        return Err(Error::invalid("workdir", format!("{} is not a directory", dir.display())));
    }
    let secrets = {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
        for pattern in SECRET_PATTERNS {
            builder.add_line(None, pattern).map_err(|e| Error::invalid("workdir", e.to_string()))?;
        }
        builder.build().map_err(|e| Error::invalid("workdir", e.to_string()))?
    };
    // `!NAME` in the top .gpucloudignore names a secret file explicitly.
    let (named, _) = ignore::gitignore::Gitignore::new(dir.join(IGNORE_FILE));
    let mut plan = SyncPlan::default();
    let mut walk = ignore::WalkBuilder::new(dir);
    walk.hidden(false)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|entry| entry.file_name() != ".git");
    // The `ignore` crate reads `core.excludesFile` from the global git config only; git also
    // honours the repository's own `.git/config`.
    if let Some(file) = repository_excludes_file(dir)
        && let Some(e) = walk.add_ignore(&file)
    {
        tracing::warn!(file = %file.display(), error = %e, "the repository's core.excludesFile could not be read");
    }
    let walk = walk.build();
    for entry in walk {
        let entry = entry.map_err(|e| Error::invalid("workdir", e.to_string()))?;
        let Some(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            continue;
        }
        let relative_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let relative =
            relative_path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        let left_out = |reason| LeftOut { path: relative.clone(), reason };
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| Error::invalid("workdir", e.to_string()))?;
            if !link_stays_inside(relative_path, &target) {
                plan.left_out
                    .push(left_out(LeftOutReason::LinkOutside { target: target.to_string_lossy().into_owned() }));
                continue;
            }
        } else if !kind.is_file() {
            plan.left_out.push(left_out(LeftOutReason::Special));
            continue;
        }
        if secrets.matched_path_or_any_parents(relative_path, false).is_ignore()
            && !named.matched_path_or_any_parents(relative_path, false).is_whitelist()
        {
            plan.left_out.push(left_out(LeftOutReason::Secret));
            continue;
        }
        let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| Error::invalid("workdir", e.to_string()))?;
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        plan.files.insert(relative, (meta.len(), modified));
    }
    Ok(plan)
}

/// `core.excludesFile` from the git repository holding `dir` (its `.git/config`, or a worktree's
/// `gitdir:`), with `~/` expanded and a relative path taken from the repository's top; `None`
/// when there is no repository or no such setting.
fn repository_excludes_file(dir: &Path) -> Option<std::path::PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let (top, git) = dir.ancestors().find_map(|at| {
        let git = at.join(".git");
        if git.is_dir() {
            return Some((at.to_path_buf(), git));
        }
        let pointer = std::fs::read_to_string(&git).ok()?;
        let target = pointer.strip_prefix("gitdir:")?.trim();
        Some((at.to_path_buf(), at.join(target)))
    })?;
    // A linked worktree's own config is shared with the main repository's (`commondir`).
    let common = std::fs::read_to_string(git.join("commondir")).ok().map(|c| git.join(c.trim()));
    let config = std::fs::read_to_string(common.unwrap_or(git).join("config")).ok()?;
    let mut in_core = false;
    let mut found = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_core = line.trim_start_matches('[').trim_end_matches(']').trim().eq_ignore_ascii_case("core");
        } else if in_core
            && let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("excludesfile")
        {
            found = Some(value.trim().trim_matches('"').to_string());
        }
    }
    let value = found.filter(|v| !v.is_empty())?;
    let path = match value.strip_prefix("~/") {
        Some(rest) => std::path::PathBuf::from(std::env::var_os("HOME")?).join(rest),
        None => std::path::PathBuf::from(value),
    };
    Some(if path.is_relative() { top.join(path) } else { path })
}

/// Whether a link at `relative` (from the directory's top) pointing at `target` stays inside the
/// directory: not absolute (an absolute path means another thing on the pod anyway), and never
/// climbing above the top with `..`.
fn link_stays_inside(relative: &Path, target: &Path) -> bool {
    let mut depth = relative.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if depth > 0 => depth -= 1,
            _ => return false,
        }
    }
    true
}

/// What gpucloud remembers of one directory's syncs to one pod.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Synced {
    /// The token in the remote [`MARKER_FILE`].
    token: String,
    files: Manifest,
}

/// Sends `dir` to `remote_dir` on the session's pod. See the [module documentation](self).
pub async fn sync(session: &RemoteSession, dir: &Path, remote_dir: &str) -> Result<SyncReport> {
    Ok(sync_listing(session, dir, remote_dir).await?.0)
}

/// [`sync`], and what the remote directory then holds of it: every file of the sync (sent now
/// or before) and the marker, relative to the remote directory, e.g. for a
/// [relay](crate::remote::relay) of exactly that.
pub(crate) async fn sync_listing(
    session: &RemoteSession,
    dir: &Path,
    remote_dir: &str,
) -> Result<(SyncReport, Vec<String>)> {
    let SyncPlan { files, left_out } = plan(dir)?;
    let manifest_path = crate::remote::session::manifest_file(session.pod());
    let key = format!("{}\u{0}{remote_dir}", dir.display());
    // A manifest of another format is no manifest: everything is sent again.
    let mut manifests: BTreeMap<String, Synced> =
        std::fs::read(&manifest_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let marker = format!("{}/{MARKER_FILE}", remote_dir.trim_end_matches('/'));
    let previous = match manifests.remove(&key) {
        // Still what was sent only if the pod still has the marker of that sync.
        Some(synced) if !synced.token.is_empty() => {
            let (_, found, _) = session.output(&format!("cat {} 2>/dev/null", quote(&marker))).await?;
            if found.trim() == synced.token { synced.files } else { Manifest::new() }
        }
        _ => Manifest::new(),
    };
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
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let (code, _, stderr) =
        session.output(&format!("mkdir -p {} && printf %s {token} > {}", quote(remote_dir), quote(&marker))).await?;
    if code != 0 {
        return Err(local_error(session, "writing the sync marker", format!("exit {code}: {}", stderr.trim())));
    }
    let listing = files.keys().cloned().chain([MARKER_FILE.to_string()]).collect();
    manifests.insert(key, Synced { token, files });
    if let Some(parent) = manifest_path.parent() {
        crate::remote::session::ensure_private(&state_dir_of(parent))?;
        crate::remote::session::ensure_private(parent)?;
    }
    let _ = std::fs::write(&manifest_path, serde_json::to_vec(&manifests).unwrap_or_default());
    Ok((SyncReport { method, sent: changed, bytes, unchanged, left_out }, listing))
}

/// The state directory a manifest's directory is in.
fn state_dir_of(manifest_dir: &Path) -> std::path::PathBuf {
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default()
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
    fn git_excludes_secrets_and_links_that_leave_are_left_out_and_reported() {
        let dir = std::env::temp_dir().join(format!("gpucloud-sync-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, body) in [
            ("train.py", "x"),
            (".git/HEAD", "ref"),
            (".git/info/exclude", "credentials.json\n"),
            (
                ".git/config",
                "[core]\n\tbare = false\n\texcludesFile = .git/my-excludes\n[user]\n\texcludesFile = nope\n",
            ),
            (".git/my-excludes", "wandb-token.txt\n"),
            ("wandb-token.txt", "secret"),
            ("credentials.json", "{}"),
            (".env", "TOKEN=1"),
            (".env.example", "TOKEN="),
            ("sub/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----"),
            ("sub/id_rsa.pub", "ssh-ed25519 AAAA"),
            ("notes.key", "named explicitly"),
            (IGNORE_FILE, "!notes.key\n"),
        ] {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, body).unwrap();
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("train.py", dir.join("latest")).unwrap();
            std::os::unix::fs::symlink("../train.py", dir.join("sub/up")).unwrap();
            std::os::unix::fs::symlink("/mnt/datasets", dir.join("data")).unwrap();
            std::os::unix::fs::symlink("../../elsewhere", dir.join("sub/out")).unwrap();
        }
        let plan = plan(&dir).unwrap();
        let files: Vec<&str> = plan.files.keys().map(String::as_str).collect();
        assert_eq!(files, [".env.example", IGNORE_FILE, "latest", "notes.key", "sub/id_rsa.pub", "sub/up", "train.py"]);
        let mut left_out: Vec<(&str, &LeftOutReason)> =
            plan.left_out.iter().map(|l| (l.path.as_str(), &l.reason)).collect();
        left_out.sort_by_key(|(path, _)| *path);
        assert_eq!(
            left_out,
            [
                (".env", &LeftOutReason::Secret),
                ("data", &LeftOutReason::LinkOutside { target: "/mnt/datasets".into() }),
                ("sub/id_rsa", &LeftOutReason::Secret),
                ("sub/out", &LeftOutReason::LinkOutside { target: "../../elsewhere".into() }),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

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
