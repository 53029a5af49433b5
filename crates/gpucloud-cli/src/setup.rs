//! Building the fleet: from credentials in the environment, or on the built-in emulator.

use gpucloud::{Error, Fleet, PrimeIntellect, Provider, Readiness, ReconcilePolicy, RunPod, SecretString};
use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::time::Duration;

/// The fleet a command works with, and the emulator behind it when there is one.
pub struct Session {
    pub fleet: Fleet,
    /// The PrimeIntellect client, when configured (for what only it has, such as teams).
    pub primeintellect: Option<PrimeIntellect>,
    /// Kept alive for the command's duration.
    pub emulator: Option<Emulator>,
}

/// Refuses to send an API key over plain http to anything but loopback, unless allowed.
pub fn check_base_url(variable: &str, url: &str, allow_insecure_http: bool) -> Result<(), Error> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::InvalidInput { field: "base URL", message: format!("{variable}={url:?}: {e}") })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() == "http" && !loopback && !allow_insecure_http {
        return Err(Error::InvalidInput {
            field: "base URL",
            message: format!(
                "{variable}={url:?} is plain http to a non-loopback host: the API key would travel unencrypted; use https or pass --allow-insecure-http"
            ),
        });
    }
    Ok(())
}

fn base_url(variable: &'static str, allow_insecure_http: bool) -> Result<Option<String>, Error> {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => {
            check_base_url(variable, url.trim(), allow_insecure_http)?;
            Ok(Some(url.trim().to_string()))
        }
        _ => Ok(None),
    }
}

fn key(variable: &str) -> Option<SecretString> {
    std::env::var(variable).ok().filter(|k| !k.trim().is_empty()).map(|k| SecretString::from(k.trim().to_string()))
}

/// A PrimeIntellect client acting for `team`, if given.
fn for_team(client: PrimeIntellect, team: Option<&str>) -> Result<PrimeIntellect, Error> {
    match team {
        Some(team) => client.with_team(team),
        None => Ok(client),
    }
}

/// The real providers whose keys are set, restricted to `only` when non-empty; PrimeIntellect
/// acting for `team` when given.
pub fn from_env(
    only: &[Provider],
    allow_insecure_http: bool,
    team: Option<&str>,
    readiness: Readiness,
) -> Result<Session, Error> {
    let wanted = |p: Provider| only.is_empty() || only.contains(&p);
    let mut fleet = Fleet::new();
    let mut primeintellect = None;
    let mut configured = 0;
    for provider in Provider::ALL.into_iter().filter(|p| wanted(*p)) {
        let (key_variable, url_variable) = match provider {
            Provider::PrimeIntellect => {
                (gpucloud::providers::primeintellect::API_KEY_ENV, gpucloud::providers::primeintellect::BASE_URL_ENV)
            }
            Provider::RunPod => (gpucloud::providers::runpod::API_KEY_ENV, gpucloud::providers::runpod::BASE_URL_ENV),
        };
        let Some(k) = key(key_variable) else {
            // A provider asked for by name must be configured; otherwise it is simply not used.
            if !only.is_empty() {
                return Err(Error::MissingCredentials { provider, variable: key_variable });
            }
            continue;
        };
        let url = base_url(url_variable, allow_insecure_http)?;
        fleet = match provider {
            Provider::PrimeIntellect => {
                let client = for_team(PrimeIntellect::new(k, url.as_deref())?.with_readiness(readiness), team)?;
                primeintellect = Some(client.clone());
                fleet.with(client)
            }
            Provider::RunPod => fleet.with(RunPod::new(k, url.as_deref())?.with_readiness(readiness)),
        };
        configured += 1;
    }
    if configured == 0 {
        return Err(Error::MissingCredentials {
            provider: Provider::PrimeIntellect,
            variable: "PRIME_API_KEY or RUNPOD_API_KEY",
        });
    }
    Ok(Session { fleet, primeintellect, emulator: None })
}

/// Both providers on a fresh in-process emulator.
pub async fn emulated(
    only: &[Provider],
    ready_delay: Duration,
    team: Option<&str>,
    readiness: Readiness,
) -> Result<Session, Error> {
    let emulator = Emulator::start(EmulatorConfig { ready_delay, ..EmulatorConfig::default() }).await.map_err(|e| {
        Error::Config { provider: Provider::PrimeIntellect, message: format!("starting the emulator: {e}") }
    })?;
    eprintln!(
        "gpucloud: using the built-in emulator at {} — offers and pods are simulated, nothing is real or billed",
        emulator.base_url()
    );
    let key = SecretString::from(emulator.api_key().to_string());
    let url = emulator.base_url();
    let poll = Duration::from_millis(200);
    let reconcile = ReconcilePolicy { attempts: 5, delay: Duration::from_millis(200) };
    let wanted = |p: Provider| only.is_empty() || only.contains(&p);
    let mut fleet = Fleet::new().with_sweep_policy(reconcile);
    let mut primeintellect = None;
    if wanted(Provider::PrimeIntellect) {
        let client = PrimeIntellect::new(key.clone(), Some(&url))?
            .with_poll_interval(poll)
            .with_reconcile_policy(reconcile)
            .with_readiness(readiness);
        let client = for_team(client, team)?;
        primeintellect = Some(client.clone());
        fleet = fleet.with(client);
    }
    if wanted(Provider::RunPod) {
        fleet = fleet.with(
            RunPod::new(key, Some(&url))?
                .with_poll_interval(poll)
                .with_reconcile_policy(reconcile)
                .with_readiness(readiness),
        );
    }
    Ok(Session { fleet, primeintellect, emulator: Some(emulator) })
}

