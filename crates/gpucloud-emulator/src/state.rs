//! What the emulator remembers: pods, volumes, and counters.

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Which API a resource belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// PrimeIntellect.
    PrimeIntellect,
    /// RunPod v2.
    RunPod,
}

/// The PrimeIntellect teams the emulator's user belongs to: `(teamId, name, slug, role)`.
pub const EMULATED_TEAMS: [(&str, &str, &str, &str); 2] = [
    ("clteamemulator000000000001", "Emulator Team", "emulator-team", "ADMIN"),
    ("clteamemulator000000000002", "Research Lab", "research-lab", "MEMBER"),
];

/// An emulated pod.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedPod {
    /// Which API created it.
    pub api: Api,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// GPU type (PI name or RunPod id).
    pub gpu_type: String,
    /// Socket (PI).
    pub socket: String,
    /// GPUs.
    pub gpu_count: u32,
    /// USD per hour.
    pub price: f64,
    /// Underlying provider (PI) or cloud tier (RunPod).
    pub provider_type: String,
    /// Data center.
    pub data_center: String,
    /// Image.
    pub image: String,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Stopped (RunPod).
    pub stopped: bool,
    /// Terminated.
    pub terminated: bool,
    /// RFC 3339 creation time.
    pub created_at: String,
    #[serde(skip)]
    pub(crate) created: Instant,
    /// SSH port on loopback: a listener that sends an SSH banner while the pod runs (pods added
    /// by [`crate::Emulator::seed_pods`] have a port nobody listens on).
    pub ssh_port: u16,
    /// The PrimeIntellect team that owns it.
    pub team_id: Option<String>,
    /// Its PrimeIntellect installation fails once it is running ([`crate::FaultKind::InstallationFailure`]).
    pub installation_fails: bool,
    /// How long after it runs its SSH endpoint starts answering ([`crate::FaultKind::SshBannerDelay`]).
    #[serde(skip)]
    pub banner_delay: Duration,
    /// The public keys the pod was created to trust (PrimeIntellect: its `sshKeyId`; RunPod: the
    /// account's keys at creation).
    pub authorized_keys: Vec<String>,
    /// RunPod container CMD (exec form), as created.
    pub cmd: Option<Vec<String>>,
    /// RunPod container ENTRYPOINT (exec form), as created.
    pub entrypoint: Option<Vec<String>>,
    /// RunPod exposed ports (`22/tcp`, `8888/http`), as created.
    pub ports: Vec<String>,
    /// RunPod: the CUDA version of the host it was placed on.
    pub cuda_version: String,
    /// PrimeIntellect: the `maxPrice` it was created with.
    pub max_price: Option<f64>,
    /// PrimeIntellect: the `prepaidForHr` it was created with.
    pub prepaid_hours: Option<f64>,
    /// When its current running stretch began; `None` while stopped or terminated (see
    /// [`crate::billing`]).
    #[serde(skip)]
    pub(crate) running_since: Option<chrono::DateTime<chrono::Utc>>,
    /// When its current stopped stretch began, for a stopped RunPod pod whose volume disk bills
    /// while stopped (see [`crate::billing`]); `None` otherwise.
    #[serde(skip)]
    pub(crate) stopped_since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339 termination time.
    pub terminated_at: Option<String>,
    /// RunPod `mounts`, as created (`{}` without any).
    pub mounts: serde_json::Value,
    /// GPU utilization, percent, on every GPU ([`crate::Emulator::set_gpu_utilization`]).
    pub gpu_utilization: u8,
    /// Creation order: RunPod lists are newest first and their cursors name a position in it.
    #[serde(skip)]
    pub(crate) seq: u64,
}

/// What a create decides about a new pod; [`State::add_pod`] assigns the rest.
#[derive(Debug)]
pub(crate) struct NewPod {
    pub api: Api,
    pub name: String,
    pub gpu_type: String,
    pub socket: String,
    pub gpu_count: u32,
    pub price: f64,
    pub provider_type: String,
    pub data_center: String,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub team_id: Option<String>,
    pub installation_fails: bool,
    /// The port of its SSH listener; `None`: a port nobody listens on.
    pub ssh_port: Option<u16>,
    pub banner_delay: Duration,
    pub authorized_keys: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub ports: Vec<String>,
    pub cuda_version: String,
    pub max_price: Option<f64>,
    pub prepaid_hours: Option<f64>,
}

/// A pod's lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being allocated.
    Provisioning,
    /// Up.
    Running,
    /// Stopped.
    Stopped,
    /// Gone.
    Terminated,
}

impl EmulatedPod {
    /// The phase at this moment, given the configured readiness delay.
    pub fn phase(&self, ready_delay: Duration) -> Phase {
        if self.terminated {
            Phase::Terminated
        } else if self.stopped {
            Phase::Stopped
        } else if self.created.elapsed() < ready_delay {
            Phase::Provisioning
        } else {
            Phase::Running
        }
    }
}

/// An SSH public key registered with one of the emulated APIs.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedSshKey {
    /// Which API.
    pub api: Api,
    /// Its id (PrimeIntellect; empty for RunPod, which keeps a plain list).
    pub id: String,
    /// Its name (PrimeIntellect).
    pub name: String,
    /// The `authorized_keys` line.
    pub public_key: String,
}

/// An emulated disk / network volume.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedVolume {
    /// Which API.
    pub api: Api,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// GB.
    pub size: u64,
    /// Data center.
    pub data_center: String,
    /// Underlying provider (PI).
    pub provider_type: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The PrimeIntellect team that owns it.
    pub team_id: Option<String>,
}

