//! How an emulator is configured.

use crate::faults::FaultConfig;
use crate::quota::Quota;
use std::time::Duration;

/// A fresh API key: each emulator accepts its own random key unless one is given, because its
/// pods run commands on this machine: a fixed, published key would let any local user create a
/// pod with their own SSH key and get a shell as whoever runs the emulator.
pub fn random_api_key() -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    format!("emu-{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The bearer token it accepts (default: [`random_api_key`], new for each config).
    pub api_key: String,
    /// Seed for ids and faults: the same seed replays the same run.
    pub seed: u64,
    /// How long a new pod provisions before it runs.
    pub ready_delay: Duration,
    /// Faults to inject.
    pub faults: FaultConfig,
    /// Loopback port (0 picks a free one).
    pub port: u16,
    /// Rate limits to enforce per API key (`Some(Quota::documented())`: RunPod's own), with
    /// RunPod's `RateLimit` headers on every response; `None`: unlimited.
    pub quota: Option<Quota>,
    /// How long a running PrimeIntellect pod installs its image (`installationStatus` ACTIVE,
    /// `installationProgress` rising) before it is FINISHED; zero: finished as it runs.
    pub installation_time: Duration,
    /// Check every JSON answer against the document's response schema for its status, as sent
    /// (before any injected fault changes it); see [`crate::Emulator::response_checks`].
    pub check_responses: bool,
    /// Write one JSON line per exchange to this file (appended): method, path, query, status,
    /// `duration_ms` and the request body with secrets masked (passwords, tokens, keys, secret
    /// values, environment variables named like secrets). `gpucloud emulator --log-requests`.
    pub log_requests: Option<std::path::PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: random_api_key(),
            seed: 1,
            ready_delay: Duration::from_secs(2),
            faults: FaultConfig::none(),
            port: 0,
            quota: None,
            installation_time: Duration::ZERO,
            check_responses: false,
            log_requests: None,
        }
    }
}
