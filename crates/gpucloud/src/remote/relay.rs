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
//! 4. For every target at once, the source runs `tar -cf - . | ssh TARGET 'tar -xf -'`, to the
//!    SSH endpoint gpucloud itself uses (reachable from the source wherever it is reachable from
//!    here).
//! 5. Always, whatever happened (each step bounded): the key's line is removed from every
//!    target's `authorized_keys` (rewritten in place: a link stays a link, other lines stay) and
//!    the directory with the key from the source.
//!
//! Each target's result comes back on its own: a caller sends the directory itself to the
//! targets the relay could not reach. Nothing here knows of clusters; [`crate::jobs::cluster`]
//! decides when to relay.

use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, quote};

/// What a relay needs on the source pod.
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

/// Copies `remote_dir` on `source`'s pod into `remote_dir` on every target's pod (created if
/// missing), pod to pod (see the [module documentation](self)). Returns one result per target,
/// in order, or why the relay could not start at all. When `stop` ends first, the copies are
/// abandoned (each unfinished target's result is [`Error::Cancelled`]) and the cleanup still runs.
pub async fn relay(
    source: &RemoteSession,
    remote_dir: &str,
    targets: &[&RemoteSession],
    stop: impl std::future::Future<Output = ()>,
) -> std::result::Result<Vec<Result<()>>, RelayUnavailable> {
    let unavailable = |why: String| RelayUnavailable(format!("relaying from {}: {why}", source.pod()));
    let probe =
        RELAY_PROGRAMS.iter().map(|p| format!("command -v {p} >/dev/null 2>&1")).collect::<Vec<_>>().join(" && ");
    match source.output(&probe).await {
        Ok((0, _, _)) => {}
        Ok(_) => return Err(unavailable(format!("it needs {} on the pod", RELAY_PROGRAMS.join(", ")))),
        Err(e) => return Err(unavailable(e.to_string())),
    }
    let token = format!("{:016x}", fastrand::u64(..));
    let comment = format!("gpucloud-relay-{token}");
    // A directory of the login directory, private from the start: `mktemp` would name it for us,
    // but a name chosen here needs no parsing of what the pod answers.
    let dir = format!(".gpucloud-relay-{token}");
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
        Ok((code, _, err)) => {
            let _ = source.output(&format!("rm -rf {dir}")).await;
            return Err(unavailable(format!("making a key exited {code}: {}", err.trim())));
        }
        Err(e) => return Err(unavailable(e.to_string())),
    };
    // What goes into the targets' authorized_keys: exactly a key line of this relay.
    let words: Vec<&str> = public.split_whitespace().collect();
    let well_formed = words.len() == 3
        && words[0] == "ssh-ed25519"
        && words[1].bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        && words[2] == comment;
    if !well_formed {
        let _ = source.output(&format!("rm -rf {dir}")).await;
        return Err(unavailable("ssh-keygen gave no Ed25519 public key".into()));
    }

    let copies = futures::future::join_all(targets.iter().map(|target| async {
        let authorized = target
            .output(&format!(
                "umask 077 && mkdir -p ~/.ssh && printf '%s\\n' {} >> ~/.ssh/authorized_keys",
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
            "{{ tar -C {src} -cf - . || : > {failed}; }} | ssh -F /dev/null -i {dir}/key -o IdentitiesOnly=yes \
             -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={dir}/known_hosts \
             -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -p {port} {user}@{host} {extract} \
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
        () = stop => targets.iter().map(|_| Err(Error::Cancelled)).collect(),
    };

    // Cleanup, whatever happened: the key out of every target, then off the source.
    // Rewritten in place (`cat >`), not replaced as `sed -i` would: a linked `authorized_keys`
    // stays a link, and the file keeps its owner and mode. A `grep` that failed (status 2)
    // leaves the file as it was rather than emptying it.
    let revoke = format!(
        "f=~/.ssh/authorized_keys; t=~/.ssh/.{comment}; if [ -f \"$f\" ]; then \
         grep -v ' {comment}$' \"$f\" > \"$t\"; s=$?; if [ $s -le 1 ]; then cat \"$t\" > \"$f\"; fi; \
         rm -f \"$t\"; [ $s -le 1 ]; fi"
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
    let removed = tokio::time::timeout(CLEANUP_TIMEOUT, source.output(&format!("rm -rf {dir}"))).await;
    if !matches!(removed, Ok(Ok((0, _, _)))) {
        tracing::warn!(pod = %source.pod(), dir, "removing the relay's key from the pod failed");
    }
    Ok(results)
}

fn relay_error(target: &RemoteSession, message: String) -> Error {
    Error::Ssh { id: target.pod().clone(), message }
}
