//! `Fleet`: merged offers, failover, reconciliation of ambiguous creates, and cleanup.

mod common;

use gpucloud::{Error, LaunchRequest, OfferQuery, PodStatus, Provider, Provisioner};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::time::Duration;

#[tokio::test]
async fn offers_from_both_providers_are_merged_cheapest_first() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let results = common::fleet(&emulator).offers(&OfferQuery::gpu("H100", 1)).await;
    assert!(results.errors.is_empty(), "{:?}", results.errors);
    let providers: std::collections::BTreeSet<Provider> = results.offers.iter().map(|o| o.provider).collect();
    assert_eq!(providers.len(), 2);
    // USD cheapest first, then the euro offer: never ranked against dollars as if they were.
    let (usd, other): (Vec<_>, Vec<_>) = results.offers.iter().partition(|o| o.is_usd());
    assert!(usd.windows(2).all(|w| w[0].price_per_hour <= w[1].price_per_hour));
    assert_eq!(other.iter().map(|o| o.currency.as_str()).collect::<Vec<_>>(), ["EUR"]);
    assert!(results.offers.last().is_some_and(|o| o.currency == "EUR"), "after every USD offer");
    assert!(results.offers.iter().all(|o| o.gpu_type == "H100_80GB"));
    // The prepaid H100 ($1.49/h, 24 h up front) and the unpriced one are not listed.
    assert!(results.offers.iter().all(|o| o.prepaid_hours.is_none() && o.price_per_hour > 0.0));
}

#[tokio::test]
async fn a_failing_provider_is_reported_beside_the_others_offers() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let broken =
        gpucloud::RunPod::new(gpucloud::SecretString::from("bad".to_string()), Some(&emulator.base_url())).unwrap();
    let fleet = gpucloud::Fleet::new().with(common::primeintellect(&emulator)).with(broken);
    let results = fleet.offers(&OfferQuery::gpu("H100_80GB", 1)).await;
    assert!(!results.offers.is_empty());
    assert_eq!(results.errors.len(), 1);
    assert_eq!(results.errors[0].0, Provider::RunPod);
    assert_eq!(results.errors[0].1.status(), Some(401));
}

#[tokio::test]
async fn launch_returns_a_running_pod_with_ssh() {
    let emulator = common::emulator(Duration::from_millis(300), FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "job")).await.unwrap();
    assert_eq!(pod.status, PodStatus::Running);
    assert!(pod.ssh.is_some());
    // The cheapest on-demand H100 in the emulator's catalog is PrimeIntellect via hyperstack.
    assert_eq!(pod.provider, Provider::PrimeIntellect);
    assert_eq!(emulator.live_pods().len(), 1);
    fleet.terminate(&pod.id).await.unwrap();
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn failover_skips_a_stocked_out_offer() {
    let emulator = common::emulator(Duration::from_millis(100), FaultConfig::none()).await;
    emulator.set_stocked_out("hs-h100-sxm-1", true);
    let fleet = common::fleet(&emulator);
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "job")).await.unwrap();
    let live = emulator.live_pods();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, pod.id.id());
    assert_ne!(live[0].provider_type, "hyperstack", "the stocked-out offer was skipped");
}

#[tokio::test]
async fn a_create_that_500s_after_creating_is_reconciled_to_exactly_one_pod() {
    let faults =
        FaultConfig { rate: 1.0, kinds: vec![FaultKind::CreateThen500], creates_only: true, ..FaultConfig::none() };
    let emulator = common::emulator(Duration::from_millis(100), faults).await;
    let fleet = common::fleet(&emulator);
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "job")).await.unwrap();
    assert_eq!(emulator.stats().creates, 1, "the create was not sent twice");
    let live = emulator.live_pods();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, pod.id.id());
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_reconciled_despite_list_lag() {
    for kind in [FaultKind::ConnectionReset, FaultKind::TruncatedBody] {
        let emulator = common::emulator(Duration::from_millis(50), FaultConfig::none()).await;
        let pi = common::primeintellect(&emulator);
        let offer = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap().remove(0);
        // The create is processed but its answer is lost; then lists lag behind the create.
        emulator.set_faults(FaultConfig { rate: 1.0, kinds: vec![kind], creates_only: true, ..FaultConfig::none() });
        let spec = gpucloud::LaunchSpec::new(offer, "lost");
        let create = pi.create(&spec);
        let lag = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            emulator.set_faults(FaultConfig {
                rate: 1.0,
                kinds: vec![FaultKind::ListLag],
                list_lag: Duration::from_millis(300),
                ..FaultConfig::none()
            });
        };
        let (pod, ()) = tokio::join!(create, lag);
        let pod = pod.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(emulator.stats().creates, 1, "{kind:?}: the create was not sent twice");
        assert_eq!(emulator.live_pods()[0].id, pod.id.id());
    }
}

#[tokio::test]
async fn a_passed_deadline_leaves_zero_pods() {
    let emulator = common::emulator(Duration::from_secs(30), FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let mut request = LaunchRequest::new("H100_80GB", 1, "slow");
    request.ready_timeout = Duration::from_millis(500);
    let err = fleet.launch(&request).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(emulator.stats().creates, 1);
    assert!(emulator.live_pods().is_empty(), "the timed-out pod was terminated before launch returned");
}

#[tokio::test]
async fn a_dropped_launch_leaves_zero_pods() {
    let emulator = common::emulator(Duration::from_secs(30), FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let request = LaunchRequest::new("H100_80GB", 1, "dropped");
    let result = tokio::time::timeout(Duration::from_millis(400), fleet.launch(&request)).await;
    assert!(result.is_err(), "the launch was still waiting");
    assert_eq!(emulator.stats().creates, 1);
    common::eventually_live_pods(&emulator, 0).await;
}

#[tokio::test]
async fn no_capacity_lists_every_attempt() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    for key in ["H100_80GB", "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe"] {
        emulator.set_stocked_out(key, true);
    }
    let fleet = common::fleet(&emulator);
    let err = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "none")).await.unwrap_err();
    let Error::NoCapacity { attempts } = &err else { panic!("{err}") };
    assert!(attempts.len() >= 3, "{err}");
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn a_pod_guard_terminates_on_drop_unless_taken() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let guard = fleet.launch_guarded(&LaunchRequest::new("RTX4090_24GB", 1, "guarded")).await.unwrap();
    assert_eq!(emulator.live_pods().len(), 1);
    drop(guard);
    common::eventually_live_pods(&emulator, 0).await;
    let kept = fleet.launch_guarded(&LaunchRequest::new("RTX4090_24GB", 1, "kept")).await.unwrap().into_pod();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emulator.live_pods().len(), 1);
    fleet.terminate(&kept.id).await.unwrap();
}

#[tokio::test]
async fn a_cancelled_launch_cleans_up_before_returning() {
    let emulator = common::emulator(Duration::from_secs(30), FaultConfig::none()).await;
    let fleet = common::fleet(&emulator);
    let cancel = tokio::time::sleep(Duration::from_millis(400));
    let err =
        fleet.launch_with_progress(&LaunchRequest::new("H100_80GB", 1, "cancel"), |_| {}, cancel).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(emulator.stats().creates, 1);
    assert!(emulator.live_pods().is_empty(), "cleanup finished before the error was returned");
}
