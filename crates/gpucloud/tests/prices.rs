//! What a pod costs: the documented price rules of PrimeIntellect's offers (security, currency,
//! prepaid hours, fixed resources, variable prices, custom templates) and RunPod's f32 rates,
//! against an emulator that prices pods by the same rules and refuses what breaks them.

mod common;

use gpucloud::{Error, LaunchRequest, LaunchSpec, Offer, OfferQuery, Provisioner};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

async fn offer(pi: &gpucloud::PrimeIntellect, query: OfferQuery, cloud_id: &str) -> Offer {
    let offers = pi.offers(&query).await.unwrap();
    offers
        .into_iter()
        .find(|o| matches!(&o.details, gpucloud::OfferDetails::PrimeIntellect { cloud_id: id, .. } if id == cloud_id))
        .unwrap_or_else(|| panic!("no offer {cloud_id}"))
}

fn emulated(emulator: &gpucloud_emulator::Emulator, pod: &gpucloud::Pod) -> gpucloud_emulator::EmulatedPod {
    emulator.all_pods().into_iter().find(|p| p.id == pod.id.id()).unwrap()
}

#[tokio::test]
async fn prepaid_offers_are_listed_and_launched_only_when_asked_for() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    let listed = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    assert!(listed.iter().all(|o| o.prepaid_hours.is_none()), "not listed by default");
    let query = OfferQuery { allow_prepaid: true, spot: Some(false), ..OfferQuery::gpu("H100_80GB", 1) };
    let prepaid = offer(&pi, query.clone(), "dc-h100-prepaid-24h").await;
    assert_eq!(prepaid.prepaid_hours, Some(24.0));
    assert!((prepaid.upfront_charge().unwrap() - 24.0 * 1.49).abs() < 1e-9);
    // A launch that allows it orders it for its prepaid hours (the emulator refuses otherwise).
    let fleet = gpucloud::Fleet::new().with(common::primeintellect(&emulator));
    let request = LaunchRequest { query, ..LaunchRequest::new("H100_80GB", 1, "prepaid") };
    let pod = fleet.launch(&request).await.unwrap();
    assert_eq!(emulated(&emulator, &pod).prepaid_hours, Some(24.0));
    fleet.terminate(&pod.id).await.unwrap();
    // Without the opt-in the cheapest H100 is the $1.95 pay-as-you-go one.
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "hourly")).await.unwrap();
    assert_eq!((pod.price_per_hour, emulated(&emulator, &pod).prepaid_hours), (Some(1.95), None));
    fleet.terminate(&pod.id).await.unwrap();
}

#[tokio::test]
async fn euro_prices_are_never_capped_or_ranked_as_dollars() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    let all = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    assert!(all.iter().any(|o| o.currency == "EUR" && o.price_per_hour == 1.79));
    // A USD cap of $1.80 would let EUR 1.79 through if it were read as dollars.
    let capped =
        pi.offers(&OfferQuery { max_price_per_hour: Some(1.80), ..OfferQuery::gpu("H100_80GB", 1) }).await.unwrap();
    assert!(capped.iter().all(Offer::is_usd), "{capped:?}");
}

#[tokio::test]
async fn security_decides_the_price_and_a_charged_fixed_default_counts() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    // Community cloud: priced by `communityPrice` (its `onDemand` is null), created as such.
    let community = offer(&pi, OfferQuery::gpu("A100_80GB", 1), "tw-a100-community-1").await;
    assert_eq!(community.price_per_hour, 1.09);
    let pod = pi.create(&LaunchSpec::new(community, "community")).await.unwrap();
    assert_eq!(pod.price_per_hour, Some(1.09));
    // A fixed 200 GB disk at $0.0005/GB-h not included: $0.99 + $0.10.
    let fixed = offer(&pi, OfferQuery::gpu("L40S_48GB", 1), "lambda-l40s-1").await;
    assert!((fixed.price_per_hour - 1.09).abs() < 1e-9, "{}", fixed.price_per_hour);
    let resized = LaunchSpec { disk_gb: Some(300), ..LaunchSpec::new(fixed.clone(), "fixed") };
    let error = pi.create(&resized).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field: "disk_gb", .. }) && error.to_string().contains("fixed at 200"),
        "{error}"
    );
    // Its own size is accepted and not sent (the emulator refuses any other diskSize).
    let pod = pi.create(&LaunchSpec { disk_gb: Some(200), ..LaunchSpec::new(fixed, "fixed") }).await.unwrap();
    assert!((pod.price_per_hour.unwrap() - 1.09).abs() < 1e-9, "the emulator prices the charged default too");
    // No price at all: no offer.
    let offers = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    assert!(offers.iter().all(|o| !matches!(&o.details, gpucloud::OfferDetails::PrimeIntellect { cloud_id, .. } if cloud_id == "oblivus-h100-unpriced")));
}

#[tokio::test]
async fn a_variable_price_gets_headroom_unless_the_caller_caps_it() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    let spot = offer(&pi, OfferQuery { spot: Some(true), ..OfferQuery::gpu("H100_80GB", 1) }, "dc-h100-spot-1").await;
    let pod = pi.create(&LaunchSpec::new(spot.clone(), "spot")).await.unwrap();
    let headroom =
        (1.05 * (1.0 + gpucloud::providers::primeintellect::VARIABLE_PRICE_HEADROOM) * 100.0_f64).ceil() / 100.0;
    assert_eq!(emulated(&emulator, &pod).max_price, Some(headroom), "10% over the estimate, in cents");
    let capped = LaunchSpec { max_price_per_hour: Some(1.06), ..LaunchSpec::new(spot.clone(), "capped") };
    let pod = pi.create(&capped).await.unwrap();
    assert_eq!(emulated(&emulator, &pod).max_price, Some(1.06), "the caller's cap wins");
    let below = LaunchSpec { max_price_per_hour: Some(1.0), ..LaunchSpec::new(spot, "below") };
    assert!(matches!(pi.create(&below).await, Err(Error::InvalidInput { field: "max_price_per_hour", .. })));
}

#[tokio::test]
async fn a_custom_template_is_created_with_the_custom_template_image() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    let h100 = offer(&pi, OfferQuery::gpu("H100_80GB", 1), "hs-h100-sxm-1").await;
    let wrong = LaunchSpec {
        image: Some("ubuntu_22_cuda_12".into()),
        custom_template_id: Some("tmpl-1".into()),
        ..LaunchSpec::new(h100.clone(), "tmpl")
    };
    assert!(matches!(pi.create(&wrong).await, Err(Error::InvalidInput { field: "image", .. })));
    let right = LaunchSpec { custom_template_id: Some("tmpl-1".into()), ..LaunchSpec::new(h100, "tmpl") };
    let pod = pi.create(&right).await.unwrap();
    assert_eq!(emulated(&emulator, &pod).image, "custom_template");
}

#[tokio::test]
async fn runpod_rates_are_shown_as_quoted() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let runpod = common::runpod(&emulator);
    let offers = runpod.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    let sxm = offers.iter().find(|o| o.price_per_hour == 2.99).expect("the $2.99 secure H100 SXM");
    let pod = runpod.create(&LaunchSpec::new(sxm.clone(), "rate")).await.unwrap();
    assert_eq!(pod.price_per_hour, Some(2.99), "not 2.990000009536743");
}
