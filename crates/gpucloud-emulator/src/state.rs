//! What the emulator remembers: pods, volumes, keys, secrets, counters, and what each resource
//! billed (the [`Charge`]s behind both providers' billing reads, served by `billing`).
//!
//! The bottom of the emulator: it imports no other module of the crate, so every handler can use
//! it. The one thing it must do outside memory, removing a terminated pod's directory, goes
//! through a hook the server installs ([`PodHomes`]), not a call up into `ssh`.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where pods keep their directories: the root of one emulator's pod directories and the rule
/// that names a pod's directory under it (the `ssh` module's, installed by the server), so state
/// can remove a terminated pod's directory without importing the SSH host.
#[derive(Debug, Clone)]
pub(crate) struct PodHomes {
    /// The root directory.
    pub root: PathBuf,
    /// The directory of node `node` of pod `id` of `api` under `root` (node 0: the pod's own
    /// directory; a PrimeIntellect multi-node pod has one per node).
    pub of: fn(&Path, Api, &str, usize) -> PathBuf,
}

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
    /// Interrupted the way a provider reclaims spot capacity ([`crate::Emulator::interrupt`]):
    /// nobody asked for the status it now has.
    pub interrupted: bool,
    /// Gone without a trace: its provider answers 404 for it (an interruption that removed it).
    pub gone: bool,
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
    /// `billing`).
    #[serde(skip)]
    pub(crate) running_since: Option<DateTime<Utc>>,
    /// When its current stopped stretch began, for a stopped RunPod pod whose volume disk bills
    /// while stopped (see `billing`); `None` otherwise.
    #[serde(skip)]
    pub(crate) stopped_since: Option<DateTime<Utc>>,
    /// RFC 3339 termination time.
    pub terminated_at: Option<String>,
    /// RunPod `mounts`, as created (`{}` without any).
    pub mounts: serde_json::Value,
    /// GPU utilization, percent, on every GPU ([`crate::Emulator::set_gpu_utilization`]).
    pub gpu_utilization: u8,
    /// Creation order: RunPod lists are newest first and their cursors name a position in it.
    #[serde(skip)]
    pub(crate) seq: u64,
    /// Disk (PrimeIntellect) or container disk (RunPod), GB; 0 when not known.
    pub disk_size: u32,
    /// PrimeIntellect: vCPUs; 0 when not known.
    pub vcpus: u32,
    /// PrimeIntellect: memory, GB; 0 when not known.
    pub memory: u32,
    /// PrimeIntellect: created from a spot offer.
    pub spot: bool,
    /// PrimeIntellect: the currency of the offer's price (`USD`, `EUR`).
    pub currency: String,
    /// PrimeIntellect: the disks attached at creation (their ids).
    pub disks: Vec<String>,
    /// PrimeIntellect `customTemplateId`, RunPod `templateId`, as created.
    pub template_id: Option<String>,
    /// RunPod: locked ("Locked pods cannot be stopped or reset").
    pub locked: bool,
    /// RunPod: the container's `args`, as created or updated.
    pub args: String,
    /// RunPod: a CPU pod's CPU flavor (`cpu3c`); `None` for a GPU pod.
    pub cpu_flavor: Option<String>,
    /// RunPod: its membership in a cluster (`Pod.cluster`); `None` for a standalone pod.
    pub cluster: Option<ClusterMember>,
    /// PrimeIntellect: the `clusterId` of a pod created from a multi-node offer; `None` for a
    /// single-node pod.
    pub cluster_id: Option<String>,
    /// PrimeIntellect multi-node: every node's SSH port, node 0 first (node 0's is also
    /// [`EmulatedPod::ssh_port`]); empty for a single-node pod, whose one port is `ssh_port`.
    pub node_ports: Vec<u16>,
    /// It stays `PROVISIONING` until it is terminated: a cluster node never placed
    /// ([`crate::FaultKind::PartialPlacement`]).
    pub never_starts: bool,
    /// It is in error ([`crate::Emulator::fail_pod`]): RunPod `ERROR`, PrimeIntellect `ERROR`.
    pub failed: bool,
    /// RunPod: the pod-scoped `RUNPOD_API_KEY` injected into the pod, accepted for this pod's
    /// own routes only (`/v2/pods/{id}`...).
    #[serde(skip)]
    pub pod_key: String,
}

