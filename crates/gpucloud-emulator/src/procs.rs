//! The processes an emulated pod started, found by a mark in their environment.
//!
//! A real pod is a container: terminating it ends everything inside, processes that left their
//! SSH session (`setsid`, `nohup`: a detached job and its watchdog) included. Emulated pods run
//! on this machine, so every command a pod runs carries [`MARK_VAR`] set to the pod's own
//! directory, inherited by whatever it starts; ending the pod kills every process carrying it
//! (Linux `/proc`; elsewhere only the SSH sessions' process groups are killed).

use std::path::Path;

/// The environment variable every process of an emulated pod carries: its pod's directory.
pub const MARK_VAR: &str = "GPUCLOUD_EMULATOR_POD";

/// How long after a pod ends its processes are killed: its SSH connections are cut first (their
/// listeners look every 200 ms), so that a client sees the connection lost, as on a real cloud,
/// rather than its command killed.
const AFTER_CUT: std::time::Duration = std::time::Duration::from_millis(600);

/// [`kill_marked`] for one pod, [`AFTER_CUT`] from now, on a thread of its own.
pub(crate) fn kill_marked_soon(home: std::path::PathBuf) {
    std::thread::spawn(move || {
        std::thread::sleep(AFTER_CUT);
        kill_marked(&home, false);
    });
}

/// Kills (SIGKILL) every process of this user whose [`MARK_VAR`] is `home`, or lies under
/// `home` when `prefix` (every pod of one emulator). Returns how many were signalled.
pub(crate) fn kill_marked(home: &Path, prefix: bool) -> usize {
    #[cfg(target_os = "linux")]
    {
        let wanted = format!("{MARK_VAR}={}", home.display());
        let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
        let mut killed = 0;
        let me = std::process::id();
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if u32::try_from(pid).ok() == Some(me) {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            let marked = environ.split(|b| *b == 0).any(|var| {
                let var = String::from_utf8_lossy(var);
                if prefix { var.starts_with(&wanted) } else { var == wanted }
            });
            if marked {
                // SAFETY: kill(2) on a process id; no memory involved.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed += 1;
            }
        }
        killed
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (home, prefix);
        0
    }
}
