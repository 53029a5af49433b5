//! Copying a directory from one pod to others, pod to pod: the bytes leave this machine once.
//!
//! A cluster job syncs its workdir to rank 0 only ([`crate::remote::sync`]); [`relay`] then copies
//! rank 0's copy to every other node from rank 0 itself, so a laptop's uplink carries the workdir
//! once rather than once per node. How, with nothing but `ssh`, `ssh-keygen` and `tar` on the
//! source pod:
//!
//! 1. A throwaway Ed25519 key is made **on the source** (it never leaves it), in a private
//!    directory there, with a comment naming this relay (`gpucloud-relay-<token>`).
//! 2. Its public half is appended to each target's `~/.ssh/authorized_keys` over the target's own
//!    session.
//! 3. The source is given each target's host key as gpucloud recorded it (the target's
//!    known-hosts file), so it checks every target strictly: no first-contact trust.
//! 4. For every target at once, the source runs `tar -c FILES | ssh TARGET 'tar -xf -'`, to the
//!    SSH endpoint gpucloud itself uses (reachable from the source wherever it is reachable from
//!    here). Only the files named are copied (for a cluster job: what the sync sent, and its
//!    marker), not whatever else the source's directory holds: an earlier run's files, or the
//!    relay's own key when the directory is the login directory.
//! 5. Always, whatever happened (a stop included): the key's line is removed from every target's
//!    `authorized_keys` (the file rewritten in place: a link stays a link, the other lines as
//!    they were) and the directory with the key from the source.
//!
//! Each target's result comes back on its own: a caller sends the directory itself to the
//! targets the relay could not reach. Nothing here knows of clusters; [`crate::jobs::cluster`]
//! decides when to relay.

use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, quote};

/// What a relay needs on the source pod (a `tar` that reads a list of names ended by NULs:
/// `--null -T`, as GNU tar and bsdtar do).
pub const RELAY_PROGRAMS: [&str; 3] = ["ssh", "ssh-keygen", "tar"];

/// Why a relay did not start (the source lacks a program, or could not make its key): the
/// caller sends the directory to every target itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayUnavailable(pub String);

impl std::fmt::Display for RelayUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long the cleanup on each pod may take: it runs after a stop too, on pods that may be gone.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the source may take to say what it has, make its key and take the list of files:
/// past it the relay does not start (the caller sends the directory itself).
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Copies `files` (relative to `remote_dir`, as [`crate::remote::sync`] names them) from
/// `remote_dir` on `source`'s pod into `remote_dir` on every target's pod (created if missing),
/// pod to pod (see the [module documentation](self)); nothing else of the source's directory.
/// Returns one result per target, in order, or why the relay could not start at all. When
/// `stop` ends first, the relay is abandoned (each unfinished target's result is
/// [`Error::Cancelled`]) and the cleanup still runs, bounded.
pub async fn relay(
    source: &RemoteSession,
    remote_dir: &str,
    files: &[String],
    targets: &[&RemoteSession],
    stop: impl std::future::Future<Output = ()>,
) -> std::result::Result<Vec<Result<()>>, RelayUnavailable> {
    let unavailable = |why: String| RelayUnavailable(format!("relaying from {}: {why}", source.pod()));
    let cancelled = || targets.iter().map(|_| Err(Error::Cancelled)).collect::<Vec<_>>();
    let token = format!("{:016x}", fastrand::u64(..));
    let comment = format!("gpucloud-relay-{token}");
    // A directory of the login directory, private from the start: `mktemp` would name it for us,
    // but a name chosen here needs no parsing of what the pod answers.
    let dir = format!(".gpucloud-relay-{token}");
    let remove_dir = || async {
        let removed = tokio::time::timeout(CLEANUP_TIMEOUT, source.output(&format!("rm -rf {dir}"))).await;
        if !matches!(removed, Ok(Ok((0, _, _)))) {
            tracing::warn!(pod = %source.pod(), dir, "removing the relay's key from the pod failed");
        }
    };
    tokio::pin!(stop);
    let setup = tokio::time::timeout(SETUP_TIMEOUT, setup(source, &dir, &comment, files, targets));
    let public = tokio::select! {
        made = setup => match made {
            Ok(Ok(public)) => public,
            Ok(Err(Setup::Unavailable(why))) => return Err(unavailable(why)),
            Ok(Err(Setup::Failed(why))) => {
                remove_dir().await;
                return Err(unavailable(why));
            }
            Err(_) => {
                remove_dir().await;
                return Err(unavailable(format!("its key was not made within {SETUP_TIMEOUT:?}")));
            }
        },
        () = &mut stop => {
            remove_dir().await;
            return Ok(cancelled());
        }
    };

    let copies = futures::future::join_all(targets.iter().map(|target| async {
        // On a line of its own even when the file's last line has no newline.
        let authorized = target
            .output(&format!(
                "umask 077 && mkdir -p ~/.ssh && f=~/.ssh/authorized_keys && \
                 {{ test ! -s \"$f\" || test -z \"$(tail -c 1 \"$f\")\" || echo >> \"$f\"; }} && \
                 printf '%s\\n' {} >> \"$f\"",
                quote(&public)
            ))
            .await;
        match authorized {
            Ok((0, _, _)) => {}
            Ok((code, _, err)) => {
                return Err(relay_error(target, format!("authorizing the relay exited {code}: {}", err.trim())));
            }
            Err(e) => return Err(e),
        }
        let endpoint = target.endpoint();
        let extract = format!("mkdir -p {0} && tar -xf - -C {0}", quote(remote_dir));
        // The exit status is the target's `tar`; a failed `tar -c` leaves a mark instead.
        let failed = format!("{dir}/failed-{}", fastrand::u64(..));
        let copy = format!(
            "{{ tar -C {src} --null -T {dir}/files -cf - || : > {failed}; }} | ssh -F /dev/null -i {dir}/key -o IdentitiesOnly=yes \
             -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={dir}/known_hosts \
             -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -p {port} -l {user} -- {host} {extract} \
             && test ! -e {failed}",
            src = quote(remote_dir),
            port = endpoint.port,
            user = quote(&endpoint.user),
            host = quote(&endpoint.host),
            extract = quote(&extract),
        );
        match source.output(&copy).await {
            Ok((0, _, _)) => Ok(()),
            Ok((code, _, err)) => {
                Err(relay_error(target, format!("copying from {} exited {code}: {}", source.pod(), err.trim())))
            }
            Err(e) => Err(e),
        }
    }));
    let results = tokio::select! {
        results = copies => results,
        () = &mut stop => cancelled(),
    };

    // Cleanup, whatever happened: the key out of every target, then off the source. The file is
    // rewritten in place (`sed -i` would put a file where a link was, and leave the key in the
    // file linked to); the status says whether the key's line is gone.
    let revoke = format!(
        "f=~/.ssh/authorized_keys; if grep -q ' {comment}$' \"$f\" 2>/dev/null; then \
         kept=$(grep -v ' {comment}$' \"$f\"); printf '%s\\n' \"$kept\" > \"$f\"; fi; \
         ! grep -q ' {comment}$' \"$f\" 2>/dev/null"
    );
    let revoked = futures::future::join_all(
        targets.iter().map(|target| tokio::time::timeout(CLEANUP_TIMEOUT, target.output(&revoke))),
    )
    .await;
    for (target, outcome) in targets.iter().zip(revoked) {
        if !matches!(outcome, Ok(Ok((0, _, _)))) {
            tracing::warn!(pod = %target.pod(), "removing the relay's key from authorized_keys failed");
        }
    }
    remove_dir().await;
    Ok(results)
}