/// A RunPod pod's membership in a cluster (the document's `PodCluster`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterMember {
    /// The cluster's id.
    pub cluster_id: String,
    /// Its node rank (`NODE_RANK`); `None` until assigned (a node never placed has none).
    pub rank: Option<u32>,
    /// Its address on the cluster's private overlay network; `None` until assigned.
    pub ip: Option<String>,
}

/// An emulated RunPod cluster (`/v2/clusters`): its shape and its member pods.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedCluster {
    /// Its id.
    pub id: String,
    /// Its name (renamed by `PATCH /v2/clusters/{id}`).
    pub name: String,
    /// `APPLICATION`, `TRAINING`, `SLURM` or `RAY`.
    pub kind: String,
    /// The GPU type id of every member.
    pub gpu_type: String,
    /// GPUs on each member.
    pub gpu_count_per_pod: u32,
    /// Members asked for (`compute.podCount`).
    pub pod_count: u32,
    /// The template its members were created from.
    pub template_id: Option<String>,
    /// The one data center all its members are in.
    pub data_center: String,
    /// The member pods' ids, by rank.
    pub members: Vec<String>,
    /// The overlay network's CIDR block.
    pub cidr: String,
    /// The overlay network's VXLAN id.
    pub vxlan_id: u32,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// USD per hour per member.
    pub price_per_pod: f64,
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
    pub disk_size: u32,
    pub vcpus: u32,
    pub memory: u32,
    pub spot: bool,
    pub currency: String,
    pub disks: Vec<String>,
    pub template_id: Option<String>,
    pub args: String,
    pub cpu_flavor: Option<String>,
}

/// How [`crate::Emulator::interrupt`] ends a spot pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interruption {
    /// Its status becomes `TERMINATED` (the default).
    #[default]
    Terminated,
    /// Its status becomes `STOPPED`: it still exists, runs nothing and answers no SSH.
    Stopped,
    /// It is terminated and its record removed: reads answer 404, lists leave it out.
    Gone,
}

impl Interruption {
    /// Parses `terminated`, `stopped` or `gone`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "terminated" => Some(Self::Terminated),
            "stopped" => Some(Self::Stopped),
            "gone" => Some(Self::Gone),
            _ => None,
        }
    }
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
    /// In error ([`crate::Emulator::fail_pod`]).
    Failed,
}

impl EmulatedPod {
    /// How many nodes (SSH hosts) it has: 1, or a PrimeIntellect multi-node pod's node count.
    pub fn node_count(&self) -> usize {
        self.node_ports.len().max(1)
    }

    /// The SSH port of node `node` (0-based), `None` past its last node.
    pub fn node_port(&self, node: usize) -> Option<u16> {
        match (self.node_ports.is_empty(), node) {
            (true, 0) => Some(self.ssh_port),
            (true, _) => None,
            (false, _) => self.node_ports.get(node).copied(),
        }
    }

