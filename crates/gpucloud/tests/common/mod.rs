//! Shared test setup: an emulator and fast-polling provisioners pointed at it.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use gpucloud::{Fleet, PrimeIntellect, ReconcilePolicy, RetryPolicy, RunPod, SecretString};
use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig};
use std::time::Duration;

pub const FAST_RECONCILE: ReconcilePolicy = ReconcilePolicy { attempts: 5, delay: Duration::from_millis(150) };

/// A public key the tests' emulated accounts hold (no private key exists: nothing logs in).
pub const ACCOUNT_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpHc2VtdWxhdG9yLXRlc3Qta2V5LW5vdC1yZWFs tests@gpucloud";

/// An emulator whose RunPod account holds [`ACCOUNT_KEY`], so its pods answer SSH (the
/// document: with no keys registered, `startSsh` does nothing).
pub async fn emulator(ready_delay: Duration, faults: FaultConfig) -> Emulator {
    with_account_key(
        Emulator::start(EmulatorConfig { ready_delay, faults, ..EmulatorConfig::default() }).await.unwrap(),
    )
}

/// An emulator whose accounts hold no SSH key, as a new account starts.
pub async fn keyless_emulator(ready_delay: Duration, faults: FaultConfig) -> Emulator {
    Emulator::start(EmulatorConfig { ready_delay, faults, ..EmulatorConfig::default() }).await.unwrap()
}

/// `emulator` with [`ACCOUNT_KEY`] registered on RunPod.
pub fn with_account_key(emulator: Emulator) -> Emulator {
    emulator.add_ssh_key(gpucloud_emulator::Api::RunPod, ACCOUNT_KEY);
    emulator
}

pub fn primeintellect(emulator: &Emulator) -> PrimeIntellect {
    PrimeIntellect::new(SecretString::from(emulator.api_key().to_string()), Some(&emulator.base_url()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
        .with_poll_interval(Duration::from_millis(50))
        .with_reconcile_policy(FAST_RECONCILE)
}

pub fn runpod(emulator: &Emulator) -> RunPod {
    RunPod::new(SecretString::from(emulator.api_key().to_string()), Some(&emulator.base_url()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
        .with_poll_interval(Duration::from_millis(50))
        .with_reconcile_policy(FAST_RECONCILE)
}

pub fn fleet(emulator: &Emulator) -> Fleet {
    Fleet::new()
        .with(primeintellect(emulator))
        .with(runpod(emulator))
        .with_cleanup_timeout(Duration::from_secs(10))
        .with_sweep_policy(FAST_RECONCILE)
}

/// Waits until the emulator has `n` live pods (background cleanup takes a moment).
pub async fn eventually_live_pods(emulator: &Emulator, n: usize) {
    for _ in 0..100 {
        if emulator.live_pods().len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} live pods, found {:?}", emulator.live_pods());
}

/// A fresh scratch directory with an Ed25519 key pair `key`/`key.pub` made by `ssh-keygen`;
/// returns it and the public key line.
pub fn scratch_with_key(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("gpucloud-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(dir.join("key"))
        .status();
    assert!(made.unwrap().success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(dir.join("key.pub")).unwrap().trim().to_string();
    (dir, public)
}

/// Writes `body` to `path`, creating its directories.
pub fn write_file(path: &std::path::Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// Whether the system ssh client is installed (the SSH tests skip, saying so, without it).
pub fn have_ssh() -> bool {
    std::process::Command::new("ssh").arg("-V").output().is_ok()
        && std::process::Command::new("ssh-keygen").arg("-?").output().is_ok()
}

/// A runtime for a test binary of one test whose SSH state (known-hosts files, control sockets)
/// lives in `state`: `GPUCLOUD_STATE_DIR` is set before the runtime's threads start.
///
/// The variable is the process's: every test of one binary that calls this must pass the same
/// `state` (and give its emulator a seed of its own, so that pod ids, which name the state's
/// files, never meet); a second directory panics rather than pulling the state from under a
/// test that runs beside it.
#[cfg(feature = "remote")]
pub fn runtime_with_state_dir(state: &std::path::Path) -> tokio::runtime::Runtime {
    static SET: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        // SAFETY: set once per process, by the first test that asks, before its own runtime's
        // threads exist; later tests only read it.
        unsafe { std::env::set_var(gpucloud::remote::STATE_DIR_ENV, state) };
        state.to_path_buf()
    });
    assert_eq!(set, state, "GPUCLOUD_STATE_DIR is process-wide: the tests of one binary must share one state dir");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `work` with a time bound: past `limit` the test fails naming `what`, instead of hanging
/// the whole test run.
pub async fn bounded<T>(what: &str, limit: Duration, work: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(limit, work).await {
        Ok(done) => done,
        Err(_) => panic!("{what}: still running after {limit:?} (time bound of the test)"),
    }
}
