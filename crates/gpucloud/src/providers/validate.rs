//! Checks made before any request is sent, and PrimeIntellect's price rule.

use crate::model::error::{Error, Result};
use crate::model::{Offer, Provider, ResourceSpec};
use crate::providers::provisioner::{LaunchSpec, MAX_NAME_LEN};

fn check_resource(
    field: &'static str,
    amount: Option<u32>,
    spec: Option<&ResourceSpec>,
    provider: Provider,
) -> Result<()> {
    let Some(amount) = amount else { return Ok(()) };
    if amount == 0 {
        return Err(Error::invalid(field, "must be at least 1"));
    }
    let Some(spec) = spec else {
        if provider == Provider::PrimeIntellect && field != "disk_gb" {
            return Err(Error::invalid(field, "this offer cannot be customized"));
        }
        return Ok(());
    };
    if spec.min == spec.max && amount != spec.min {
        return Err(Error::invalid(
            field,
            format!("this offer's {field} is fixed at {} (its minCount/maxCount are null); leave it unset", spec.min),
        ));
    }
    if amount < spec.min || amount > spec.max {
        return Err(Error::invalid(
            field,
            format!("{amount} is outside the offer's range {}..={}", spec.min, spec.max),
        ));
    }
    if spec.step > 1 && (amount - spec.min) % spec.step != 0 {
        return Err(Error::invalid(
            field,
            format!(
                "{amount} is not on the offer's step: allowed are {} + k*{} up to {}",
                spec.min, spec.step, spec.max
            ),
        ));
    }
    Ok(())
}

/// The estimated hourly price of `spec`: the offer's GPU price plus, for each customized
/// resource, PrimeIntellect's rule ([`ResourceSpec::cost`]). The offer's price already includes
/// the defaults, so only the difference from the default's cost is added.
pub fn estimate_price(spec: &LaunchSpec) -> f64 {
    let offer = &spec.offer;
    let extra = |amount: Option<u32>, resource: &Option<ResourceSpec>| match (amount, resource) {
        (Some(amount), Some(r)) => r.cost(amount) - r.cost(r.default),
        _ => 0.0,
    };
    offer.price_per_hour
        + extra(spec.disk_gb, &offer.disk)
        + extra(spec.vcpus, &offer.vcpu)
        + extra(spec.memory_gb, &offer.memory)
}

/// How far over the estimate `maxPrice` goes on a variable-price offer when the caller set no
/// cap: 10%, so a small tick between listing and create does not refuse the create, while a
/// jump does. Set [`LaunchSpec::max_price_per_hour`] to cap it exactly. The budget counts the
/// offer at this `maxPrice` ([`worst_price`]).
pub const VARIABLE_PRICE_HEADROOM: f64 = 0.10;

/// The `maxPrice` a create of `spec` sends, if any: the caller's cap, or, on a variable-price
/// offer without one, [`VARIABLE_PRICE_HEADROOM`] over the
/// estimate, rounded up to the cent.
pub fn max_price(spec: &LaunchSpec) -> Option<f64> {
    let variable =
        matches!(spec.offer.details, crate::model::OfferDetails::PrimeIntellect { variable_price: true, .. });
    spec.max_price_per_hour.or(variable.then(|| {
        let capped = estimate_price(spec) * (1.0 + VARIABLE_PRICE_HEADROOM);
        (capped * 100.0).ceil() / 100.0
    }))
}

/// The most a pod created from `spec` may bill per hour, and which price that is (for errors):
/// on a variable-price offer its `maxPrice` (PrimeIntellect's "Dynamic pricing": "rates may
/// fluctuate throughout the instance's lifetime", and `maxPrice` is "to set a cap"); on any other
/// offer the estimate.
pub fn worst_price(spec: &LaunchSpec) -> (f64, &'static str) {
    let variable =
        matches!(spec.offer.details, crate::model::OfferDetails::PrimeIntellect { variable_price: true, .. });
    match (variable, max_price(spec)) {
        (true, Some(max)) if spec.max_price_per_hour.is_some() => {
            (max, "the variable-price offer's maxPrice, your max price per hour")
        }
        (true, Some(max)) => (max, "the variable-price offer's maxPrice, its estimate plus the 10% headroom"),
        _ => (estimate_price(spec), "the offer's price"),
    }
}

