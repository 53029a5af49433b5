//! Where a pod lands: one region vocabulary for both providers, offers and creates restricted
//! to what is inside the region, the pod's data center reported, and volume affinity.

mod common;

use gpucloud::{Error, LaunchRequest, OfferDetails, OfferQuery, Provider, Provisioner, VolumeSpec};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

fn in_region(region: &str) -> OfferQuery {
    OfferQuery { regions: vec![region.into()], ..OfferQuery::gpu("H100_80GB", 1) }
}

fn data_centers(offer: &gpucloud::Offer) -> Vec<String> {
    match &offer.details {
        OfferDetails::RunPod { data_center_ids, .. } => data_center_ids.clone(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_region_keeps_only_what_lies_inside_it_on_both_clouds() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = common::fleet(&emulator);
    // RunPod's H100 SXM is in US-TX-3 and EU-RO-1: asked for Europe, only EU-RO-1 is offered
    // and sent, and the pod lands there.
    let offers = fleet.offers(&in_region("EU")).await;
    assert!(offers.errors.is_empty(), "{:?}", offers.errors);
    for offer in &offers.offers {
        match offer.provider {
            Provider::RunPod => {
                assert_eq!(data_centers(offer), ["EU-RO-1"], "{offer:?}");
                assert_eq!(offer.data_center.as_deref(), Some("EU-RO-1"));
            }
            _ => assert_eq!(offer.region.as_deref(), Some("eu_north"), "{offer:?}"),
        }
    }
    let runpod = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    let request = LaunchRequest { query: in_region("europe"), ..LaunchRequest::new("H100_80GB", 1, "eu") };
    let pod = runpod.launch(&request).await.unwrap();
    assert_eq!(pod.data_center.as_deref(), Some("EU-RO-1"), "the pod says where it is");
    let emulated = emulator.live_pods().into_iter().find(|p| p.id == pod.id.id()).unwrap();
    assert_eq!(emulated.data_center, "EU-RO-1", "placed inside the region");
    runpod.terminate(&pod.id).await.unwrap();

    // PrimeIntellect region names reach RunPod as its data centers, and the reverse.
    let us = fleet.offers(&in_region("united_states")).await.offers;
    assert!(us.iter().any(|o| o.provider == Provider::RunPod), "RunPod's US data centers are in united_states");
    assert!(us.iter().all(|o| {
        o.data_center.as_deref().is_some_and(|dc| dc.starts_with("US-") || o.provider == Provider::PrimeIntellect)
    }));
    let country = fleet.offers(&in_region("US")).await.offers;
    assert!(country.iter().any(|o| o.provider == Provider::PrimeIntellect), "US is a country PrimeIntellect can place");
    assert!(country.iter().all(|o| o.country.as_deref().is_none_or(|c| c == "US")), "{country:?}");
    // A data center id is finer than any PrimeIntellect region: only offers in that country
    // (its own offers name their data center) are kept.
    let kansas = fleet.offers(&in_region("US-KS-2")).await.offers;
    assert!(kansas.iter().all(|o| o.provider == Provider::PrimeIntellect || data_centers(o) == ["US-KS-2"]));
}

#[tokio::test]
async fn a_region_no_provider_knows_is_refused_before_any_request() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = common::fleet(&emulator);
    let request = LaunchRequest { query: in_region("Mars"), ..LaunchRequest::new("H100_80GB", 1, "nowhere") };
    let error = fleet.launch(&request).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidInput { field: "region", .. }), "{error}");
    assert!(error.to_string().contains("eu_west") && error.to_string().contains("US-KS-2"), "names the forms: {error}");
    assert_eq!(emulator.stats().requests, 0);
}

#[tokio::test]
async fn a_volume_decides_the_provider_and_the_data_center() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let (runpod, pi) = (common::runpod(&emulator), common::primeintellect(&emulator));
    let fleet = common::fleet(&emulator);
    // A RunPod network volume in EU-RO-1: only RunPod, Secure Cloud, EU-RO-1.
    let volume = runpod
        .create_volume(&VolumeSpec {
            name: "data".into(),
            size_gb: 50,
            data_center: Some("EU-RO-1".into()),
            ..VolumeSpec::default()
        })
        .await
        .unwrap();
    let query = OfferQuery { volume_id: Some(volume.id.clone()), ..OfferQuery::gpu("H100_80GB", 1) };
    let offers = fleet.offers(&query).await;
    assert!(!offers.offers.is_empty());
    for offer in &offers.offers {
        assert_eq!(offer.provider, Provider::RunPod);
        assert!(
            matches!(&offer.details, OfferDetails::RunPod { cloud, data_center_ids, .. } if cloud == "SECURE" && data_center_ids == &["EU-RO-1"]),
            "{offer:?}"
        );
    }
    let request = LaunchRequest { volume_ids: vec![volume.id.clone()], ..LaunchRequest::new("H100_80GB", 1, "vol") };
    let pod = fleet.launch(&request).await.unwrap();
    assert_eq!((pod.provider, pod.data_center.as_deref()), (Provider::RunPod, Some("EU-RO-1")));
    fleet.terminate(&pod.id).await.unwrap();
    assert_eq!(
        emulator.stats().requests_by_route.get("POST /v2/pods"),
        Some(&1),
        "one create, no offer that could not attach it"
    );

    // A PrimeIntellect disk: only PrimeIntellect offers in its location (`disks=`).
    let disk = pi
        .create_volume(&VolumeSpec {
            name: "disk".into(),
            size_gb: 100,
            provider_type: Some("runpod".into()),
            ..VolumeSpec::default()
        })
        .await
        .unwrap();
    let offers =
        fleet.offers(&OfferQuery { volume_id: Some(disk.id.clone()), ..OfferQuery::gpu("H100_80GB", 1) }).await;
    assert!(
        !offers.offers.is_empty() && offers.offers.iter().all(|o| o.provider == Provider::PrimeIntellect),
        "{:?}",
        offers.offers
    );

    // An id no provider has: a typed error before any create.
    let creates = emulator.stats().creates;
    let request =
        LaunchRequest { volume_ids: vec!["nosuchvolume".into()], ..LaunchRequest::new("H100_80GB", 1, "none") };
    let error = fleet.launch(&request).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidInput { field: "volume_ids", .. }), "{error}");
    assert_eq!(emulator.stats().creates, creates);
}

use gpucloud::Fleet;
