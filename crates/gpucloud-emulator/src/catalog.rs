//! The emulated offers: a small, realistic catalog of both clouds.

use serde_json::{Value, json};

/// One PrimeIntellect availability entry (resold capacity).
#[derive(Debug, Clone)]
pub struct PiOffer {
    /// `cloudId`.
    pub cloud_id: &'static str,
    /// PI `GPUType`.
    pub gpu_type: &'static str,
    /// GPU memory, GB.
    pub gpu_memory: u32,
    /// `socket`.
    pub socket: &'static str,
    /// Underlying provider.
    pub provider: &'static str,
    /// Data center id.
    pub data_center: &'static str,
    /// Country code.
    pub country: &'static str,
    /// PI region name.
    pub region: &'static str,
    /// GPUs per pod.
    pub gpu_count: u32,
    /// USD per hour for the whole configuration.
    pub price: f64,
    /// `stockStatus`.
    pub stock: &'static str,
    /// Interruptible.
    pub spot: bool,
    /// `security`: `secure_cloud` (priced by `onDemand`) or `community_cloud` (by
    /// `communityPrice`), as the document's `Prices` says.
    pub security: &'static str,
    /// `prices.currency`: USD or EUR.
    pub currency: &'static str,
    /// `prepaidTime`: hours charged at create.
    pub prepaid_hours: Option<f64>,
    /// A disk fixed at this size (`minCount`/`maxCount` null), charged per GB-hour at this
    /// price, not included in the GPU price.
    pub fixed_disk: Option<(u32, f64)>,
    /// Whether the entry carries a price at all (some real entries carry none).
    pub priced: bool,
    /// Nodes the configuration spans: 1 for a single-node offer (`/availability/gpus`), more
    /// for a multi-node one (`/availability/multi-node`). Not on the wire: `GpuAvailability`
    /// has no node count, so a client infers it as `gpuCount` / GPUs per node.
    pub nodes: u32,
    /// `interconnect` (Gbps) and `interconnectType` between the nodes of a multi-node offer.
    pub interconnect: Option<(u32, &'static str)>,
    /// `provisioningTime`, minutes.
    pub provisioning_minutes: u32,
}

/// The PrimeIntellect catalog.
pub fn primeintellect() -> Vec<PiOffer> {
    let o = |cloud_id,
             gpu_type,
             gpu_memory,
             socket,
             provider,
             data_center,
             country,
             region,
             gpu_count,
             price,
             stock,
             spot| PiOffer {
        cloud_id,
        gpu_type,
        gpu_memory,
        socket,
        provider,
        data_center,
        country,
        region,
        gpu_count,
        price,
        stock,
        spot,
        security: "secure_cloud",
        currency: "USD",
        prepaid_hours: None,
        fixed_disk: None,
        priced: true,
        nodes: 1,
        interconnect: None,
        provisioning_minutes: 4,
    };
    let documented_shapes = [
        // "pre-charged for the total number of hours specified ... regardless of actual usage".
        PiOffer {
            prepaid_hours: Some(24.0),
            ..o(
                "dc-h100-prepaid-24h",
                "H100_80GB",
                80,
                "SXM5",
                "datacrunch",
                "FIN-01",
                "FI",
                "eu_north",
                1,
                1.49,
                "High",
                false,
            )
        },
        // Priced in euros.
        PiOffer {
            currency: "EUR",
            ..o(
                "dc-h100-eur-1",
                "H100_80GB",
                80,
                "SXM5",
                "datacrunch",
                "FIN-03",
                "FI",
                "eu_north",
                1,
                1.79,
                "High",
                false,
            )
        },
        // Community cloud: `communityPrice` only.
        PiOffer {
            security: "community_cloud",
            ..o(
                "tw-a100-community-1",
                "A100_80GB",
                80,
                "PCIe",
                "tensordock",
                "us-ca",
                "US",
                "united_states",
                1,
                1.09,
                "High",
                false,
            )
        },
        // A fixed 200 GB disk at $0.0005/GB-h, charged on top of the GPU price.
        PiOffer {
            fixed_disk: Some((200, 0.0005)),
            ..o(
                "lambda-l40s-1",
                "L40S_48GB",
                48,
                "PCIe",
                "lambdalabs",
                "us-west-1",
                "US",
                "united_states",
                1,
                0.99,
                "High",
                false,
            )
        },
        // No price at all.
        PiOffer {
            priced: false,
            ..o(
                "oblivus-h100-unpriced",
                "H100_80GB",
                80,
                "SXM5",
                "oblivus",
                "CANADA-2",
                "CA",
                "canada",
                1,
                0.0,
                "High",
                false,
            )
        },
    ];
    let mut offers = vec![
        o("hs-h100-sxm-1", "H100_80GB", 80, "SXM5", "hyperstack", "CANADA-1", "CA", "canada", 1, 1.95, "High", false),
        o("dc-h100-sxm-1", "H100_80GB", 80, "SXM5", "datacrunch", "FIN-01", "FI", "eu_north", 1, 2.19, "Medium", false),
        o("rp-h100-pcie-1", "H100_80GB", 80, "PCIe", "runpod", "US-KS-2", "US", "united_states", 1, 2.39, "Low", false),
        o("dc-h100-spot-1", "H100_80GB", 80, "SXM5", "datacrunch", "FIN-01", "FI", "eu_north", 1, 1.05, "Medium", true),
        o("hs-h100-sxm-8", "H100_80GB", 80, "SXM5", "hyperstack", "CANADA-1", "CA", "canada", 8, 15.60, "Low", false),
        o(
            "lambda-a100-1",
            "A100_80GB",
            80,
            "SXM4",
            "lambdalabs",
            "us-east-1",
            "US",
            "united_states",
            1,
            1.79,
            "High",
            false,
        ),
        o(
            "rp-a100-pcie-1",
            "A100_80GB",
            80,
            "PCIe",
            "runpod",
            "US-KS-2",
            "US",
            "united_states",
            1,
            1.64,
            "Medium",
            false,
        ),
        o("hs-a6000-1", "A6000_48GB", 48, "PCIe", "hyperstack", "NORWAY-1", "NO", "eu_north", 1, 0.50, "High", false),
        // Spot where disks are offered (US-KS-2, CANADA-1): a spot job with a disk.
        o(
            "rp-a6000-spot-1",
            "A6000_48GB",
            48,
            "PCIe",
            "runpod",
            "US-KS-2",
            "US",
            "united_states",
            1,
            0.30,
            "Medium",
            true,
        ),
        o(
            "hs-a6000-spot-1",
            "A6000_48GB",
            48,
            "PCIe",
            "hyperstack",
            "CANADA-1",
            "CA",
            "canada",
            1,
            0.35,
            "Medium",
            true,
        ),
        o(
            "tensordock-4090-1",
            "RTX4090_24GB",
            24,
            "PCIe",
            "tensordock",
            "us-tx",
            "US",
            "united_states",
            1,
            0.39,
            "High",
            false,
        ),
        o(
            "nebius-h200-1",
            "H200_141GB",
            141,
            "SXM5",
            "nebius",
            "eu-north1",
            "FI",
            "eu_north",
            1,
            3.50,
            "Available",
            false,
        ),
    ];
    offers.extend(documented_shapes);
    offers
}

/// PrimeIntellect's multi-node offers (`/availability/multi-node`, `/multi-node-summary`,
/// `/clusters`; never `/availability/gpus`). `gpuCount` is the whole configuration's (every node
/// alike, so it divides by the node count), `prices` the whole configuration's hourly price.
/// Each is in one data center. Two small ones (2 nodes of 1 A100, 2 nodes of 2 RTX 4090) are
/// for fast tests; the H100 ones are the shapes clusters are bought in (nodes of 8).
pub fn primeintellect_multi_node() -> Vec<PiOffer> {
    let o = |cloud_id, gpu_type, gpu_memory, socket, provider, data_center, country, region| PiOffer {
        cloud_id,
        gpu_type,
        gpu_memory,
        socket,
        provider,
        data_center,
        country,
        region,
        gpu_count: 0,
        price: 0.0,
        stock: "Available",
        spot: false,
        security: "secure_cloud",
        currency: "USD",
        prepaid_hours: None,
        fixed_disk: None,
        priced: true,
        nodes: 0,
        interconnect: None,
        provisioning_minutes: 0,
    };
    let offers = vec![
        PiOffer {
            gpu_count: 16,
            nodes: 2,
            price: 31.20,
            stock: "Medium",
            interconnect: Some((3200, "Infiniband")),
            provisioning_minutes: 30,
            ..o("hs-h100-sxm-16-2n", "H100_80GB", 80, "SXM5", "hyperstack", "CANADA-1", "CA", "canada")
        },
        PiOffer {
            gpu_count: 32,
            nodes: 4,
            price: 70.08,
            stock: "Low",
            interconnect: Some((3200, "Infiniband")),
            provisioning_minutes: 45,
            ..o("dc-h100-sxm-32-4n", "H100_80GB", 80, "SXM5", "datacrunch", "FIN-01", "FI", "eu_north")
        },
        PiOffer {
            gpu_count: 2,
            nodes: 2,
            price: 3.58,
            stock: "High",
            interconnect: Some((400, "Infiniband")),
            provisioning_minutes: 10,
            ..o("lambda-a100-2-2n", "A100_80GB", 80, "SXM4", "lambdalabs", "us-east-1", "US", "united_states")
        },
        PiOffer {
            gpu_count: 4,
            nodes: 2,
            price: 1.56,
            stock: "High",
            interconnect: Some((100, "Ethernet")),
            provisioning_minutes: 5,
            ..o("td-4090-4-2n", "RTX4090_24GB", 24, "PCIe", "tensordock", "us-tx", "US", "united_states")
        },
    ];
    // Every node alike: the whole configuration's GPUs split evenly, as clients split them.
    debug_assert!(offers.iter().all(|o| o.nodes > 1 && o.gpu_count % o.nodes == 0));
    offers
}

/// The offer with `cloudId` `cloud_id`, single-node or multi-node.
pub fn primeintellect_offer(cloud_id: &str) -> Option<PiOffer> {
    primeintellect().into_iter().chain(primeintellect_multi_node()).find(|o| o.cloud_id == cloud_id)
}

fn spec(min: u32, default: u32, max: u32, step: u32, price: f64, included: bool) -> Value {
    json!({"minCount": min, "defaultCount": default, "maxCount": max, "pricePerUnit": price, "step": step,
           "defaultIncludedInPrice": included, "additionalInfo": null})
}

impl PiOffer {
    /// What a pod of this offer costs per hour with `disk` GB (the document's rule, workflow 3
    /// of the brief): the GPU price, plus for each resource `amount * pricePerUnit` unless the
    /// amount is the default and the default is included in the price.
    pub fn pod_price(&self, disk: Option<u32>, vcpus: Option<u32>, memory: Option<u32>) -> f64 {
        let n = self.gpu_count;
        let charged = |amount: Option<u32>, default: u32, price: f64| match amount {
            Some(amount) if amount != default => f64::from(amount) * price,
            _ => 0.0,
        };
        let disk_cost = match self.fixed_disk {
            Some((size, price)) => f64::from(size) * price,
            None => charged(disk, 100, 0.00014),
        };
        let total = self.price + disk_cost + charged(vcpus, 8 * n, 0.004) + charged(memory, 64 * n, 0.001);
        (total * 10_000.0).round() / 10_000.0
    }