/// Why [`setup`] did not give a key.
enum Setup {
    /// Before anything was made on the source.
    Unavailable(String),
    /// After its directory may have been made: it must be removed.
    Failed(String),
}

/// Checks the source's programs, makes the relay's key and directory there (with the targets'
/// host keys and the list of `files`), and returns the key's public line, checked.
async fn setup(
    source: &RemoteSession,
    dir: &str,
    comment: &str,
    files: &[String],
    targets: &[&RemoteSession],
) -> std::result::Result<String, Setup> {
    let mut probe = RELAY_PROGRAMS.iter().map(|p| format!("command -v {p} >/dev/null 2>&1")).collect::<Vec<_>>();
    probe.push("tar --null -T /dev/null -cf - >/dev/null 2>&1".into());
    match source.output(&probe.join(" && ")).await {
        Ok((0, _, _)) => {}
        Ok(_) => {
            return Err(Setup::Unavailable(format!(
                "it needs {} on the pod (a tar that takes --null -T)",
                RELAY_PROGRAMS.join(", ")
            )));
        }
        Err(e) => return Err(Setup::Unavailable(e.to_string())),
    }
    if files.iter().any(|f| f.is_empty() || f.contains('\0')) {
        return Err(Setup::Unavailable("a file name is empty or holds a NUL".into()));
    }
    let known_hosts: String =
        targets.iter().map(|t| std::fs::read_to_string(t.known_hosts()).unwrap_or_default()).collect();
    let made = source
        .output(&format!(
            "umask 077 && mkdir {dir} && ssh-keygen -q -t ed25519 -N '' -C {comment} -f {dir}/key && \
             printf %s {hosts} > {dir}/known_hosts && cat {dir}/key.pub",
            hosts = quote(&known_hosts),
        ))
        .await;
    let public = match made {
        Ok((0, out, _)) => out.trim().to_string(),
        Ok((code, _, err)) => return Err(Setup::Failed(format!("making a key exited {code}: {}", err.trim()))),
        Err(e) => return Err(Setup::Failed(e.to_string())),
    };
    // What goes into the targets' authorized_keys: exactly a key line of this relay.
    let words: Vec<&str> = public.split_whitespace().collect();
    let well_formed = words.len() == 3
        && words[0] == "ssh-ed25519"
        && words[1].bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        && words[2] == comment;
    if !well_formed {
        return Err(Setup::Failed("ssh-keygen gave no Ed25519 public key".into()));
    }
    // The names, ended by NULs, as the source's `tar --null -T` reads them: over the session's
    // standard input (a list on the command line would meet the pod's length limit).
    let line = format!("umask 077 && cat > {dir}/files");
    let list: Vec<u8> = files.iter().flat_map(|f| f.bytes().chain([0])).collect();
    let sent = async {
        let mut child = source.spawn_piped(&line, true, false).await?;
        let mut stdin = child.stdin().take().ok_or_else(|| relay_error(source, "no stdin to send the list".into()))?;
        let written = tokio::io::AsyncWriteExt::write_all(&mut stdin, &list).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stdin).await;
        drop(stdin);
        written.map_err(|e| relay_error(source, format!("sending the list of files: {e}")))?;
        let err = crate::remote::session::read_text(child.stderr().take()).await;
        match source.exit_code(&line, child.wait().await)? {
            0 => Ok(()),
            code => Err(relay_error(source, format!("writing the list of files exited {code}: {}", err.trim()))),
        }
    };
    sent.await.map_err(|e: Error| Setup::Failed(e.to_string()))?;
    Ok(public)
}

fn relay_error(target: &RemoteSession, message: String) -> Error {
    Error::Ssh { id: target.pod().clone(), message }
}
