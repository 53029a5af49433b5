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
    };
    vec![
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
    ]
}

fn spec(min: u32, default: u32, max: u32, step: u32, price: f64, included: bool) -> Value {
    json!({"minCount": min, "defaultCount": default, "maxCount": max, "pricePerUnit": price, "step": step,
           "defaultIncludedInPrice": included, "additionalInfo": null})
}

impl PiOffer {
    /// The offer as PrimeIntellect's `GpuAvailability` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "cloudId": self.cloud_id, "gpuType": self.gpu_type, "socket": self.socket, "provider": self.provider,
            "region": self.region, "dataCenter": self.data_center, "country": self.country,
            "gpuCount": self.gpu_count, "gpuMemory": self.gpu_memory,
            "disk": spec(50, 100, 2000, 10, 0.00014, true),
            "vcpu": spec(4 * self.gpu_count, 8 * self.gpu_count, 32 * self.gpu_count, 4, 0.004, true),
            "memory": spec(16 * self.gpu_count, 64 * self.gpu_count, 256 * self.gpu_count, 16, 0.001, true),
            "internetSpeed": 1000, "interconnect": null, "interconnectType": null, "provisioningTime": 4,
            "stockStatus": self.stock, "security": "secure_cloud",
            "prices": {"onDemand": self.price, "communityPrice": null, "isVariable": self.spot, "currency": "USD"},
            "images": ["ubuntu_22_cuda_12", "cuda_12_4_pytorch_2_5", "cuda_12_6_pytorch_2_7"],
            "isSpot": self.spot, "prepaidTime": null
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