    /// Why `amount` of `field` is not allowed on this offer (range, step, fixed), if it is not.
    pub fn refuse_resource(&self, field: &str, amount: Option<u32>) -> Option<String> {
        let amount = amount?;
        let n = self.gpu_count;
        let (min, max, step) = match field {
            "diskSize" => match self.fixed_disk {
                Some((size, _)) if amount != size => return Some(format!("disk is fixed at {size} GB on this offer")),
                Some(_) => return None,
                None => (50, 2000, 10),
            },
            "vcpus" => (4 * n, 32 * n, 4),
            _ => (16 * n, 256 * n, 16),
        };
        (amount < min || amount > max || (amount - min) % step != 0)
            .then(|| format!("must lie in {min}..={max} in steps of {step}"))
    }

    /// The offer as PrimeIntellect's `GpuAvailability` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "cloudId": self.cloud_id, "gpuType": self.gpu_type, "socket": self.socket, "provider": self.provider,
            "region": self.region, "dataCenter": self.data_center, "country": self.country,
            "gpuCount": self.gpu_count, "gpuMemory": self.gpu_memory,
            "disk": match self.fixed_disk {
                Some((size, price)) => json!({"minCount": null, "defaultCount": size, "maxCount": null,
                    "pricePerUnit": price, "step": null, "defaultIncludedInPrice": false, "additionalInfo": null}),
                None => spec(50, 100, 2000, 10, 0.00014, true),
            },
            "vcpu": spec(4 * self.gpu_count, 8 * self.gpu_count, 32 * self.gpu_count, 4, 0.004, true),
            "memory": spec(16 * self.gpu_count, 64 * self.gpu_count, 256 * self.gpu_count, 16, 0.001, true),
            "internetSpeed": 1000, "interconnect": self.interconnect.map(|(gbps, _)| gbps),
            "interconnectType": self.interconnect.map(|(_, kind)| kind), "provisioningTime": self.provisioning_minutes,
            "stockStatus": self.stock, "security": self.security,
            "prices": {
                "onDemand": (self.priced && self.security == "secure_cloud").then_some(self.price),
                "communityPrice": (self.priced && self.security == "community_cloud").then_some(self.price),
                "isVariable": self.spot, "currency": self.currency
            },
            "images": ["ubuntu_22_cuda_12", "cuda_12_4_pytorch_2_5", "cuda_12_6_pytorch_2_7"],
            "isSpot": self.spot, "prepaidTime": self.prepaid_hours
        })
    }
}

