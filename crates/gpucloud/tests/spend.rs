//! Spending limits checked before any create: a budget per launch, a cap on the fleet's burn.

mod common;

use gpucloud::{Error, LaunchRequest, LaunchSpec, OfferQuery, Provider, Provisioner};
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

/// Pods stay provisioning this long in the tests that need them to.
const LONG_PROVISIONING: Duration = Duration::from_secs(60);
const LIMIT: Duration = Duration::from_secs(60);

fn no_wait(name: &str) -> LaunchRequest {
    LaunchRequest { wait: false, ..LaunchRequest::new("H100_80GB", 1, name) }
}

#[tokio::test]
async fn a_provisioning_primeintellect_pod_counts_at_its_running_price() {
    common::bounded("a_provisioning_primeintellect_pod_counts_at_its_running_price", LIMIT, async {
        let emulator = common::emulator(LONG_PROVISIONING, FaultConfig::default()).await;
        // Two providers configured, PrimeIntellect selected (up --provider primeintellect).
        let first = common::fleet(&emulator).with_max_burn(3.0).only(&[Provider::PrimeIntellect]);
        let pod = first.launch(&no_wait("one")).await.unwrap();
        assert_eq!(pod.provider, Provider::PrimeIntellect);
        // Listed while provisioning: its record has no provisioningPriceHr ("If empty then
        // `priceHr` is used"), so it shows and counts at $1.95/h, not $0.
        let listed = common::primeintellect(&emulator).get(&pod.id).await.unwrap();
        assert_eq!(listed.status, gpucloud::PodStatus::Provisioning);
        assert_eq!((listed.price_per_hour, listed.price_now_per_hour), (Some(1.95), Some(1.95)));
        // Another process, the same cap: $1.95 + $1.95 passes $3.
        let second = common::fleet(&emulator).with_max_burn(3.0).only(&[Provider::PrimeIntellect]);
        let creates = emulator.stats().creates;
        let error = second.launch(&no_wait("two")).await.unwrap_err();
        assert!(matches!(&error, Error::BurnCapExceeded { current, .. } if (current - 1.95).abs() < 1e-9), "{error}");
        assert_eq!(emulator.stats().creates, creates, "refused before the create");
        first.terminate(&pod.id).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_cap_counts_every_configured_provider_whatever_the_selection() {
    common::bounded("the_cap_counts_every_configured_provider_whatever_the_selection", LIMIT, async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        // A PrimeIntellect pod runs at $1.95/h.
        let pi = common::fleet(&emulator).only(&[Provider::PrimeIntellect]);
        let running = pi.launch(&LaunchRequest::new("H100_80GB", 1, "elsewhere")).await.unwrap();
        // `up --provider runpod --max-burn 3.5`: RunPod's cheapest H100 is $1.99/h; with the
        // PrimeIntellect pod that is $3.94/h.
        let runpod_only = common::fleet(&emulator).with_max_burn(3.5).only(&[Provider::RunPod]);
        let creates = emulator.stats().creates;
        let error = runpod_only.launch(&LaunchRequest::new("H100_80GB", 1, "capped")).await.unwrap_err();
        assert!(
            matches!(&error, Error::BurnCapExceeded { current, offer, .. } if (current - 1.95).abs() < 1e-9 && *offer == 1.99),
            "{error}"
        );
        assert_eq!(emulator.stats().creates, creates);
        // A configured provider whose pods cannot be read refuses a capped create, naming it.
        let unreachable = gpucloud::PrimeIntellect::new(
            gpucloud::SecretString::from("key".to_string()),
            Some("http://127.0.0.1:9"),
        )
        .unwrap()
        .with_retry_policy(gpucloud::RetryPolicy::fast());
        let blind = gpucloud::Fleet::new()
            .with(unreachable)
            .with(common::runpod(&emulator))
            .with_max_burn(100.0)
            .only(&[Provider::RunPod]);
        let error = blind.launch(&LaunchRequest::new("H100_80GB", 1, "blind")).await.unwrap_err();
        assert!(matches!(&error, Error::BurnUnknown { provider: Provider::PrimeIntellect, .. }), "{error}");
        assert!(error.to_string().contains("primeintellect"), "{error}");
        assert_eq!(emulator.stats().creates, creates, "nothing was created");
        pi.terminate(&running.id).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn starting_a_stopped_pod_is_checked_like_a_create() {
    common::bounded("starting_a_stopped_pod_is_checked_like_a_create", LIMIT, async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = common::fleet(&emulator).only(&[Provider::RunPod]);
        let stopped = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "paused")).await.unwrap();
        fleet.stop(&stopped.id).await.unwrap();
        let read = fleet.get(&stopped.id).await.unwrap();
        // `cost` is 0 when EXITED: the running rate is unknown from the record, and a pod with
        // only a container disk bills nothing while stopped.
        assert_eq!((read.price_per_hour, read.price_now_per_hour), (None, Some(0.0)));
        let running = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "busy")).await.unwrap();
        // $1.99 running + $1.99 to start > $3.
        let capped = common::fleet(&emulator).with_max_burn(3.0);
        let error = capped.start(&stopped.id).await.unwrap_err();
        assert!(matches!(&error, Error::BurnCapExceeded { offer, .. } if *offer == 1.99), "{error}");
        let error = capped.start_or_redeploy(&stopped.id).await.unwrap_err();
        assert!(matches!(&error, Error::BurnCapExceeded { .. }), "{error}");
        assert!(emulator.live_pods().iter().any(|p| p.id == stopped.id.id() && p.stopped), "still stopped");
        assert_eq!(emulator.live_pods().len(), 2, "no replacement was launched");
        // With room under the cap it starts.
        fleet.terminate(&running.id).await.unwrap();
        capped.start(&stopped.id).await.unwrap();
        assert!(emulator.live_pods().iter().any(|p| p.id == stopped.id.id() && !p.stopped));
        fleet.terminate(&stopped.id).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_variable_price_offer_is_budgeted_at_its_max_price() {
    common::bounded("a_variable_price_offer_is_budgeted_at_its_max_price", LIMIT, async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = common::fleet(&emulator).only(&[Provider::PrimeIntellect]);
        // The emulator's spot H100 is variable-priced at $1.05/h.
        let mut spot = LaunchRequest::new("H100_80GB", 1, "spot");
        spot.query.spot = Some(true);
        spot.budget_usd = Some(1.10);
        spot.ttl = Some(Duration::from_secs(3600));
        spot.max_price_per_hour = Some(5.0);
        let error = fleet.launch(&spot).await.unwrap_err();
        assert!(matches!(&error, Error::OverBudget { needed: Some(n), .. } if (n - 5.0).abs() < 1e-9), "{error}");
        assert!(error.to_string().contains("maxPrice"), "the error says which price: {error}");
        // Without a cap of the caller's, maxPrice is the estimate plus 10%: $1.16 > $1.10.
        spot.max_price_per_hour = None;
        let error = fleet.launch(&spot).await.unwrap_err();
        assert!(matches!(&error, Error::OverBudget { needed: Some(n), .. } if (n - 1.16).abs() < 1e-9), "{error}");
        assert_eq!(emulator.stats().creates, 0, "refused before any create");
        // A budget that covers maxPrice for the lease is accepted.
        spot.budget_usd = Some(1.20);
        let pod = fleet.launch(&spot).await.unwrap();
        fleet.terminate(&pod.id).await.unwrap();
    })
    .await;
}