/// The container settings RunPod's document (953afcc) added: `cmd`/`entrypoint` in exec form
/// and the per-GPU placement filters (`minimum: 1`). PrimeIntellect's pod create has none of them.
fn check_container(spec: &LaunchSpec) -> Result<()> {
    let provider = spec.offer.provider;
    let asked = [
        ("container command", spec.command.is_some()),
        ("container entrypoint", spec.entrypoint.is_some()),
        ("min_ram_per_gpu_gb (size memory_gb instead)", spec.min_ram_per_gpu_gb.is_some()),
        ("min_vcpus_per_gpu (size vcpus instead)", spec.min_vcpus_per_gpu.is_some()),
        ("min_cuda_version (choose a CUDA image instead)", spec.min_cuda_version.is_some()),
        ("registry credential", spec.registry.is_some()),
        ("extra ports", !spec.ports.is_empty()),
        ("volume mount path", spec.volume_mount_path.is_some()),
    ];
    if provider != Provider::RunPod
        && let Some((operation, _)) = asked.iter().find(|(_, set)| *set)
    {
        return Err(Error::Unsupported { provider, operation });
    }
    for (field, argv) in [("command", &spec.command), ("entrypoint", &spec.entrypoint)] {
        if let Some(argv) = argv
            && argv.iter().any(|arg| arg.contains('\0'))
        {
            return Err(Error::invalid(field, "arguments must not contain NUL bytes"));
        }
    }
    for (field, value) in
        [("min_ram_per_gpu_gb", spec.min_ram_per_gpu_gb), ("min_vcpus_per_gpu", spec.min_vcpus_per_gpu)]
    {
        if value == Some(0) {
            return Err(Error::invalid(field, "must be at least 1 (RunPod's minimum), or unset for no filter"));
        }
    }
    check_cuda_floor(spec.min_cuda_version.as_deref())
}

/// `min_cuda_version` matches the document's pattern for `gpu.minCudaVersion`, `^\d+\.\d+$`.
pub(crate) fn check_cuda_floor(version: Option<&str>) -> Result<()> {
    match version {
        Some(version)
            if cuda_version(version).is_none() || version.bytes().any(|b| !b.is_ascii_digit() && b != b'.') =>
        {
            Err(Error::invalid("min_cuda_version", format!("{version:?} is not major.minor, e.g. 12.4")))
        }
        _ => Ok(()),
    }
}

/// `major.minor` as numbers ("compared numerically rather than as a decimal — so 12.11 is
/// above 12.2", RunPod's `minCudaVersion`).
fn cuda_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether CUDA `version` is at least `floor` (both `major.minor`; false if either is not).
pub(crate) fn cuda_at_least(version: &str, floor: &str) -> bool {
    matches!((cuda_version(version), cuda_version(floor)), (Some(v), Some(f)) if v >= f)
}

/// RunPod's limit on a `POST /v2/pods` body, in bytes (the document's 413 response: "exceeds the
/// 102400 byte limit").
pub const RUNPOD_MAX_CREATE_BODY: usize = 102_400;

/// The size of `body` on the wire, or [`Error::RequestTooLarge`] when it would pass `limit` bytes.
pub(crate) fn check_body_size<T: serde::Serialize>(
    provider: Provider,
    operation: &'static str,
    body: &T,
    limit: usize,
) -> Result<usize> {
    let size = serde_json::to_vec(body).map(|b| b.len()).unwrap_or(0);
    if size > limit {
        return Err(Error::RequestTooLarge { provider, operation, size: Some(size), limit, sent: false });
    }
    Ok(size)
}