/// One RunPod GPU type in the catalog.
#[derive(Debug, Clone)]
pub struct RpGpu {
    /// RunPod GPU id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// VRAM, GB.
    pub memory: u32,
    /// Secure-cloud price per GPU-hour (0 when not offered).
    pub secure: f64,
    /// Community-cloud price per GPU-hour (0 when not offered).
    pub community: f64,
    /// Stock level.
    pub availability: &'static str,
    /// Data centers.
    pub data_centers: &'static [&'static str],
    /// CUDA versions its hosts' drivers offer (`major.minor`), oldest first.
    pub cuda: &'static [&'static str],
}

/// The RunPod catalog.
pub fn runpod() -> Vec<RpGpu> {
    vec![
        RpGpu {
            id: "NVIDIA H100 80GB HBM3",
            name: "H100 SXM",
            memory: 80,
            secure: 2.99,
            community: 2.69,
            availability: "HIGH",
            data_centers: &["US-TX-3", "EU-RO-1"],
            cuda: &["12.4", "12.6", "12.8"],
        },
        RpGpu {
            id: "NVIDIA H100 PCIe",
            name: "H100 PCIe",
            memory: 80,
            secure: 2.39,
            community: 1.99,
            availability: "MEDIUM",
            data_centers: &["US-KS-2"],
            cuda: &["12.2", "12.4"],
        },
        RpGpu {
            id: "NVIDIA A100 80GB PCIe",
            name: "A100 PCIe",
            memory: 80,
            secure: 1.64,
            community: 1.19,
            availability: "HIGH",
            data_centers: &["US-KS-2", "CA-MTL-1"],
            cuda: &["11.8", "12.2"],
        },
        RpGpu {
            id: "NVIDIA GeForce RTX 4090",
            name: "RTX 4090",
            memory: 24,
            secure: 0.69,
            community: 0.34,
            availability: "HIGH",
            data_centers: &["EU-RO-1"],
            cuda: &["12.4", "12.8"],
        },
        RpGpu {
            id: "NVIDIA  RTX A4500",
            name: "RTX A4500",
            memory: 20,
            secure: 0.0,
            community: 0.25,
            availability: "LOW",
            data_centers: &["CA-MTL-1"],
            cuda: &["12.2", "12.4"],
        },
        RpGpu {
            id: "NVIDIA B200",
            name: "B200",
            memory: 180,
            secure: 5.99,
            community: 0.0,
            availability: "NONE",
            data_centers: &[],
            cuda: &["12.8"],
        },
    ]
}

