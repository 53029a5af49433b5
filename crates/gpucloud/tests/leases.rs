//! Leases in pod names, extending them, and the reaper, against the emulator.

mod common;

use gpucloud::upkeep::reap::{ReapFailure, ReapReason};
use gpucloud::{Error, Fleet, LaunchRequest, PodStatus, Provider, ReapPolicy, SecretString};
use gpucloud_emulator::{Api, FaultConfig};
use std::time::Duration;

fn leased(name: &str, ttl: Duration) -> LaunchRequest {
    LaunchRequest { ttl: Some(ttl), ..LaunchRequest::new("H100_80GB", 1, name) }
}

fn one_provider(emulator: &gpucloud_emulator::Emulator, provider: Provider) -> Fleet {
    let fleet = Fleet::new().with_cleanup_timeout(Duration::from_secs(10)).with_sweep_policy(common::FAST_RECONCILE);
    match provider {
        Provider::PrimeIntellect => fleet.with(common::primeintellect(emulator)),
        Provider::RunPod => fleet.with(common::runpod(emulator)),
    }
}

#[tokio::test]
async fn a_leased_launch_carries_its_expiry_in_the_name_on_both_clouds() {
    let emulator = common::emulator(Duration::from_millis(100), FaultConfig::none()).await;
    for provider in Provider::ALL {
        let fleet = one_provider(&emulator, provider);
        let before = chrono::Utc::now();
        let pod = fleet.launch(&leased("train", Duration::from_secs(8 * 3600))).await.unwrap();
        let expiry = pod.lease_expires_at.expect("a leased pod reports its expiry");
        let lease = expiry.signed_duration_since(before).num_seconds();
        assert!((8 * 3600..=8 * 3600 + 5).contains(&lease), "{provider}: lease of {lease} s");
        let tag = pod.launch_tag.clone().expect("a launched pod reports its tag");
        assert!(pod.name.starts_with("train-exp") && pod.name.ends_with(&tag), "{}", pod.name);
        // The provider's own list is the state: a fresh read sees the same lease.
        let listed = fleet.get(&pod.id).await.unwrap();
        assert_eq!(listed.lease_expires_at, Some(expiry));
        fleet.terminate(&pod.id).await.unwrap();
    }
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn a_ttl_outside_its_range_is_refused_before_any_request() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let offers = fleet.offers(&gpucloud::OfferQuery::gpu("H100_80GB", 1)).await.offers;
    let mut spec = gpucloud::LaunchSpec::new(offers[0].clone(), "train");
    spec.ttl = Some(Duration::ZERO);
    let provisioner = fleet.provisioner(offers[0].provider).unwrap();
    let error = provisioner.create(&spec).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "ttl", .. }), "{error}");
    assert_eq!(emulator.stats().creates, 0);
}

#[tokio::test]
async fn the_reaper_terminates_expired_leases_and_nothing_else() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    emulator.seed_pods(Api::RunPod, 1); // someone else's pod, named "seeded-0"
    let request = |name: &str, ttl: Option<Duration>| LaunchRequest { ttl, ..LaunchRequest::new("H100_80GB", 1, name) };
    let short = fleet.launch(&request("short", Some(Duration::from_secs(1)))).await.unwrap();
    let long = fleet.launch(&request("long", Some(Duration::from_secs(3600)))).await.unwrap();
    let unleased = fleet.launch(&request("ci-job", None)).await.unwrap();
    assert_eq!(unleased.lease_expires_at, None);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let dry = fleet.reap(&ReapPolicy::expired_leases().dry_run()).await.unwrap();
    assert!(dry.dry_run && dry.is_clean());
    assert_eq!(dry.examined, 4);
    assert_eq!(dry.reaped.iter().map(|r| &r.id).collect::<Vec<_>>(), [&short.id]);
    assert_eq!(emulator.live_pods().len(), 4, "a dry run touches nothing");

    let report = fleet.reap(&ReapPolicy::expired_leases()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.reaped.len(), 1);
    assert_eq!(report.reaped[0].id, short.id);
    assert!(matches!(report.reaped[0].reason, ReapReason::LeaseExpired { .. }));
    assert_eq!(fleet.get(&short.id).await.map(|p| p.status).unwrap_or(PodStatus::Terminated), PodStatus::Terminated);
    let mut live: Vec<String> = emulator.live_pods().into_iter().map(|p| p.name).collect();
    live.sort();
    assert_eq!(live.len(), 3);
    assert!(live.contains(&long.name) && live.contains(&unleased.name) && live.contains(&"seeded-0".to_string()));

    // The caller's prefix rule reaches pods without a lease, and only those it names.
    let young =
        fleet.reap(&ReapPolicy::expired_leases().with_prefix_older_than("ci-", Duration::from_secs(3600))).await;
    assert!(young.unwrap().reaped.is_empty(), "younger than the age: kept");
    let old = fleet.reap(&ReapPolicy::expired_leases().with_prefix_older_than("ci-", Duration::ZERO)).await.unwrap();
    assert_eq!(old.reaped.iter().map(|r| &r.id).collect::<Vec<_>>(), [&unleased.id]);
    assert!(matches!(old.reaped[0].reason, ReapReason::PrefixOlderThan { .. }));
    let mut live: Vec<String> = emulator.live_pods().into_iter().map(|p| p.name).collect();
    live.sort();
    assert_eq!(live, [long.name.clone(), "seeded-0".to_string()]);
}

