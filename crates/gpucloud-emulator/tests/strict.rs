//! The emulator refuses what the providers' documents refuse, in each provider's own error
//! shape, and accepts the documents' example requests.

use gpucloud_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

async fn send(emulator: &Emulator, method: &str, path: &str, body: Option<Value>) -> (u16, String, Value) {
    let client =
        reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let url = format!("{}{path}", emulator.base_url());
    let mut request = client.request(method.parse().unwrap(), url).bearer_auth(emulator.api_key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.json().await.unwrap_or_default())
}

fn runpod_create() -> Value {
    json!({"name": "strict", "image": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
           "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 1}, "cloud": "SECURE"})
}

#[tokio::test]
async fn runpod_bodies_are_checked_against_the_document() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    // The document's own 422 example: "$: additional properties 'bogus' not allowed".
    let mut bogus = runpod_create();
    bogus["bogus"] = json!(true);
    let (status, content_type, body) = send(&emulator, "POST", "/v2/pods", Some(bogus)).await;
    assert_eq!((status, content_type.as_str()), (422, "application/problem+json"), "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e.as_str().unwrap().contains("bogus")), "{body}");
    // `image` is required unless `templateId` is set (if/then).
    let mut imageless = runpod_create();
    imageless.as_object_mut().unwrap().remove("image");
    assert_eq!(send(&emulator, "POST", "/v2/pods", Some(imageless)).await.0, 422);
    // Enums in bodies: no BOGUS cloud treated as SECURE.
    let mut cloud = runpod_create();
    cloud["cloud"] = json!("BOGUS");
    let (status, _, body) = send(&emulator, "POST", "/v2/pods", Some(cloud)).await;
    assert_eq!(status, 422);
    assert!(body["errors"][0].as_str().unwrap().starts_with("$.cloud"), "{body}");
    // Documented ranges: network volumes are 10-4096 GB.
    let volume = json!({"name": "v", "size": 5, "dataCenter": "US-KS-2"});
    assert_eq!(send(&emulator, "POST", "/v2/network-volumes", Some(volume)).await.0, 422);
    assert!(emulator.live_pods().is_empty() && emulator.volumes().is_empty(), "nothing refused was created");
    // The well-formed request goes through.
    let (status, _, body) = send(&emulator, "POST", "/v2/pods", Some(runpod_create())).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn primeintellect_queries_are_checked_and_refused_the_fastapi_way() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    for query in ["regions=US", "gpu_type=H100_94GB", "page_size=101", "gpu_count=one"] {
        let (status, _, body) = send(&emulator, "GET", &format!("/api/v1/availability/gpus?{query}"), None).await;
        assert_eq!(status, 422, "{query}: {body}");
        let detail = body["detail"].as_array().unwrap_or_else(|| panic!("{query}: FastAPI's shape: {body}"));
        assert_eq!(detail[0]["loc"][0], "query", "{body}");
    }
    let (status, _, _) =
        send(&emulator, "GET", "/api/v1/availability/gpus?regions=united_states&regions=canada&page_size=100", None)
            .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_routes_answer_in_each_providers_error_shape() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let (status, content_type, body) = send(&emulator, "GET", "/v2/nothing-here", None).await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"), "{body}");
    assert_eq!(body["status"], 404);
    let (status, _, body) = send(&emulator, "GET", "/api/v1/nothing-here", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "Not Found");
}

#[tokio::test]
async fn a_disk_create_answers_200_or_201_as_the_document_and_the_guide_say() {
    for (seed, expected) in [(1, 201), (2, 200)] {
        let emulator = Emulator::start(EmulatorConfig { seed, ..EmulatorConfig::default() }).await.unwrap();
        let body = json!({"disk": {"size": 100, "name": "data"}, "provider": {"type": "runpod"}});
        let (status, _, disk) = send(&emulator, "POST", "/api/v1/disks/", Some(body)).await;
        assert_eq!(status, expected, "{disk}");
    }
}

/// What a connection to `port` reads within a second (empty: closed or silent).
async fn banner_at(port: u64) -> String {
    use tokio::io::AsyncReadExt as _;
    let Ok(mut socket) = tokio::net::TcpStream::connect(("127.0.0.1", port as u16)).await else { return String::new() };
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(1), socket.read(&mut buffer)).await;
    String::from_utf8_lossy(&buffer[..read.ok().and_then(Result::ok).unwrap_or(0)]).into_owned()
}

#[tokio::test]
async fn a_runpod_pod_has_ssh_only_when_created_with_start_ssh_and_registered_keys() {
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: std::time::Duration::ZERO, ..EmulatorConfig::default() })
            .await
            .unwrap();
    let create = |start_ssh: bool, ports: Value| {
        let mut body = runpod_create();
        body["startSsh"] = json!(start_ssh);
        body["ports"] = ports;
        body
    };
    // "with none registered the flag does nothing and the pod has no SSH access" (startSsh).
    let (status, _, keyless) = send(&emulator, "POST", "/v2/pods", Some(create(true, json!(["22/tcp"])))).await;
    assert_eq!(status, 201, "{keyless}");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ me@example.com";
    assert_eq!(send(&emulator, "PUT", "/v2/account/ssh-keys", Some(json!({"keys": [key]}))).await.0, 200);
    let (_, _, without_flag) = send(&emulator, "POST", "/v2/pods", Some(create(false, json!(["22/tcp"])))).await;
    let (_, _, with_ssh) = send(&emulator, "POST", "/v2/pods", Some(create(true, json!(["22/tcp"])))).await;
    let (_, _, no_port) = send(&emulator, "POST", "/v2/pods", Some(create(true, json!(["8888/http"])))).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let read = |pod: &Value| {
        let id = pod["id"].as_str().unwrap().to_string();
        let emulator = &emulator;
        async move { send(emulator, "GET", &format!("/v2/pods/{id}"), None).await.2 }
    };
    for (pod, answers) in [(&keyless, false), (&without_flag, false), (&with_ssh, true)] {
        let pod = read(pod).await;
        let port = pod["ssh"]["direct"]["port"].as_u64().expect("22/tcp exposed: a direct endpoint is reported");
        assert_eq!(banner_at(port).await.starts_with("SSH-2.0-"), answers, "{pod}");
    }
    // `direct` is "null unless `22/tcp` is in `ports`".
    let pod = read(&no_port).await;
    assert!(pod["ssh"]["direct"].is_null() && pod["ssh"]["proxy"].is_object(), "{pod}");
    assert_eq!(pod["ports"], json!(["8888/http"]));
}