/// A pod or cluster name: 1 to [`MAX_NAME_LEN`] characters (fewer with a lease, whose stamp
/// takes room), letters, digits, `-`, `_` and `.`.
pub fn check_name(name: &str, leased: bool) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::invalid("name", format!("must be 1 to {MAX_NAME_LEN} characters, got {}", name.len())));
    }
    if leased && name.len() > crate::model::lease::MAX_LEASED_NAME_LEN {
        return Err(Error::invalid(
            "name",
            format!(
                "must be 1 to {} characters with a ttl (the lease stamp takes 20), got {}",
                crate::model::lease::MAX_LEASED_NAME_LEN,
                name.len()
            ),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(Error::invalid("name", format!("{bad:?} is not allowed; use letters, digits, '-', '_' and '.'")));
    }
    Ok(())
}

/// Validates `spec` against its offer. Every error names the field and what is allowed.
pub fn validate_launch(spec: &LaunchSpec) -> Result<()> {
    let offer: &Offer = &spec.offer;
    check_name(&spec.name, spec.ttl.is_some())?;
    if offer.gpu_count == 0 {
        return Err(Error::invalid("gpu_count", "must be at least 1"));
    }
    if let Some(ttl) = spec.ttl {
        crate::model::lease::check_ttl(ttl)?;
    }
    check_resource("disk_gb", spec.disk_gb, offer.disk.as_ref(), offer.provider)?;
    check_resource("vcpus", spec.vcpus, offer.vcpu.as_ref(), offer.provider)?;
    check_resource("memory_gb", spec.memory_gb, offer.memory.as_ref(), offer.provider)?;
    if offer.provider == Provider::RunPod && (spec.vcpus.is_some() || spec.memory_gb.is_some()) {
        return Err(Error::invalid(
            "vcpus",
            "RunPod GPU pods size vCPUs and memory from the GPU type; leave them unset",
        ));
    }
    if let Some(image) = &spec.image {
        if image.trim().is_empty() {
            return Err(Error::invalid("image", "must not be empty"));
        }
        // "set the `image` to `custom_template`" with a template id (the provision guide).
        if offer.provider == Provider::PrimeIntellect && spec.custom_template_id.is_some() && image != "custom_template"
        {
            return Err(Error::invalid(
                "image",
                format!("{image:?} with custom_template_id: the image must be custom_template (or unset)"),
            ));
        }
        if offer.provider == Provider::PrimeIntellect && !offer.images.is_empty() {
            let template = image == "custom_template";
            if template && spec.custom_template_id.is_none() {
                return Err(Error::invalid("custom_template_id", "required when image is custom_template"));
            }
            if !template && !offer.images.iter().any(|i| i == image) {
                return Err(Error::invalid(
                    "image",
                    format!("{image:?} is not offered; allowed: {}", offer.images.join(", ")),
                ));
            }
        }
    }
    check_container(spec)?;
    if offer.provider == Provider::RunPod && spec.volume_ids.len() > 1 {
        return Err(Error::invalid("volume_ids", "RunPod attaches at most one network volume"));
    }
    for key in spec.env.keys() {
        if key.is_empty() || key.contains('=') {
            return Err(Error::invalid("env", format!("{key:?} is not a valid variable name")));
        }
    }
    if let Some(max) = spec.max_price_per_hour {
        if !(max.is_finite() && max > 0.0) {
            return Err(Error::invalid("max_price_per_hour", format!("{max} is not a positive price")));
        }
        let estimate = estimate_price(spec);
        if estimate > max + 1e-9 {
            return Err(Error::invalid(
                "max_price_per_hour",
                format!("the estimated price ${estimate:.4}/h exceeds the cap ${max:.4}/h"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{OfferDetails, Stock};

    /// A PrimeIntellect offer with sizable resources, for unit tests.
    pub(crate) fn offer() -> Offer {
        Offer {
            provider: Provider::PrimeIntellect,
            via: Some("hyperstack".into()),
            gpu_type: "H100_80GB".into(),
            gpu_count: 1,
            gpu_memory_gb: Some(80),
            price_per_hour: 2.0,
            currency: "USD".into(),
            prepaid_hours: None,
            spot: false,
            region: None,
            data_center: None,
            country: None,
            stock: Stock::High,
            images: vec!["ubuntu_22_cuda_12".into()],
            disk: Some(ResourceSpec {
                min: 50,
                default: 100,
                max: 1000,
                step: 10,
                price_per_unit: 0.001,
                default_included_in_price: true,
            }),
            vcpu: Some(ResourceSpec {
                min: 4,
                default: 8,
                max: 32,
                step: 4,
                price_per_unit: 0.01,
                default_included_in_price: false,
            }),
            memory: None,
            details: OfferDetails::RunPod {
                gpu_type_id: String::new(),
                cloud: String::new(),
                data_center_ids: vec![],
                max_gpu_count: None,
                cuda_versions: vec![],
            },
        }
    }

    #[test]
    fn resources_outside_range_or_step_name_the_field_and_range() {
        let mut spec = LaunchSpec::new(offer(), "job");
        spec.disk_gb = Some(2000);
        let err = validate_launch(&spec).unwrap_err().to_string();
        assert!(err.contains("disk_gb") && err.contains("50..=1000"), "{err}");
        spec.disk_gb = Some(55);
        let err = validate_launch(&spec).unwrap_err().to_string();
        assert!(err.contains("disk_gb") && err.contains("step"), "{err}");
        spec.disk_gb = Some(60);
        validate_launch(&spec).unwrap();
        spec.memory_gb = Some(64);
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("memory_gb"));
    }

    #[test]
    fn image_must_be_offered_and_name_well_formed() {
        let mut spec = LaunchSpec::new(offer(), "job");
        spec.image = Some("my/image".into());
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("ubuntu_22_cuda_12"));
        let spec = LaunchSpec::new(offer(), "bad name");
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("invalid name"));
        let spec = LaunchSpec::new(offer(), "x".repeat(49));
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("1 to 48"));
        let mut spec = LaunchSpec::new(offer(), "x".repeat(32));
        assert!(validate_launch(&spec).is_ok());
        spec.ttl = Some(std::time::Duration::from_secs(60));
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("1 to 31 characters with a ttl"));
        spec.name.pop();
        assert!(validate_launch(&spec).is_ok());
    }

    #[test]
    fn price_follows_primeintellects_rule_and_respects_the_cap() {
        let mut spec = LaunchSpec::new(offer(), "job");
        assert_eq!(estimate_price(&spec), 2.0);
        // Disk default is included: 200 GB costs 200*0.001 = 0.2 more.
        spec.disk_gb = Some(200);
        assert!((estimate_price(&spec) - 2.2).abs() < 1e-9);
        // vCPU default is not included: going from 8 to 16 adds 8*0.01.
        spec.vcpus = Some(16);
        assert!((estimate_price(&spec) - 2.28).abs() < 1e-9);
        spec.max_price_per_hour = Some(2.1);
        assert!(validate_launch(&spec).unwrap_err().to_string().contains("exceeds the cap"));
    }
}
