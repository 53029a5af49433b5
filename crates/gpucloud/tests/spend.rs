//! Spending limits checked before any create: a budget per launch, a cap on the fleet's burn.

mod common;

use gpucloud::{Error, LaunchRequest, LaunchSpec, OfferQuery, Provisioner};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

#[tokio::test]
async fn a_budget_refuses_a_lease_it_cannot_pay_and_sets_one_it_can() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = common::fleet(&emulator);
    // The cheapest H100 is $1.95/h: 10 hours cost $19.50.
    let request = LaunchRequest {
        budget_usd: Some(10.0),
        ttl: Some(Duration::from_secs(10 * 3600)),
        ..LaunchRequest::new("H100_80GB", 1, "budget")
    };
    let error = fleet.launch(&request).await.unwrap_err();
    assert!(
        matches!(&error, Error::OverBudget { budget, needed: Some(n), .. } if *budget == 10.0 && (n - 19.5).abs() < 1e-6),
        "{error}"
    );
    assert_eq!(emulator.stats().creates, 0, "refused before any create");

    // Without a TTL the budget buys the lease: $10 at $1.95/h is 5.128 h.
    let request = LaunchRequest { budget_usd: Some(10.0), ..LaunchRequest::new("H100_80GB", 1, "budget") };
    let before = chrono::Utc::now();
    let pod = fleet.launch(&request).await.unwrap();
    let lease = pod.lease_expires_at.expect("the budget set a lease") - before;
    let hours = lease.num_seconds() as f64 / 3600.0;
    assert!((hours - 10.0 / 1.95).abs() < 0.01, "{hours} h");
    fleet.terminate(&pod.id).await.unwrap();

    let bad = LaunchRequest { budget_usd: Some(-1.0), ..LaunchRequest::new("H100_80GB", 1, "budget") };
    assert!(matches!(fleet.launch(&bad).await, Err(Error::InvalidInput { field: "budget_usd", .. })));
}

#[tokio::test]
async fn the_burn_cap_counts_pods_other_clients_started() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    // Another process runs a $1.99/h RunPod pod.
    let other = common::runpod(&emulator);
    let offers = other.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    let cheapest = offers.iter().find(|o| o.price_per_hour == 1.99).unwrap().clone();
    let running = other.create(&LaunchSpec::new(cheapest, "elsewhere")).await.unwrap();
    let capped = common::fleet(&emulator).with_max_burn(3.0);
    let creates = emulator.stats().creates;
    let error = capped.launch(&LaunchRequest::new("H100_80GB", 1, "capped")).await.unwrap_err();
    match &error {
        Error::BurnCapExceeded { cap, current, offer } => {
            assert_eq!((*cap, *offer), (3.0, 1.95));
            assert!((current - 1.99).abs() < 1e-9, "{current}");
        }
        other => panic!("expected BurnCapExceeded, got {other}"),
    }
    assert_eq!(emulator.stats().creates, creates, "no create was sent");
    // With room under the cap the launch goes through, and its pod counts for the next one.
    let roomy = common::fleet(&emulator).with_max_burn(4.0);
    let pod = roomy.launch(&LaunchRequest::new("H100_80GB", 1, "fits")).await.unwrap();
    let error = roomy.launch(&LaunchRequest::new("H100_80GB", 1, "second")).await.unwrap_err();
    assert!(matches!(error, Error::BurnCapExceeded { .. }), "{error}");
    // Terminated, it stops counting at once: launch, terminate, launch again under the cap.
    roomy.terminate(&pod.id).await.unwrap();
    let again = roomy.launch(&LaunchRequest::new("H100_80GB", 1, "again")).await.unwrap();
    roomy.terminate(&again.id).await.unwrap();
    other.terminate(&running.id).await.unwrap();
}