#[tokio::test]
async fn the_gpu_catalog_answers_availability_only_as_the_document_says() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let catalog = |query: &str| {
        let path = format!("/v2/catalog/gpus{query}");
        let emulator = &emulator;
        async move { send(emulator, "GET", &path, None).await }
    };
    // "include=AVAILABILITY, which requires `product`", and the scoped filters are "valid only
    // with include=AVAILABILITY (400 otherwise)"; the two CUDA filters exclude each other.
    for refused in [
        "?include=AVAILABILITY",
        "?product=POD",
        "?count=2",
        "?cloud=SECURE",
        "?minCudaVersion=12.4",
        "?include=AVAILABILITY&product=POD&cudaVersions=12.4&minCudaVersion=12.4",
    ] {
        let (status, content_type, body) = catalog(refused).await;
        assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{refused}: {body}");
    }
    // Without include: no availability, data centers or CUDA versions.
    let (status, _, plain) = catalog("").await;
    assert_eq!(status, 200);
    for gpu in plain["gpus"].as_array().unwrap() {
        for absent in ["availability", "dataCenters", "cudaVersions"] {
            assert!(gpu.get(absent).is_none(), "{absent} in {gpu}");
        }
    }
    // With it, scoped by the CUDA floor: A100 hosts stop at 12.2, so 12.4 finds none.
    let (_, _, scoped) = catalog("?include=AVAILABILITY&product=POD&minCudaVersion=12.4").await;
    let a100 = scoped["gpus"].as_array().unwrap().iter().find(|g| g["id"] == "NVIDIA A100 80GB PCIe").unwrap();
    assert_eq!((&a100["availability"], &a100["cudaVersions"]), (&json!("NONE"), &json!([])), "{a100}");
    assert!(a100.get("dataCenters").is_none(), "omitted when unavailable everywhere: {a100}");
    let h100 = scoped["gpus"].as_array().unwrap().iter().find(|g| g["id"] == "NVIDIA H100 80GB HBM3").unwrap();
    let versions: Vec<&str> =
        h100["cudaVersions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["12.4", "12.6", "12.8"]);
}

