//! PrimeIntellect team accounts and installation status, against the emulator.

mod common;

use gpucloud::{Error, Fleet, LaunchRequest, PodStatus, Provider, Provisioner, ReapPolicy, VolumeSpec};
use gpucloud_emulator::{EMULATED_TEAMS, FaultConfig, FaultKind};
use std::time::Duration;

const TEAM: &str = EMULATED_TEAMS[0].0;

fn team_fleet(emulator: &gpucloud_emulator::Emulator) -> Fleet {
    Fleet::new()
        .with(common::primeintellect(emulator).with_team(TEAM).unwrap())
        .with_cleanup_timeout(Duration::from_secs(10))
        .with_sweep_policy(common::FAST_RECONCILE)
}

#[tokio::test]
async fn a_team_client_creates_pods_and_disks_for_the_team_and_finds_them_again() {
    let emulator = common::emulator(Duration::from_millis(100), FaultConfig::none()).await;
    let fleet = team_fleet(&emulator);
    let request = LaunchRequest { ttl: Some(Duration::from_secs(1)), ..LaunchRequest::new("H100_80GB", 1, "team-job") };
    let pod = fleet.launch(&request).await.unwrap();
    assert_eq!(pod.team_id.as_deref(), Some(TEAM));
    assert_eq!(emulator.live_pods()[0].team_id.as_deref(), Some(TEAM), "the create named the team");
    let (listed, errors) = fleet.list().await;
    assert!(errors.is_empty());
    assert_eq!(listed.iter().filter(|p| p.team_id.as_deref() == Some(TEAM)).count(), 1);
    // The reaper sees team pods like any other.
    tokio::time::sleep(Duration::from_millis(2100)).await; // the expiry is rounded up to a whole second
    let report = fleet.reap(&ReapPolicy::expired_leases()).await.unwrap();
    assert_eq!(report.reaped.iter().map(|r| &r.id).collect::<Vec<_>>(), [&pod.id]);

    let provisioner = fleet.provisioner(Provider::PrimeIntellect).unwrap();
    let spec =
        VolumeSpec { name: "data".into(), size_gb: 10, provider_type: Some("runpod".into()), ..VolumeSpec::default() };
    provisioner.create_volume(&spec).await.unwrap();
    assert_eq!(emulator.volumes()[0].team_id.as_deref(), Some(TEAM));
}

#[tokio::test]
async fn an_ambiguous_team_create_is_reconciled_from_the_ordinary_pod_list() {
    let faults =
        FaultConfig { rate: 1.0, kinds: vec![FaultKind::CreateThen500], creates_only: true, ..FaultConfig::default() };
    let emulator = common::emulator(Duration::from_millis(50), faults).await;
    let pod = team_fleet(&emulator).launch(&LaunchRequest::new("H100_80GB", 1, "team-job")).await.unwrap();
    assert_eq!(pod.team_id.as_deref(), Some(TEAM));
    assert_eq!(emulator.stats().creates, 1, "found by listing, not created twice");
}

#[tokio::test]
async fn teams_are_listed_and_a_blank_team_id_is_refused() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let client = common::primeintellect(&emulator);
    let teams = client.teams().await.unwrap();
    assert_eq!(teams.len(), EMULATED_TEAMS.len());
    assert_eq!((teams[0].id.as_str(), teams[0].role.as_str()), (TEAM, "ADMIN"));
    for bad in ["", "  ", "two words"] {
        match common::primeintellect(&emulator).with_team(bad) {
            Err(Error::InvalidInput { field: "team_id", .. }) => {}
            other => panic!("{bad:?}: expected invalid team_id, got {other:?}"),
        }
    }
    assert_eq!(common::primeintellect(&emulator).with_team(" abc ").unwrap().team_id(), Some("abc"));
}

#[tokio::test]
async fn a_team_the_user_is_not_in_is_refused_by_the_provider_and_nothing_is_created() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = Fleet::new().with(common::primeintellect(&emulator).with_team("not-my-team").unwrap());
    let error = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "job")).await.unwrap_err();
    let Error::NoCapacity { attempts } = &error else { panic!("{error}") };
    assert!(attempts.iter().all(|a| a.error.status() == Some(403)), "{error}");
    assert_eq!(emulator.stats().creates, 0);
}

#[tokio::test]
async fn a_failed_installation_fails_the_wait_at_once_and_the_launch_cleans_up() {
    let faults = FaultConfig {
        rate: 1.0,
        kinds: vec![FaultKind::InstallationFailure],
        creates_only: true,
        ..FaultConfig::default()
    };
    let emulator = common::emulator(Duration::from_millis(100), faults).await;
    let pi = common::primeintellect(&emulator);
    let offers = pi.offers(&gpucloud::OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    let pod = pi.create(&gpucloud::LaunchSpec::new(offers[0].clone(), "job")).await.unwrap();
    let started = std::time::Instant::now();
    let error = pi.wait_until_ready(&pod.id, tokio::time::Instant::now() + Duration::from_secs(30)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "ended at once, not at the deadline");
    let Error::PodFailed { status, .. } = &error else { panic!("{error}") };
    assert!(status.contains("ACTIVE") && status.contains("installation ERROR: emulated"), "{status}");
    let failed = pi.get(&pod.id).await.unwrap();
    assert_eq!(failed.status, PodStatus::Failed);
    assert_eq!(failed.provider_status, "ACTIVE");
    assert_eq!(failed.installation_status.as_deref(), Some("ERROR"));
    pi.terminate_and_confirm(&pod.id, tokio::time::Instant::now() + Duration::from_secs(10)).await.unwrap();

    // Through a launch: every offer's pod fails its installation and is terminated.
    let fleet = Fleet::new().with(pi).with_cleanup_timeout(Duration::from_secs(10));
    let request = LaunchRequest { max_candidates: 2, ..LaunchRequest::new("H100_80GB", 1, "job") };
    let error = fleet.launch(&request).await.unwrap_err();
    let Error::NoCapacity { attempts } = &error else { panic!("{error}") };
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| matches!(a.error, Error::PodFailed { .. })), "{error}");
    assert!(emulator.live_pods().is_empty());
}
