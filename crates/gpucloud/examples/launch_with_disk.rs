//! Create a PrimeIntellect network disk, launch a pod with it attached, then clean up both.
//!
//! ```sh
//! PRIME_API_KEY=... cargo run -p gpucloud --example launch_with_disk
//! cargo run -p gpucloud --example launch_with_disk -- --emulator
//! ```

use gpucloud::{Fleet, LaunchRequest, OfferQuery, PrimeIntellect, Provisioner, SecretString, VolumeSpec};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = if std::env::args().any(|a| a == "--emulator") {
        Some(gpucloud_emulator::Emulator::start(Default::default()).await?)
    } else {
        None
    };
    let pi = match &emulator {
        Some(e) => PrimeIntellect::new(SecretString::from(e.api_key().to_string()), Some(&e.base_url()))?,
        None => PrimeIntellect::from_env()?,
    };

    // A 100 GB disk on the underlying provider and data center of the cheapest H100 offer.
    let offer = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await?.into_iter().next().ok_or("no H100 offers")?;
    let disk = pi
        .create_volume(&VolumeSpec {
            name: "datasets".into(),
            size_gb: 100,
            data_center: offer.data_center.clone(),
            provider_type: offer.via.clone(),
            ..VolumeSpec::default()
        })
        .await?;
    println!("disk {} ({} GB)", disk.id, disk.size_gb);

    // Only offers that can attach this disk; the launch cleans up after itself on failure.
    let fleet = Fleet::new().with(pi.clone());
    let mut request = LaunchRequest::new("H100_80GB", 1, "with-disk");
    request.query.volume_id = Some(disk.id.clone());
    request.volume_ids = vec![disk.id.clone()];
    request.ready_timeout = Duration::from_secs(900);
    let guard = fleet.launch_guarded(&request).await?;
    println!("pod {} ready: {:?}", guard.pod().id, guard.pod().ssh.as_ref().map(ToString::to_string));

    guard.terminate().await?;
    // Detaching takes a moment after termination; deleting is permanent.
    pi.delete_volume(&disk.id).await?;
    println!("cleaned up");
    Ok(())
}