/// A RunPod account secret (`/v2/account/secrets`); the value is write-only.
#[derive(Debug, Clone)]
pub(crate) struct EmulatedSecret {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub value: String,
    pub created_at: String,
    pub value_last_updated_at: String,
}

/// All emulator state.
#[derive(Debug)]
pub(crate) struct State {
    pub pods: Vec<EmulatedPod>,
    pub secrets: Vec<EmulatedSecret>,
    pub volumes: Vec<EmulatedVolume>,
    pub ssh_keys: Vec<EmulatedSshKey>,
    pub stocked_out: BTreeSet<String>,
    pub requests: u64,
    pub requests_by_route: std::collections::BTreeMap<String, u64>,
    pub creates: u64,
    /// Where this emulator's pods keep their directories (see `ssh`).
    pub home_root: std::path::PathBuf,
    /// Closed billing stretches ([`crate::billing`]).
    pub charges: Vec<crate::billing::Charge>,
    /// Deleted volumes, as they were: PrimeIntellect's history lists ended disks.
    pub deleted_volumes: Vec<EmulatedVolume>,
    rng: StdRng,
    next_port: u16,
}

impl State {
    pub fn new(seed: u64) -> Self {
        Self {
            pods: Vec::new(),
            secrets: Vec::new(),
            volumes: Vec::new(),
            ssh_keys: Vec::new(),
            stocked_out: BTreeSet::new(),
            requests: 0,
            requests_by_route: Default::default(),
            creates: 0,
            charges: Vec::new(),
            home_root: crate::ssh::new_home_root(),
            deleted_volumes: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            next_port: 22000,
        }
    }

    /// A fresh id in the style of `api`.
    pub fn new_id(&mut self, api: Api) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        const HEX: &[u8] = b"0123456789abcdef";
        let (alphabet, len) = match api {
            Api::PrimeIntellect => (HEX, 32),
            Api::RunPod => (ALPHABET, 14),
        };
        (0..len).map(|_| alphabet[self.rng.random_range(0..alphabet.len())] as char).collect()
    }

    /// Stores a new, provisioning pod with a fresh id and SSH port; returns a copy of it.
    pub fn add_pod(&mut self, new: NewPod) -> EmulatedPod {
        let id = self.new_id(new.api);
        let ssh_port = new.ssh_port.unwrap_or_else(|| self.next_ssh_port());
        let pod = EmulatedPod {
            api: new.api,
            id,
            name: new.name,
            gpu_type: new.gpu_type,
            socket: new.socket,
            gpu_count: new.gpu_count,
            price: new.price,
            provider_type: new.provider_type,
            data_center: new.data_center,
            image: new.image,
            env: new.env,
            stopped: false,
            terminated: false,
            created_at: now_rfc3339(),
            created: Instant::now(),
            ssh_port,
            team_id: new.team_id,
            installation_fails: new.installation_fails,
            banner_delay: new.banner_delay,
            authorized_keys: new.authorized_keys,
            cmd: new.cmd,
            entrypoint: new.entrypoint,
            ports: new.ports,
            cuda_version: new.cuda_version,
            max_price: new.max_price,
            prepaid_hours: new.prepaid_hours,
            running_since: Some(chrono::Utc::now()),
            stopped_since: None,
            terminated_at: None,
            gpu_utilization: 0,
            mounts: serde_json::json!({}),
            seq: self.pods.len() as u64,
        };
        self.pods.push(pod.clone());
        pod
    }

    fn next_ssh_port(&mut self) -> u16 {
        self.next_port = self.next_port.wrapping_add(1).max(22001);
        self.next_port
    }

    /// Terminates a live pod, its bill settled; `false` when there is no such live pod.
    pub fn terminate_pod(&mut self, api: Api, id: &str) -> bool {
        if self.pod_mut(api, id).is_none_or(|p| p.terminated) {
            return false;
        }
        self.settle_pod(api, id);
        if let Some(pod) = self.pod_mut(api, id) {
            pod.terminated = true;
            pod.terminated_at = Some(now_rfc3339());
        }
        // Its directory goes with it (see `ssh`): what ran there is gone, as on a real pod.
        let _ = std::fs::remove_dir_all(crate::ssh::pod_home(&self.home_root, api, id));
        true
    }

    pub fn pod_mut(&mut self, api: Api, id: &str) -> Option<&mut EmulatedPod> {
        self.pods.iter_mut().find(|p| p.api == api && p.id == id)
    }

    /// Removes a volume, its bill settled; `false` when there was none.
    pub fn remove_volume(&mut self, api: Api, id: &str) -> bool {
        self.settle_volume(api, id);
        if let Some(volume) = self.volumes.iter().find(|v| v.api == api && v.id == id) {
            self.deleted_volumes.push(volume.clone());
        }
        let before = self.volumes.len();
        self.volumes.retain(|v| !(v.api == api && v.id == id));
        self.volumes.len() != before
    }

    /// The public keys registered with `api`.
    pub fn keys_of(&self, api: Api) -> Vec<String> {
        self.ssh_keys.iter().filter(|k| k.api == api).map(|k| k.public_key.clone()).collect()
    }

    /// Pods a list shows: live ones, without those hidden by list lag.
    pub fn listed_pods(&self, api: Api, hide_newer_than: Option<Duration>) -> Vec<&EmulatedPod> {
        self.pods
            .iter()
            .filter(|p| p.api == api && !p.terminated)
            .filter(|p| hide_newer_than.is_none_or(|lag| p.created.elapsed() >= lag))
            .collect()
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