#[tokio::test]
async fn an_invalid_reap_policy_is_refused_before_any_request() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let requests = emulator.stats().requests;
    for (policy, field) in [
        (ReapPolicy { prefix: Some("ci-".into()), ..ReapPolicy::default() }, "older_than"),
        (ReapPolicy { older_than: Some(Duration::from_secs(1)), ..ReapPolicy::default() }, "prefix"),
        (ReapPolicy::default().with_prefix_older_than("", Duration::from_secs(1)), "prefix"),
    ] {
        match fleet.reap(&policy).await {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    assert_eq!(emulator.stats().requests, requests);
}

#[tokio::test]
async fn a_provider_that_cannot_be_listed_does_not_stop_the_sweep_of_the_other() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = one_provider(&emulator, Provider::PrimeIntellect);
    let pod = pi.launch(&leased("short", Duration::from_secs(1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let broken = gpucloud::RunPod::new(SecretString::from("wrong".to_string()), Some(&emulator.base_url())).unwrap();
    let fleet = Fleet::new().with(common::primeintellect(&emulator)).with(broken);
    let report = fleet.reap(&ReapPolicy::expired_leases()).await.unwrap();
    assert_eq!(report.reaped.iter().map(|r| &r.id).collect::<Vec<_>>(), [&pod.id]);
    assert!(matches!(&report.failures[..], [ReapFailure::List { provider: Provider::RunPod, .. }]));
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn extending_a_lease_renames_the_runpod_pod_and_the_reaper_honours_it() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = one_provider(&emulator, Provider::RunPod);
    let pod = fleet.launch(&leased("train", Duration::from_secs(1))).await.unwrap();
    let extended = fleet.extend_lease(&pod.id, Duration::from_secs(2 * 3600)).await.unwrap();
    assert_eq!(extended.launch_tag, pod.launch_tag, "the tag, the pod's identity, is kept");
    assert!(extended.lease_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(119));
    assert_eq!(emulator.live_pods()[0].name, extended.name);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(fleet.reap(&ReapPolicy::expired_leases()).await.unwrap().reaped.is_empty());

    // A pod launched without a lease gets one; someone else's pod has none to extend.
    let plain = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "plain")).await.unwrap();
    let leased_now = fleet.extend_lease(&plain.id, Duration::from_secs(60)).await.unwrap();
    assert!(leased_now.lease_expires_at.is_some());
    emulator.seed_pods(Api::RunPod, 1);
    let foreign = emulator.live_pods().into_iter().find(|p| p.name == "seeded-0").unwrap();
    let foreign_id = gpucloud::PodId::new(Provider::RunPod, foreign.id);
    let error = fleet.extend_lease(&foreign_id, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "pod", .. }), "{error}");
}

#[tokio::test]
async fn primeintellect_cannot_extend_a_lease_and_says_why() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = one_provider(&emulator, Provider::PrimeIntellect);
    let pod = fleet.launch(&leased("train", Duration::from_secs(60))).await.unwrap();
    let error = fleet.extend_lease(&pod.id, Duration::from_secs(3600)).await.unwrap_err();
    assert!(matches!(error, Error::Unsupported { provider: Provider::PrimeIntellect, .. }), "{error}");
    assert!(error.to_string().contains("renamed"), "{error}");
    assert!(!fleet.provisioner(Provider::PrimeIntellect).unwrap().capabilities().extend_lease);
}