#[tokio::test]
async fn a_runpod_create_lands_only_on_a_host_with_the_cuda_it_asks_for() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let a100 = |gpu: Value| {
        let mut body = runpod_create();
        body["gpu"] = gpu;
        body
    };
    let floor = a100(json!({"id": "NVIDIA A100 80GB PCIe", "count": 1, "minCudaVersion": "12.4"}));
    let (status, _, body) = send(&emulator, "POST", "/v2/pods", Some(floor)).await;
    assert_eq!(status, 400, "no A100 host has CUDA 12.4: the documented capacity refusal: {body}");
    let both = a100(
        json!({"id": "NVIDIA A100 80GB PCIe", "count": 1, "minCudaVersion": "11.8", "allowedCudaVersions": ["12.2"]}),
    );
    assert_eq!(send(&emulator, "POST", "/v2/pods", Some(both)).await.0, 400, "mutually exclusive");
    let exact = a100(json!({"id": "NVIDIA A100 80GB PCIe", "count": 1, "allowedCudaVersions": ["11.8"]}));
    let (status, _, pod) = send(&emulator, "POST", "/v2/pods", Some(exact)).await;
    assert_eq!((status, &pod["cudaVersion"]), (201, &json!("11.8")), "{pod}");
    // "compared numerically rather than as a decimal — so 12.11 is above 12.2".
    let numeric = a100(json!({"id": "NVIDIA H100 80GB HBM3", "count": 1, "minCudaVersion": "12.5"}));
    let (status, _, pod) = send(&emulator, "POST", "/v2/pods", Some(numeric)).await;
    assert_eq!((status, &pod["cudaVersion"]), (201, &json!("12.8")), "{pod}");
}

#[tokio::test]
async fn a_runpod_pod_lands_in_a_requested_data_center_that_can_take_it() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let with = |fields: Value| {
        let mut body = runpod_create();
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    // H100 SXM hosts are in US-TX-3 and EU-RO-1.
    let (status, _, pod) =
        send(&emulator, "POST", "/v2/pods", Some(with(json!({"dataCenterIds": ["CA-MTL-1", "EU-RO-1"]})))).await;
    assert_eq!((status, &pod["dataCenterId"]), (201, &json!("EU-RO-1")), "{pod}");
    let (status, _, body) =
        send(&emulator, "POST", "/v2/pods", Some(with(json!({"dataCenterIds": ["CA-MTL-1"]})))).await;
    assert_eq!(status, 400, "no host there is the documented refusal: {body}");
    // A network volume pins the pod to its data center, and only Secure Cloud mounts one.
    let (_, _, volume) =
        send(&emulator, "POST", "/v2/network-volumes", Some(json!({"name": "v", "size": 10, "dataCenter": "US-TX-3"})))
            .await;
    let volume_id = volume["id"].as_str().unwrap_or_else(|| panic!("{volume}")).to_string();
    let mount = json!({"network": [{"volumeId": volume_id, "path": "/workspace"}]});
    let elsewhere = with(json!({"dataCenterIds": ["EU-RO-1"], "mounts": mount}));
    assert_eq!(send(&emulator, "POST", "/v2/pods", Some(elsewhere)).await.0, 400, "volume in another data center");
    let community = with(json!({"cloud": "COMMUNITY", "mounts": mount}));
    assert_eq!(
        send(&emulator, "POST", "/v2/pods", Some(community)).await.0,
        400,
        "Community Cloud has no network volumes"
    );
    let (status, _, pod) = send(&emulator, "POST", "/v2/pods", Some(with(json!({"mounts": mount})))).await;
    assert_eq!((status, &pod["dataCenterId"]), (201, &json!("US-TX-3")), "{pod}");
}

#[tokio::test]
async fn a_primeintellect_create_is_checked_against_its_offer() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let create = |cloud_id: &str, gpu: &str, socket: &str, provider: &str, extra: Value| {
        let mut pod = json!({"name": "checked", "cloudId": cloud_id, "gpuType": gpu, "socket": socket, "gpuCount": 1});
        for (k, v) in extra.as_object().unwrap() {
            pod[k] = v.clone();
        }
        json!({"pod": pod, "provider": {"type": provider}})
    };
    let l40s = |extra| create("lambda-l40s-1", "L40S_48GB", "PCIe", "lambdalabs", extra);
    let prepaid = |extra| create("dc-h100-prepaid-24h", "H100_80GB", "SXM5", "datacrunch", extra);
    for (refused, why) in [
        (l40s(json!({"diskSize": 300})), "a fixed disk is not resized"),
        (l40s(json!({"security": "community_cloud"})), "the offer is secure cloud"),
        (l40s(json!({"dataCenterId": "CANADA-1"})), "the offer is in us-west-1"),
        (l40s(json!({"vcpus": 5})), "off the vCPU step"),
        (l40s(json!({"customTemplateId": "t-1"})), "a template needs image custom_template"),
        (l40s(json!({"image": "custom_template"})), "custom_template needs a template id"),
        (prepaid(json!({"prepaidForHr": 12.0})), "a prepaid offer is ordered for its own prepaid hours"),
        (
            create("dc-h100-spot-1", "H100_80GB", "SXM5", "datacrunch", json!({"maxPrice": 1.0})),
            "maxPrice under the price",
        ),
    ] {
        let (status, _, body) = send(&emulator, "POST", "/api/v1/pods/", Some(refused)).await;
        assert!(matches!(status, 400 | 422), "{why}: {status} {body}");
    }
    assert!(emulator.live_pods().is_empty(), "nothing refused was created");
    let (status, _, pod) = send(&emulator, "POST", "/api/v1/pods/", Some(prepaid(json!({"prepaidForHr": 24.0})))).await;
    assert_eq!(status, 200, "{pod}");
    // Without `prepaidForHr` (`prime` cannot send it) the order is for the offer's `prepaidTime`.
    let (status, _, pod) = send(&emulator, "POST", "/api/v1/pods/", Some(prepaid(json!({})))).await;
    assert_eq!(status, 200, "{pod}");
    let id = pod["id"].as_str().unwrap();
    assert_eq!(emulator.live_pods().iter().find(|p| p.id == id).and_then(|p| p.prepaid_hours), Some(24.0));
    let (status, _, pod) = send(&emulator, "POST", "/api/v1/pods/", Some(l40s(json!({"diskSize": 200})))).await;
    assert_eq!((status, pod["priceHr"].as_f64()), (200, Some(1.09)), "priced with its charged disk: {pod}");
}