/// The host resources per GPU the emulator's RunPod machines have for GPU type `id`:
/// `(vCPUs, system RAM in GB)`. Creates filter on them (`gpu.minVcpuCountPerGpu`,
/// `gpu.minRamPerGpu`) and pods report them, times the GPU count (`gpu.vcpuCount`, `gpu.memory`).
pub fn runpod_host_per_gpu(id: &str) -> (u32, u32) {
    match id {
        "NVIDIA H100 80GB HBM3" | "NVIDIA B200" => (16, 188),
        "NVIDIA H100 PCIe" | "NVIDIA A100 80GB PCIe" => (12, 117),
        _ => (8, 62),
    }
}

impl RpGpu {
    /// The GPU type as RunPod's `GpuType` JSON, with availability for `count` GPUs.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "pool": null, "manufacturer": "NVIDIA", "memory": self.memory,
            "secure": self.secure > 0.0, "community": self.community > 0.0,
            "price": {"secure": self.secure, "community": self.community},
            "maxCount": {"secure": if self.secure > 0.0 { 8 } else { 0 }, "community": if self.community > 0.0 { 8 } else { 0 }},
            "availability": self.availability,
            "dataCenters": self.data_centers.iter().map(|dc| json!({"id": dc, "name": dc, "availability": self.availability})).collect::<Vec<_>>(),
            "cudaVersions": self.cuda.iter().map(|v| json!({"version": v, "available": self.availability != "NONE"})).collect::<Vec<_>>()
        })
    }
}