pub(crate) async fn session(
    cli: &crate::cli::Cli,
    providers: &[Provider],
    ready_delay: Duration,
) -> Result<Session, Error> {
    session_waiting_for(cli, providers, ready_delay, gpucloud::Readiness::default()).await
}

/// A session whose provisioners wait for `readiness`.
pub(crate) async fn session_waiting_for(
    cli: &crate::cli::Cli,
    providers: &[Provider],
    ready_delay: Duration,
    readiness: gpucloud::Readiness,
) -> Result<Session, Error> {
    // An empty PRIME_TEAM_ID means no team, as an unset one does.
    let team = cli.team.as_deref().filter(|t| !t.is_empty());
    let mut session = if cli.emulator {
        emulated(providers, ready_delay, team, readiness).await?
    } else {
        from_env(providers, cli.allow_insecure_http, team, readiness)?
    };
    session.fleet = session.fleet.with_cleanup_timeout(cli.confirm_timeout);
    Ok(session)
}

/// The spending limits a launch or start is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// `--max-burn`, USD per hour.
    pub max_burn: Option<f64>,
    /// `--usd-per-eur`: the rate EUR amounts are converted at for the budget and the cap.
    pub usd_per_eur: Option<f64>,
}

/// A session for a launch or start under `limits`. With a burn cap, every provider whose key is
/// set is configured, so the cap counts all their pods, and the fleet then launches and starts
/// only on `providers` (each of which must be configured): narrowing where a pod lands does not
/// make the other providers' pods stop billing.
pub(crate) async fn limited_session(
    cli: &crate::cli::Cli,
    providers: &[Provider],
    ready_delay: Duration,
    readiness: gpucloud::Readiness,
    limits: Limits,
) -> Result<Session, Error> {
    let mut session = if limits.max_burn.is_some() && !providers.is_empty() {
        let mut all = session_waiting_for(cli, &[], ready_delay, readiness).await?;
        for provider in providers {
            if all.fleet.provisioner(*provider).is_err() {
                let variable = match provider {
                    Provider::PrimeIntellect => gpucloud::providers::primeintellect::API_KEY_ENV,
                    Provider::RunPod => gpucloud::providers::runpod::API_KEY_ENV,
                };
                return Err(Error::MissingCredentials { provider: *provider, variable });
            }
        }
        all.fleet = all.fleet.only(providers);
        all
    } else {
        session_waiting_for(cli, providers, ready_delay, readiness).await?
    };
    if let Some(rate) = limits.usd_per_eur {
        session.fleet = session.fleet.with_exchange_rate("EUR", rate);
    }
    if let Some(cap) = limits.max_burn {
        session.fleet = session.fleet.with_max_burn(cap);
        // The built-in emulator lives and dies with this process: nothing to share.
        if session.emulator.is_none() {
            session.fleet = session.fleet.with_burn_ledger(burn_ledger()?);
        }
    }
    Ok(session)
}

/// The burn ledger `--max-burn` shares with other gpucloud processes on this machine: one per
/// pair of API endpoints (so an emulator's pods never count against the real clouds'), in the
/// state directory.
fn burn_ledger() -> Result<std::path::PathBuf, Error> {
    gpucloud::remote::check_state_dirs()?;
    let endpoints = ["PRIME_API_BASE_URL", "RUNPOD_API_BASE_URL"]
        .map(|variable| std::env::var(variable).unwrap_or_default())
        .join("\n");
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash =
        endpoints.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Ok(gpucloud::remote::state_dir().join(format!("burn-ledger-{hash:016x}")))
}

#[cfg(test)]
mod tests {
    use super::check_base_url;

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(check_base_url("X", "http://api.example.com", false).is_err());
        assert!(check_base_url("X", "http://api.example.com", true).is_ok());
        assert!(check_base_url("X", "https://api.example.com", false).is_ok());
        for ok in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"] {
            assert!(check_base_url("X", ok, false).is_ok(), "{ok}");
        }
    }
}