#[tokio::test]
async fn billing_windows_resolve_as_the_document_says() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let status = |query: &'static str| {
        let emulator = &emulator;
        async move { send(emulator, "GET", &format!("/v2/billing/pods?{query}"), None).await.0 }
    };
    // "lastN ... Mutually exclusive with startTime/endTime; provide one or the other, not both."
    assert_eq!(status("lastN=3&startTime=2026-06-01T00:00:00Z").await, 400);
    // Outside the parameters' schemas (enum, minimum, date-time): the validation 422.
    assert_eq!(status("bucketSize=fortnight").await, 422);
    assert_eq!(status("lastN=0").await, 422);
    assert_eq!(status("startTime=yesterday").await, 422);
    assert_eq!(status("startTime=2026-06-02T00:00:00Z&endTime=2026-06-01T00:00:00Z").await, 400);
    assert_eq!(status("lastN=24&bucketSize=hour").await, 200);
    // startTime "Snapped down to the start of its bucketSize bucket"; endTime "Snapped up to
    // the end of the bucketSize bucket it lands in (unless already on a boundary)".
    let (_, _, body) =
        send(&emulator, "GET", "/v2/billing/pods?startTime=2026-06-01T13:45:00Z&endTime=2026-06-02T01:00:00Z", None)
            .await;
    assert_eq!(body["metadata"]["query"]["startTime"], "2026-06-01T00:00:00Z", "{body}");
    assert_eq!(body["metadata"]["query"]["endTime"], "2026-06-03T00:00:00Z", "{body}");
    assert_eq!(body["metadata"]["query"]["bucketSize"], "day");
    let (_, _, body) = send(&emulator, "GET", "/v2/billing/pods?lastN=2&bucketSize=week", None).await;
    let start = chrono::DateTime::parse_from_rfc3339(body["metadata"]["query"]["startTime"].as_str().unwrap()).unwrap();
    assert_eq!(chrono::Datelike::weekday(&start), chrono::Weekday::Mon, "weeks start on Monday: {body}");
    // PrimeIntellect's history pages take only the documented sort values.
    assert_eq!(send(&emulator, "GET", "/api/v1/pods/history?sort_by=name", None).await.0, 422);
    let (status, _, body) = send(&emulator, "GET", "/api/v1/pods/history?sort_order=asc&limit=5", None).await;
    assert_eq!((status, body["total_count"].as_i64()), (200, Some(0)), "{body}");
}

#[tokio::test]
async fn start_jupyter_injects_a_generated_password_unless_the_request_sets_one() {
    let run = async {
        let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let create = |jupyter: bool, env: Value| {
            let mut body = runpod_create();
            body["startJupyter"] = json!(jupyter);
            body["env"] = env;
            let emulator = &emulator;
            async move {
                let (status, _, pod) = send(emulator, "POST", "/v2/pods", Some(body)).await;
                assert_eq!(status, 201, "{pod}");
                pod
            }
        };
        let generated = create(true, json!({"A": "1"})).await;
        let password = generated["env"]["JUPYTER_PASSWORD"].as_str().expect("injected");
        assert!(password.len() >= 16, "{generated}");
        assert_eq!(generated["env"]["A"], "1");
        let other = create(true, json!({})).await;
        assert_ne!(other["env"]["JUPYTER_PASSWORD"], generated["env"]["JUPYTER_PASSWORD"], "generated per pod");
        let own = create(true, json!({"JUPYTER_PASSWORD": "mine"})).await;
        assert_eq!(own["env"]["JUPYTER_PASSWORD"], "mine", "the request's own is kept");
        let without = create(false, json!({})).await;
        assert!(without["env"].get("JUPYTER_PASSWORD").is_none(), "{without}");
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("start_jupyter_injects_a_generated_password_unless_the_request_sets_one: over 60 s");
}