/// `major.minor` as numbers, compared numerically ("12.11 is above 12.2", the document's
/// `minCudaVersion`); a bare major is `major.0`.
pub fn cuda_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl RpGpu {
    /// The CUDA versions of its hosts that `allowed` (exact, empty: any) and `floor` admit.
    pub fn cuda_matching(&self, allowed: &[String], floor: Option<&str>) -> Vec<&'static str> {
        let floor = floor.and_then(cuda_version);
        self.cuda
            .iter()
            .copied()
            .filter(|v| allowed.is_empty() || allowed.iter().any(|a| a == v))
            .filter(|v| floor.is_none_or(|f| cuda_version(v).is_some_and(|v| v >= f)))
            .collect()
    }
}

/// One RunPod CPU flavor (`CpuType`).
#[derive(Debug, Clone)]
pub struct RpCpu {
    /// Flavor id (`cpu.id` of a create).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// CPU generation group.
    pub group: &'static str,
    /// Smallest vCPU count.
    pub min_vcpus: u32,
    /// Largest vCPU count.
    pub max_vcpus: u32,
    /// GB of RAM per vCPU.
    pub ram_gb_per_vcpu: f64,
    /// Secure Cloud USD per vCPU-hour.
    pub secure_per_vcpu: f64,
    /// Data centers.
    pub data_centers: &'static [&'static str],
}

/// RunPod's CPU flavors (ids as RunPod names them: `cpu3c` compute-optimized, `cpu3g` general
/// purpose, `cpu5c` fifth generation).
pub fn runpod_cpus() -> Vec<RpCpu> {
    vec![
        RpCpu {
            id: "cpu3c",
            name: "Compute-Optimized",
            group: "Gen 3",
            min_vcpus: 2,
            max_vcpus: 32,
            ram_gb_per_vcpu: 2.0,
            secure_per_vcpu: 0.03,
            data_centers: &["US-KS-2", "EU-RO-1"],
        },
        RpCpu {
            id: "cpu3g",
            name: "General Purpose",
            group: "Gen 3",
            min_vcpus: 2,
            max_vcpus: 32,
            ram_gb_per_vcpu: 4.0,
            secure_per_vcpu: 0.035,
            data_centers: &["US-KS-2", "US-TX-3"],
        },
        RpCpu {
            id: "cpu5c",
            name: "Compute-Optimized",
            group: "Gen 5",
            min_vcpus: 2,
            max_vcpus: 64,
            ram_gb_per_vcpu: 2.0,
            secure_per_vcpu: 0.04,
            data_centers: &["US-TX-3"],
        },
    ]
}

/// RunPod data centers: `(id, name, region, country code)`, every data center the GPU and CPU
/// catalogs place pods in.
pub const RUNPOD_DATA_CENTERS: [(&str, &str, &str, &str); 4] = [
    ("CA-MTL-1", "CA Montreal 1", "NORTH_AMERICA", "CA"),
    ("EU-RO-1", "EU Romania 1", "EUROPE", "RO"),
    ("US-KS-2", "US Kansas 2", "NORTH_AMERICA", "US"),
    ("US-TX-3", "US Texas 3", "NORTH_AMERICA", "US"),
];

/// RunPod's public templates (`GET /v2/catalog/templates`): `(id, name, image, source)`.
pub const RUNPOD_PUBLIC_TEMPLATES: [(&str, &str, &str, &str); 3] = [
    (
        "runpod-torch-v240",
        "Runpod Pytorch 2.4.0",
        "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
        "official",
    ),
    ("runpod-ubuntu", "Runpod Ubuntu", "runpod/base:0.6.2-ubuntu22.04", "official"),
    ("community-comfyui", "ComfyUI", "ghcr.io/example/comfyui:latest", "community"),
];