    /// The phase at this moment, given the configured readiness delay.
    pub fn phase(&self, ready_delay: Duration) -> Phase {
        if self.terminated {
            Phase::Terminated
        } else if self.failed {
            Phase::Failed
        } else if self.stopped {
            Phase::Stopped
        } else if self.never_starts || self.created.elapsed() < ready_delay {
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
    /// PrimeIntellect: the account's primary key (`isPrimary`, set with `PATCH /ssh_keys/{id}`).
    pub primary: bool,
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
    /// RFC 3339 creation time; for a RunPod volume, the start of its billing at its current size
    /// (a resize closes the stretch at the old size and opens one here).
    pub created_at: String,
    /// The PrimeIntellect team that owns it.
    pub team_id: Option<String>,
    /// RFC 3339 time of its last change (PrimeIntellect `updatedAt`).
    pub updated_at: String,
    /// RunPod volume `type`: `STANDARD` or `HIGH_PERFORMANCE`.
    pub volume_type: String,
}

/// A RunPod account secret (`/v2/account/secrets`); the value is write-only.
#[derive(Debug, Clone)]
pub(crate) struct EmulatedSecret {
    /// Which API: RunPod's account secrets and PrimeIntellect's `/secrets` are separate.
    pub api: Api,
    /// PrimeIntellect: the owning team.
    pub team_id: Option<String>,
    /// PrimeIntellect: `isFile`.
    pub is_file: bool,
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
    /// RunPod clusters that exist (a deleted one is removed; its members stay, terminated).
    pub clusters: Vec<EmulatedCluster>,
    pub secrets: Vec<EmulatedSecret>,
    /// RunPod resources kept as their JSON answers, by kind (`templates`, `registries`,
    /// `delegations`, `endpoints`): what the emulator stores of them is what it answers.
    pub records: BTreeMap<&'static str, Vec<serde_json::Value>>,
    /// PrimeIntellect: the user's slug (`PATCH /user/slug`).
    pub user_slug: String,
    pub volumes: Vec<EmulatedVolume>,
    pub ssh_keys: Vec<EmulatedSshKey>,
    pub stocked_out: BTreeSet<String>,
    pub requests: u64,
    pub requests_by_route: std::collections::BTreeMap<String, u64>,
    pub creates: u64,
    /// Where this emulator's pods keep their directories (see `ssh`).
    pub home_root: PathBuf,
    /// Names a pod's (node's) directory under `home_root`.
    pod_home: fn(&Path, Api, &str, usize) -> PathBuf,
    /// Closed billing stretches (served by `billing`).
    pub charges: Vec<Charge>,
    /// Deleted volumes, as they were: PrimeIntellect's history lists ended disks.
    pub deleted_volumes: Vec<EmulatedVolume>,
    /// The preemption fault: a PrimeIntellect spot pod is interrupted once it has run this long
    /// ([`crate::Emulator::set_spot_lifetime`]); `None`: only when asked.
    pub spot_lifetime: Option<Duration>,
    /// The member fault: a RunPod cluster's highest-ranked running member is put in error once it
    /// has run this long ([`crate::Emulator::set_member_lifetime`]); `None`: only when asked.
    pub member_lifetime: Option<Duration>,
    rng: StdRng,
    next_port: u16,
}

impl State {
    pub fn new(seed: u64, homes: PodHomes) -> Self {
        Self {
            pods: Vec::new(),
            clusters: Vec::new(),
            secrets: Vec::new(),
            records: BTreeMap::new(),
            user_slug: "emulator-user".into(),
            volumes: Vec::new(),
            ssh_keys: Vec::new(),
            stocked_out: BTreeSet::new(),
            requests: 0,
            requests_by_route: Default::default(),
            creates: 0,
            charges: Vec::new(),
            home_root: homes.root,
            pod_home: homes.of,
            deleted_volumes: Vec::new(),
            spot_lifetime: None,
            member_lifetime: None,
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
            interrupted: false,
            gone: false,
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
            disk_size: new.disk_size,
            vcpus: new.vcpus,
            memory: new.memory,
            spot: new.spot,
            currency: new.currency,
            disks: new.disks,
            template_id: new.template_id,
            locked: false,
            args: new.args,
            cpu_flavor: new.cpu_flavor,
            cluster: None,
            cluster_id: None,
            node_ports: Vec::new(),
            never_starts: false,
            failed: false,
            // Not from the seeded generator: a key others could predict would open the pod.
            pod_key: {
                let mut rng = rand::rng();
                format!("pod-{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
            },
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
        // Its directory goes with it (see `ssh`): what ran there is gone, as on a real pod, and
        // so is every process it started, detached ones included; on every node.
        for home in self.node_homes(api, id) {
            crate::procs::kill_marked_soon(home.clone());
            let _ = std::fs::remove_dir_all(home);
        }
        true
    }

    /// Interrupts PrimeIntellect spot pod `id` as a provider reclaiming its capacity would,
    /// without any request: its status changes (`TERMINATED`, or `STOPPED`), its SSH
    /// connections are cut and its processes killed, its bill closes; with
    /// [`Interruption::Gone`] its record goes too (404). `Err` says why it cannot be.
    pub fn interrupt_pod(&mut self, id: &str, how: Interruption) -> Result<(), &'static str> {
        let api = Api::PrimeIntellect;
        let Some(pod) = self.pod_mut(api, id).filter(|p| !p.terminated) else { return Err("no such live pod") };
        if !pod.spot {
            return Err("not a spot pod: only spot capacity is interrupted");
        }
        pod.interrupted = true;
        match how {
            Interruption::Stopped => {
                self.stop_billing(api, id);
                if let Some(pod) = self.pod_mut(api, id) {
                    pod.stopped = true;
                }
                self.kill_pod_processes(api, id);
            }
            Interruption::Terminated | Interruption::Gone => {
                self.terminate_pod(api, id);
                if let Some(pod) = self.pod_mut(api, id) {
                    pod.gone = how == Interruption::Gone;
                }
            }
        }
        Ok(())
    }

    /// The preemption fault: interrupts ([`Interruption::Terminated`]) every PrimeIntellect spot
    /// pod that has run for [`State::spot_lifetime`] (counted from when it became `ACTIVE`, after
    /// `ready_delay`). Returns how many.
    pub fn preempt_expired_spot(&mut self, ready_delay: Duration) -> usize {
        let Some(lifetime) = self.spot_lifetime else { return 0 };
        let due: Vec<String> = self
            .pods
            .iter()
            .filter(|p| p.api == Api::PrimeIntellect && p.spot && !p.terminated && !p.stopped)
            .filter(|p| p.created.elapsed() >= ready_delay + lifetime)
            .map(|p| p.id.clone())
            .collect();
        due.iter().filter(|id| self.interrupt_pod(id, Interruption::Terminated).is_ok()).count()
    }

    /// Puts live pod `id` of `api` in error, as a machine that died: its bill closes, its status
    /// leaves `RUNNING` (`ERROR`), its SSH stops answering (open connections cut) and its
    /// processes, detached ones included, are killed. `false` when there is no such live pod.
    pub fn fail_pod(&mut self, api: Api, id: &str) -> bool {
        if self.pod_mut(api, id).is_none_or(|p| p.terminated) {
            return false;
        }
        self.settle_pod(api, id);
        if let Some(pod) = self.pod_mut(api, id) {
            pod.failed = true;
        }
        self.kill_pod_processes(api, id);
        true
    }

    /// The member fault: in every RunPod cluster none of whose members has failed yet, the
    /// highest-ranked member is put in error ([`State::fail_pod`]) once it has been `RUNNING`
    /// for [`State::member_lifetime`] (counted from when it became `RUNNING`, after
    /// `ready_delay`). One member per cluster; the others stay up. Returns how many.
    pub fn fail_expired_members(&mut self, ready_delay: Duration) -> usize {
        let Some(lifetime) = self.member_lifetime else { return 0 };
        let mut due = Vec::new();
        for cluster in &self.clusters {
            let members: Vec<&EmulatedPod> = cluster
                .members
                .iter()
                .filter_map(|id| self.pods.iter().find(|p| p.api == Api::RunPod && &p.id == id))
                .collect();
            if members.iter().any(|p| p.failed) {
                continue;
            }
            let highest = members
                .iter()
                .filter(|p| p.phase(ready_delay) == Phase::Running)
                .filter_map(|p| Some((p.cluster.as_ref()?.rank?, *p)))
                .max_by_key(|(rank, _)| *rank);
            if let Some((_, pod)) = highest
                && pod.created.elapsed() >= ready_delay + lifetime
            {
                due.push(pod.id.clone());
            }
        }
        due.iter().filter(|id| self.fail_pod(Api::RunPod, id)).count()
    }

    /// Kills every process pod `id` started, on every node, detached ones included
    /// ([`crate::procs`]).
    pub fn kill_pod_processes(&self, api: Api, id: &str) {
        for home in self.node_homes(api, id) {
            crate::procs::kill_marked_soon(home);
        }
    }

    /// The directories of every node of pod `id` (one for a single-node pod).
    fn node_homes(&self, api: Api, id: &str) -> Vec<PathBuf> {
        let nodes = self.pods.iter().find(|p| p.api == api && p.id == id).map_or(1, EmulatedPod::node_count);
        (0..nodes).map(|node| (self.pod_home)(&self.home_root, api, id, node)).collect()
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

// What the emulator bills: the stretches behind both providers' billing reads (see `billing`,
// whose module documentation cites the document for each rule).

/// The emulator's network volume rate: RunPod's published $0.07 per GB per month (its pricing
/// page; the API document states no rate), a month taken as 730 hours.
pub const RUNPOD_VOLUME_USD_PER_GB_MONTH: f64 = 0.07;
const HOURS_PER_MONTH: f64 = 730.0;

/// What a stopped RunPod pod's volume disk bills: "$0.20/GB/month (stopped)" (RunPod's storage
/// page, docs.runpod.io/pods/storage/types).
pub const RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH: f64 = 0.20;

/// What an emulated PrimeIntellect disk bills per GB-hour: the `priceHr` its record states
/// (`disk_json` in the PrimeIntellect routes), "Disks are billed continuously from creation until
/// termination".
pub const PRIMEINTELLECT_DISK_USD_PER_GB_HOUR: f64 = 0.0001111;

/// What a charge bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// A pod's running time.
    Pod,
    /// A stopped RunPod pod's volume disk.
    PodDisk,
    /// A network volume's (RunPod) or disk's (PrimeIntellect) storage.
    Volume,
    /// A RunPod cluster member's running time, billed to its cluster (the charge's id is the
    /// cluster's): `/v2/billing/clusters`' `gpuAmount`, not a pod's.
    Cluster,
}

/// A stretch of time a resource billed at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    /// Which API.
    pub api: Api,
    /// What it bills.
    pub kind: ChargeKind,
    /// The pod or volume id.
    pub id: String,
    /// Start, inclusive.
    pub start: DateTime<Utc>,
    /// End, exclusive.
    pub end: DateTime<Utc>,
    /// USD per hour.
    pub rate: f64,
}

impl Charge {
    /// USD billed over the whole stretch.
    pub fn amount(&self) -> f64 {
        self.amount_within(self.start, self.end)
    }

    /// USD billed within `[from, to)`.
    pub fn amount_within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let (start, end) = (self.start.max(from), self.end.min(to));
        if end <= start {
            return 0.0;
        }
        self.rate * (end - start).num_microseconds().unwrap_or(i64::MAX) as f64 / 3.6e9
    }
}

/// The GB of a RunPod pod's persistent volume (`mounts.persistent.size`), 0 without one.
fn persistent_gb(pod: &EmulatedPod) -> f64 {
    pod.mounts["persistent"]["size"].as_f64().unwrap_or(0.0)
}

/// A stopped pod's disk rate, USD per hour.
fn stopped_rate(pod: &EmulatedPod) -> f64 {
    persistent_gb(pod) * RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH / HOURS_PER_MONTH
}

impl State {
    /// Closes the running stretch of pod `id`, and its stopped-disk stretch, if open: call
    /// before it stops, starts or ends.
    pub(crate) fn settle_pod(&mut self, api: Api, id: &str) {
        let now = Utc::now();
        let Some(pod) = self.pod_mut(api, id) else { return };
        let mut closed = Vec::new();
        if let Some(start) = pod.running_since.take() {
            let (kind, billed) = running_charge(pod);
            closed.push(Charge { api, kind, id: billed, start, end: now, rate: pod.price });
        }
        if let Some(start) = pod.stopped_since.take() {
            let rate = stopped_rate(pod);
            closed.push(Charge { api, kind: ChargeKind::PodDisk, id: id.to_string(), start, end: now, rate });
        }
        self.charges.extend(closed);
    }

    /// A pod stops: its running stretch closes; its volume disk, if it has one, bills from now.
    pub(crate) fn stop_billing(&mut self, api: Api, id: &str) {
        self.settle_pod(api, id);
        if let Some(pod) = self.pod_mut(api, id)
            && persistent_gb(pod) > 0.0
        {
            pod.stopped_since = Some(Utc::now());
        }
    }

    /// A pod starts (or restarts): a stopped-disk stretch closes; running time bills from now
    /// unless it already does (a restart keeps billing through).
    pub(crate) fn start_billing(&mut self, api: Api, id: &str) {
        let running = self.pod_mut(api, id).is_some_and(|p| p.running_since.is_some());
        if !running {
            self.settle_pod(api, id);
        }
        if let Some(pod) = self.pod_mut(api, id)
            && pod.running_since.is_none()
        {
            pod.running_since = Some(Utc::now());
        }
    }

    /// Empties a pod's container disk (its directory), keeping what lies under a mount's path:
    /// "Container disk in GB (ephemeral, wiped on restart)". The pod's commands run in its
    /// directory, so a mount at `/workspace` is the directory's `workspace`.
    pub(crate) fn wipe_container_disk(&mut self, api: Api, id: &str) {
        let home = (self.pod_home)(&self.home_root, api, id, 0);
        let Some(pod) = self.pod_mut(api, id) else { return };
        let mut kept: Vec<String> = Vec::new();
        if let Some(path) = pod.mounts["persistent"]["path"].as_str() {
            kept.push(path.to_string());
        }
        if let Some(network) = pod.mounts["network"].as_array() {
            kept.extend(network.iter().filter_map(|m| m["path"].as_str()).map(str::to_string));
        }
        let kept: Vec<String> =
            kept.iter().filter_map(|p| p.trim_start_matches('/').split('/').next()).map(str::to_string).collect();
        let Ok(entries) = std::fs::read_dir(&home) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // The emulator's own `nvidia-smi` and utilization file are the host's, not the disk's.
            if kept.contains(&name) || name == "bin" || name == ".gpucloud-emulator" {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }

    /// Closes the storage stretch of a volume: call before it is deleted.
    pub(crate) fn settle_volume(&mut self, api: Api, id: &str) {
        let now = Utc::now();
        if let Some(charge) =
            self.volumes.iter().find(|v| v.api == api && v.id == id).and_then(|v| volume_charge(v, now))
        {
            self.charges.push(charge);
        }
    }

    /// Every charge of `api` up to `now`: the closed ones and the open ones priced to `now`.
    pub(crate) fn charges_until(&self, api: Api, now: DateTime<Utc>) -> Vec<Charge> {
        let mut all: Vec<Charge> = self.charges.iter().filter(|c| c.api == api).cloned().collect();
        for pod in self.pods.iter().filter(|p| p.api == api) {
            if let Some(start) = pod.running_since {
                let (kind, billed) = running_charge(pod);
                all.push(Charge { api, kind, id: billed, start, end: now, rate: pod.price });
            }
            if let Some(start) = pod.stopped_since {
                let rate = stopped_rate(pod);
                all.push(Charge { api, kind: ChargeKind::PodDisk, id: pod.id.clone(), start, end: now, rate });
            }
        }
        all.extend(self.volumes.iter().filter(|v| v.api == api).filter_map(|v| volume_charge(v, now)));
        all
    }
}

/// What a pod's running time bills as, and to which id: a cluster member's to its cluster.
fn running_charge(pod: &EmulatedPod) -> (ChargeKind, String) {
    match &pod.cluster {
        Some(member) => (ChargeKind::Cluster, member.cluster_id.clone()),
        None => (ChargeKind::Pod, pod.id.clone()),
    }
}

fn volume_charge(volume: &EmulatedVolume, now: DateTime<Utc>) -> Option<Charge> {
    let start = DateTime::parse_from_rfc3339(&volume.created_at).ok()?.with_timezone(&Utc);
    let rate = match volume.api {
        Api::RunPod => volume.size as f64 * RUNPOD_VOLUME_USD_PER_GB_MONTH / HOURS_PER_MONTH,
        Api::PrimeIntellect => volume.size as f64 * PRIMEINTELLECT_DISK_USD_PER_GB_HOUR,
    };
    Some(Charge { api: volume.api, kind: ChargeKind::Volume, id: volume.id.clone(), start, end: now, rate })
}
