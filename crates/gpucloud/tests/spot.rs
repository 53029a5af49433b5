//! Spot: RunPod removed spot (interruptible) pods in 2026 and REST v2 has no field for them, so
//! asking RunPod for spot is a typed error that says so, never an on-demand pod in its place;
//! a fleet with both clouds shows PrimeIntellect's spot offers and RunPod's reason once.

mod common;

use gpucloud::{Error, OfferQuery, Provider, Provisioner};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

#[tokio::test]
async fn asking_runpod_for_spot_is_a_typed_error_that_says_why() {
    common::bounded("asking_runpod_for_spot_is_a_typed_error_that_says_why", Duration::from_secs(30), async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        let spot = OfferQuery { spot: Some(true), ..OfferQuery::gpu("H100_80GB", 1) };
        let error = common::runpod(&emulator).offers(&spot).await.unwrap_err();
        assert!(matches!(error, Error::Unsupported { provider: Provider::RunPod, .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("RunPod removed them in 2026") && text.contains("v2"), "{text}");

        // Both clouds: PrimeIntellect's spot offers, and RunPod's reason, once.
        let results = common::fleet(&emulator).offers(&spot).await;
        assert!(
            !results.offers.is_empty()
                && results.offers.iter().all(|o| o.spot && o.provider == Provider::PrimeIntellect)
        );
        let reasons: Vec<_> = results.errors.iter().filter(|(p, _)| *p == Provider::RunPod).collect();
        assert_eq!(reasons.len(), 1, "{:?}", results.errors);

        // A launch that may only use RunPod spot creates nothing and says why.
        let fleet = gpucloud::Fleet::new().with(common::runpod(&emulator));
        let mut request = gpucloud::LaunchRequest::new("H100_80GB", 1, "spot");
        request.query.spot = Some(true);
        let error = fleet.launch(&request).await.unwrap_err();
        assert!(error.to_string().contains("RunPod removed them in 2026"), "{error}");
        assert!(emulator.live_pods().is_empty());
    })
    .await;
}
