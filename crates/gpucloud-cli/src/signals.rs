//! Stopping on SIGINT, SIGTERM and SIGHUP alike: Ctrl-C, `kill`, CI runners, Docker, systemd and
//! Kubernetes (SIGTERM), a closed terminal (SIGHUP). A command that listens cleans up what it
//! started, then exits 128 + the signal's number, as a shell reports a signalled process.

use std::sync::atomic::{AtomicI32, Ordering};

/// The number of the signal that stopped the command, 0 if none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Listeners for the stop signals, registered when created: from then on these signals no
/// longer end the process at once, they complete [`Shutdown::received`].
pub struct Shutdown {
    #[cfg(unix)]
    streams: Vec<(i32, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Starts listening (needs the Tokio runtime).
    pub fn listen() -> Result<Self, gpucloud::Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [(2, SignalKind::interrupt()), (15, SignalKind::terminate()), (1, SignalKind::hangup())];
            let streams =
                kinds.into_iter().map(|(n, kind)| Ok((n, signal(kind)?))).collect::<std::io::Result<_>>().map_err(
                    |e| gpucloud::Error::Config {
                        provider: gpucloud::Provider::RunPod,
                        message: format!("cannot listen for signals: {e}"),
                    },
                )?;
            Ok(Self { streams })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes on the first stop signal, and records which it was.
    pub async fn received(mut self) {
        #[cfg(unix)]
        {
            let waits = self.streams.iter_mut().map(|(n, s)| {
                let n = *n;
                Box::pin(async move {
                    s.recv().await;
                    n
                })
            });
            let (number, _, _) = futures::future::select_all(waits).await;
            RECEIVED.store(number, Ordering::SeqCst);
            eprintln!("gpucloud: {} received; stopping", name(number));
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            RECEIVED.store(2, Ordering::SeqCst);
        }
    }
}

fn name(number: i32) -> &'static str {
    match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// The exit code of a command stopped by a signal: 128 + its number (130 when unknown).
pub fn exit_code() -> u8 {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => 130,
        n => u8::try_from(128 + n).unwrap_or(130),
    }
}
