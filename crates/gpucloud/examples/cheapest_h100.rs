//! The cheapest H100 across both clouds.
//!
//! ```sh
//! PRIME_API_KEY=... RUNPOD_API_KEY=... cargo run -p gpucloud --example cheapest_h100
//! cargo run -p gpucloud --example cheapest_h100 -- --emulator     # no account needed
//! ```

use gpucloud::{Fleet, OfferQuery, PrimeIntellect, RunPod, SecretString};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // With --emulator, both clouds are simulated locally.
    let (fleet, _emulator) = if std::env::args().any(|a| a == "--emulator") {
        let emulator = gpucloud_emulator::Emulator::start(Default::default()).await?;
        let key = SecretString::from(emulator.api_key().to_string());
        let fleet = Fleet::new()
            .with(PrimeIntellect::new(key.clone(), Some(&emulator.base_url()))?)
            .with(RunPod::new(key, Some(&emulator.base_url()))?);
        (fleet, Some(emulator))
    } else {
        (Fleet::from_env()?, None)
    };

    let results = fleet.offers(&OfferQuery::gpu("H100_80GB", 1)).await;
    for (provider, error) in &results.errors {
        eprintln!("{provider} unavailable: {error}");
    }
    match results.offers.first() {
        Some(offer) => println!(
            "cheapest H100: {} {} at ${:.2}/h ({}, stock {})",
            offer.provider,
            offer.via.as_deref().unwrap_or(""),
            offer.price_per_hour,
            if offer.spot { "spot" } else { "on-demand" },
            offer.stock.as_str()
        ),
        None => println!("no H100 offers right now"),
    }
    Ok(())
}
