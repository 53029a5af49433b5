//! Output: tables for people, stable JSON for programs.
//!
//! JSON shapes (stable):
//! - pod: `{"id","provider","name","status","gpu_type","gpu_count","price_per_hour","price_now_per_hour","ssh","created_at",
//!   "lease_expires_at","installation_status","installation_progress","team_id","data_center","spot"}`, `status` one of `provisioning`, `starting`, `running`, `stopped`,
//!   `terminating`, `terminated`, `failed`, `unknown`; `ssh` an `ssh user@host -p port` command or
//!   null; `lease_expires_at` RFC 3339 or null (no lease); `installation_status` PrimeIntellect's
//!   raw `installationStatus` or null, `installation_progress` its percent or null; `team_id` the
//!   owning PrimeIntellect team or null; `data_center` where the pod was placed (RunPod) or null;
//!   `price_per_hour` the rate it bills while running (null for a stopped RunPod pod, whose record
//!   does not say), `price_now_per_hour` the rate in force now (provisioning, stopped: disk);
//!   `spot` whether it runs on interruptible capacity (PrimeIntellect's `isSpot`).
//! - run outcome (`run --json`): `{"pod","exit_code","kept","teardown_error","download_errors","sync",
//!   "tail","interruptions","interrupted_cost","restored_checkpoint","timings_s"}`; each interruption
//!   `{"pod","place":{"provider","data_center"},"spot","sign","status"?,"ran_for_s","detected_within_s",
//!   "price_per_hour","cost"}`, `interrupted_cost` their estimated sum or null,
//!   `restored_checkpoint` `{"pod","age_s","how"}` or null.
//! - team: `{"id","name","slug","role"}`.
//! - ssh key: `{"provider","id","name","public_key"}` (`id`, `name` null on RunPod).
//! - reap: `{"dry_run","examined","reaped":[{"id","name","reason","since"}],"failures":[{"provider","pod","error"}],"unmeasured":[id],"skipped":[{"id","name","reason","since","why"}]}`,
//!   `reason` `lease_expired` (`since`: the expiry) or `prefix_older_than` (`since`: the creation
//!   time); a failure's `pod` is null when the provider's pods could not be listed.
//! - offer: `{"provider","via","gpu_type","gpu_count","price_per_hour","currency","prepaid_hours","spot","region","data_center","stock"}`,
//!   `price_per_hour` in `currency` (`USD` or `EUR`), `prepaid_hours` the hours charged at create or null.
//! - volume: `{"id","provider","name","size_gb","status","data_center"}`.

use gpucloud::upkeep::reap::{ReapFailure, ReapReason, ReapReport};
use std::io::Write as _;

/// `println!` for command output: a closed pipe (`gpucloud ls | head -1`) ends the command
/// quietly with success, as `ls` and `grep` do, instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::render::write_stdout(format_args!($($arg)*)) };
}
pub(crate) use outln;

/// Writes a remote command's output bytes to stdout, unchanged, while a pod is ours to end: a
/// reader that went away (`gpucloud run ... | head -1`) must not end the process before the pod
/// is terminated, so later output is dropped instead, and the job goes on to its teardown.
pub fn write_stdout_or_drop(bytes: &[u8]) {
    static GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if GONE.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        GONE.store(true, std::sync::atomic::Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("gpucloud: error: writing to standard output: {e}; the rest of the output is dropped");
        }
    }
}

/// Writes a remote command's error-stream bytes to stderr, unchanged (a failed write is
/// dropped: there is nowhere left to say so).
pub fn write_stderr(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

/// Writes one line to stdout; see [`outln!`].
pub fn write_stdout(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("gpucloud: error: writing to standard output: {e}");
        std::process::exit(1);
    }
}
use gpucloud::{Offer, Pod, Volume};
use serde_json::{Value, json};

pub fn pod_json(pod: &Pod) -> Value {
    let mut value = pod_fields(pod);
    // A RunPod cluster member says so (standalone pods carry no `cluster` key).
    if let Some(member) = pod.membership() {
        value["cluster"] = json!({"id": member.cluster.to_string(), "rank": member.rank,
                                  "private_address": member.private_address});
    }
    value
}

/// A cluster: its shape, price, lease, and every node by rank.
pub fn cluster_json(cluster: &gpucloud::Cluster) -> Value {
    let nodes: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|n| {
            json!({"rank": n.rank, "pod": n.pod.id.to_string(), "private_address": n.private_address,
                        "status": n.pod.status.as_str(), "ssh": n.pod.ssh.as_ref().map(ToString::to_string)})
        })
        .collect();
    json!({
        "id": cluster.id.to_string(), "provider": cluster.provider, "name": cluster.name,
        "gpu_type": cluster.gpu_type, "gpus_per_node": cluster.gpus_per_node, "nodes_asked": cluster.node_count,
        "data_center": cluster.data_center, "price_per_hour": cluster.price_per_hour,
        "pods_by_status": cluster.pods_by_status, "primary": cluster.primary.as_ref().map(ToString::to_string),
        "single_pod": cluster.single_pod.as_ref().map(ToString::to_string),
        "primary_ssh_endpoint": cluster.primary_ssh_endpoint,
        "lease_expires_at": cluster.lease_expires_at.map(|t| t.to_rfc3339()),
        "created_at": cluster.created_at.map(|t| t.to_rfc3339()),
        "nodes": nodes,
    })
}

/// Clusters for people: one line per cluster, then its members by rank.
pub fn clusters_table(clusters: &[gpucloud::Cluster]) {
    let mut rows = Vec::new();
    for c in clusters {
        let lease = c.lease_expires_at.map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
        rows.push(vec![
            c.id.to_string(),
            c.name.clone(),
            c.progress_text(),
            format!("{} x {}x {}", c.node_count, c.gpus_per_node, c.gpu_type),
            dollars(c.price_per_hour),
            or_dash(c.data_center.as_deref()),
            lease,
            "-".into(),
        ]);
        for n in &c.nodes {
            rows.push(vec![
                format!("  {}", n.pod.id),
                format!("  rank {}", n.rank.map_or_else(|| "-".to_string(), |r| r.to_string())),
                n.pod.status.as_str().to_string(),
                or_dash(n.private_address.as_deref()),
                dollars(n.pod.price_per_hour),
                or_dash(n.pod.data_center.as_deref()),
                "-".into(),
                n.pod.ssh.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    table(
        &["CLUSTER / MEMBER", "NAME / RANK", "STATUS", "SHAPE / ADDRESS", "PRICE/H", "DATA CENTER", "LEASE", "SSH"],
        rows,
    );
}

fn pod_fields(pod: &Pod) -> Value {
    json!({
        "id": pod.id.to_string(),
        "provider": pod.provider,
        "name": pod.name,
        "status": pod.status.as_str(),
        "gpu_type": pod.gpu_type,
        "gpu_count": pod.gpu_count,
        "price_per_hour": pod.price_per_hour,
        "price_now_per_hour": pod.price_now_per_hour,
        "ssh": pod.ssh.as_ref().map(ToString::to_string),
        "created_at": pod.created_at.map(|t| t.to_rfc3339()),
        "lease_expires_at": pod.lease_expires_at.map(|t| t.to_rfc3339()),
        "installation_status": pod.installation_status,
        "installation_progress": pod.installation_progress,
        "team_id": pod.team_id,
        "data_center": pod.data_center,
        "spot": pod.is_spot(),
    })
}

/// One pod, every field on its own line (`gpucloud get`).
pub fn pod_details(pod: &Pod) {
    let status = match pod.status {
        gpucloud::PodStatus::Failed => format!("{} ({})", pod.status, pod.failure_reason()),
        _ => format!("{} ({})", pod.status, pod.provider_status),
    };
    let rows = [
        ("pod", pod.id.to_string()),
        ("name", pod.name.clone()),
        ("status", status),
        (
            "installation",
            match (pod.installation_status.as_deref(), pod.installation_progress) {
                (Some(status), Some(percent)) => format!("{status} ({percent}%)"),
                (status, _) => or_dash(status),
            },
        ),
        ("data center", or_dash(pod.data_center.as_deref())),
        ("team", or_dash(pod.team_id.as_deref())),
        ("gpu", format!("{}x {}", pod.gpu_count, pod.gpu_type)),
        (
            "price/h (running)",
            if pod.is_spot() { format!("{} (spot)", dollars(pod.price_per_hour)) } else { dollars(pod.price_per_hour) },
        ),
        ("now/h", dollars(pod.price_now_per_hour)),
        ("created", pod.created_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())),
        ("lease", lease_left(pod)),
        ("ssh", pod.ssh.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into())),
    ];
    for (key, value) in rows {
        outln!("{key:<13} {value}");
    }
}

pub fn ssh_keys_table(keys: &[gpucloud::providers::ssh::SshKey]) {
    let rows = keys
        .iter()
        .map(|k| {
            let words: Vec<&str> = k.public_key.split_whitespace().collect();
            let material = words.get(1).map(|m| {
                let head: String = m.chars().take(8).collect();
                let tail: String = m.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
                format!("{head}…{tail}")
            });
            vec![
                k.provider.to_string(),
                or_dash(k.id.as_deref()),
                words.first().unwrap_or(&"-").to_string(),
                material.unwrap_or_else(|| "-".into()),
                words.get(2..).map(|c| c.join(" ")).filter(|c| !c.is_empty()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["PROVIDER", "ID", "TYPE", "KEY", "COMMENT"], rows);
}

pub fn teams_table(teams: &[gpucloud::Team]) {
    let rows =
        teams.iter().map(|t| vec![t.id.clone(), t.name.clone(), or_dash(t.slug.as_deref()), t.role.clone()]).collect();
    table(&["TEAM ID", "NAME", "SLUG", "ROLE"], rows);
}

fn reason_json(reason: &ReapReason) -> (&'static str, String) {
    match reason {
        ReapReason::LeaseExpired { expired_at } => ("lease_expired", expired_at.to_rfc3339()),
        ReapReason::PrefixOlderThan { created_at } => ("prefix_older_than", created_at.to_rfc3339()),
        ReapReason::Idle { since, .. } => ("idle", since.to_rfc3339()),
        _ => ("other", String::new()),
    }
}

fn failure_parts(failure: &ReapFailure) -> (gpucloud::Provider, Option<String>, String) {
    let target = match failure {
        ReapFailure::DeleteCluster { id, .. } => Some(format!("cluster {id}")),
        other => other.pod().map(ToString::to_string),
    };
    (failure.provider(), target, failure.error().to_string())
}

pub fn reap_json(report: &ReapReport) -> Value {
    let reaped: Vec<Value> = report
        .reaped
        .iter()
        .map(|r| {
            let (reason, since) = reason_json(&r.reason);
            json!({"id": r.id.to_string(), "name": r.name, "reason": reason, "since": since})
        })
        .collect();
    let failures: Vec<Value> = report
        .failures
        .iter()
        .map(|f| {
            let (provider, pod, error) = failure_parts(f);
            json!({"provider": provider, "pod": pod, "error": error})
        })
        .collect();
    let unmeasured: Vec<String> = report.unmeasured.iter().map(ToString::to_string).collect();
    let skipped: Vec<Value> = report
        .skipped
        .iter()
        .map(|s| {
            let (reason, since) = reason_json(&s.reason);
            json!({"id": s.id.to_string(), "name": s.name, "reason": reason, "since": since, "why": s.why})
        })
        .collect();
    let reaped_clusters: Vec<Value> = report
        .reaped_clusters
        .iter()
        .map(|r| {
            let (reason, since) = reason_json(&r.reason);
            json!({"id": r.id.to_string(), "name": r.name, "nodes": r.nodes, "reason": reason, "since": since})
        })
        .collect();
    json!({"dry_run": report.dry_run, "examined": report.examined, "reaped": reaped, "failures": failures,
           "unmeasured": unmeasured, "skipped": skipped, "examined_clusters": report.examined_clusters,
           "reaped_clusters": reaped_clusters})
}

/// One sweep for people: what was (or would be) terminated, failures on stderr.
pub fn reap_summary(report: &ReapReport) {
    let verb = if report.dry_run { "would terminate" } else { "terminated" };
    let rows = report
        .reaped
        .iter()
        .map(|r| {
            let (reason, since) = reason_json(&r.reason);
            vec![r.id.to_string(), r.name.clone(), reason.replace('_', " "), since]
        })
        .collect::<Vec<_>>();
    if !rows.is_empty() {
        table(&["POD", "NAME", "REASON", "SINCE"], rows);
    }
    outln!(
        "{}: examined {} pods, {verb} {}",
        gpucloud::model::time::now_rfc3339(),
        report.examined,
        report.reaped.len()
    );
    for cluster in &report.reaped_clusters {
        let (reason, since) = reason_json(&cluster.reason);
        let verb = if report.dry_run { "would delete" } else { "deleted" };
        outln!(
            "{verb} cluster {} ({}, {} nodes, all deleted with it): {} {since}",
            cluster.id,
            cluster.name,
            cluster.nodes,
            reason.replace('_', " ")
        );
    }
    if !report.unmeasured.is_empty() {
        let ids: Vec<String> = report.unmeasured.iter().map(ToString::to_string).collect();
        outln!("not measurable for --idle-below (no utilization reported): {}", ids.join(", "));
    }
    for skipped in &report.skipped {
        outln!("left {} ({}): {}", skipped.id, skipped.name, skipped.why);
    }
    for failure in &report.failures {
        let (provider, pod, error) = failure_parts(failure);
        eprintln!("gpucloud: error: reap {}: {error}", pod.unwrap_or_else(|| format!("{provider} (listing pods)")));
    }
}

/// Time left on a lease, for tables: `7h59m`, `4m10s`, `12s`, `expired`, or `-` (no lease).
pub fn lease_left(pod: &Pod) -> String {
    let Some(expiry) = pod.lease_expires_at else { return "-".into() };
    let left = expiry.signed_duration_since(gpucloud::model::time::now()).num_seconds();
    match left {
        ..=0 => "expired".into(),
        1..60 => format!("{left}s"),
        60..3600 => format!("{}m{:02}s", left / 60, left % 60),
        _ => format!("{}h{:02}m", left / 3600, (left % 3600) / 60),
    }
}

/// An amount with its currency: `$1.95` for USD, `EUR 1.95` for anything else.
pub fn money(amount: f64, currency: &str) -> String {
    if currency.eq_ignore_ascii_case("USD") { format!("${amount:.2}") } else { format!("{currency} {amount:.2}") }
}

pub fn offer_json(offer: &Offer) -> Value {
    json!({
        "provider": offer.provider,
        "via": offer.via,
        "gpu_type": offer.gpu_type,
        "gpu_count": offer.gpu_count,
        "price_per_hour": offer.price_per_hour,
        "currency": offer.currency,
        "prepaid_hours": offer.prepaid_hours,
        "spot": offer.spot,
        "region": offer.region,
        "data_center": offer.data_center,
        "stock": offer.stock.as_str(),
    })
}

pub fn volume_json(volume: &Volume) -> Value {
    json!({
        "id": volume.id, "provider": volume.provider, "name": volume.name, "size_gb": volume.size_gb,
        "status": volume.status, "data_center": volume.data_center,
    })
}

pub fn print_json(value: &Value) {
    outln!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        outln!("{}", text.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

/// A cluster offer: nodes x GPUs per node, total and per-GPU prices, interconnect, provisioning.
pub fn cluster_offer_json(offer: &gpucloud::ClusterOffer) -> Value {
    json!({
        "provider": offer.node.provider, "via": offer.node.via, "gpu_type": offer.node.gpu_type,
        "nodes": offer.nodes, "gpus_per_node": offer.node.gpu_count, "total_gpus": offer.total_gpus(),
        "price_per_hour": offer.price_per_hour(), "price_per_gpu_hour": offer.price_per_gpu_hour(),
        "currency": offer.node.currency, "data_center": offer.node.data_center,
        "interconnect_gbps": offer.interconnect_gbps, "interconnect_type": offer.interconnect_type,
        "provisioning_minutes": offer.provisioning_minutes, "launchable": offer.launchable,
    })
}

/// Cluster offers for people.
pub fn cluster_offers_table(offers: &[gpucloud::ClusterOffer]) {
    let rows = offers
        .iter()
        .map(|o| {
            vec![
                o.node.provider.to_string(),
                format!("{} x {}x {}", o.nodes, o.node.gpu_count, o.node.gpu_type),
                money(o.price_per_hour(), &o.node.currency),
                money(o.price_per_gpu_hour(), &o.node.currency),
                match (o.interconnect_gbps, o.interconnect_type.as_deref()) {
                    (Some(gbps), Some(kind)) => format!("{gbps} Gbps {kind}"),
                    (Some(gbps), None) => format!("{gbps} Gbps"),
                    (None, Some(kind)) => kind.to_string(),
                    (None, None) => "-".into(),
                },
                o.provisioning_minutes.map_or_else(|| "-".to_string(), |m| format!("{m} min")),
                or_dash(o.node.data_center.as_deref()),
                if o.nodes == 1 {
                    "up".into()
                } else if o.launchable {
                    "up --nodes".into()
                } else {
                    "listed only".into()
                },
            ]
        })
        .collect();
    table(
        &["PROVIDER", "NODES x GPUS", "PRICE/H", "PER GPU-H", "INTERCONNECT", "PROVISIONING", "DATA CENTER", "LAUNCH"],
        rows,
    );
}

pub fn offers_table(offers: &[Offer]) {
    let rows = offers
        .iter()
        .map(|o| {
            vec![
                o.provider.to_string(),
                or_dash(o.via.as_deref()),
                o.gpu_type.clone(),
                o.gpu_count.to_string(),
                money(o.price_per_hour, &o.currency),
                match (o.spot, o.prepaid_hours) {
                    (_, Some(hours)) => format!("prepaid {hours}h"),
                    (true, None) => "spot".into(),
                    (false, None) => "on-demand".into(),
                },
                or_dash(o.region.as_deref().or(o.country.as_deref())),
                or_dash(o.data_center.as_deref()),
                o.stock.as_str().to_string(),
            ]
        })
        .collect();
    table(&["PROVIDER", "VIA", "GPU", "COUNT", "PRICE/H", "TYPE", "REGION", "DATA CENTER", "STOCK"], rows);
}

pub fn pods_table(pods: &[Pod]) {
    let rows = pods
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.status.as_str().to_string(),
                format!("{}x {}", p.gpu_count, p.gpu_type),
                if p.is_spot() { format!("{} spot", dollars(p.price_per_hour)) } else { dollars(p.price_per_hour) },
                dollars(p.price_now_per_hour),
                or_dash(p.data_center.as_deref()),
                lease_left(p),
                p.ssh.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["POD", "NAME", "STATUS", "GPU", "PRICE/H", "NOW/H", "DATA CENTER", "LEASE", "SSH"], rows);
}

/// An hourly rate for tables: `$1.95`, or `-` when unknown. PRICE/H is what a pod bills while
/// it runs, NOW/H what it bills at this moment (provisioning, or a stopped pod's disk).
fn dollars(rate: Option<f64>) -> String {
    rate.map(|v| format!("${v:.2}")).unwrap_or_else(|| "-".into())
}

pub fn volumes_table(volumes: &[Volume]) {
    let rows = volumes
        .iter()
        .map(|v| {
            vec![
                v.provider.to_string(),
                v.id.clone(),
                v.name.clone(),
                format!("{} GB", v.size_gb),
                or_dash(v.data_center.as_deref()),
            ]
        })
        .collect();
    table(&["PROVIDER", "ID", "NAME", "SIZE", "DATA CENTER"], rows);
}

pub(crate) fn spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub(crate) fn print_pod(pod: &gpucloud::Pod, json: bool) {
    if json {
        print_json(&pod_json(pod));
    } else {
        pods_table(std::slice::from_ref(pod));
    }
}

/// What `reap --recover` did with one recorded job, as JSON; unless `quiet`, also a line for
/// people (stdout; failures on stderr).
pub fn record_sweep(swept: &gpucloud::jobs::RecordSweep, quiet: bool) -> serde_json::Value {
    use gpucloud::jobs::RecordSweep;
    match swept {
        RecordSweep::Relaunched { job, interruption, to } => {
            if !quiet {
                let restored = to.restored.as_ref().map_or(String::new(), |r| {
                    format!(" (its checkpoint {}, {:.0} s old)", r.how, r.age.as_secs_f64())
                });
                outln!("recovered job {job}: {interruption}; relaunched as {}{restored}", to.id);
            }
            json!({"job": job.to_string(), "recovered": interruption, "relaunched_as": to.id.to_string(),
                   "restored_checkpoint": to.restored.as_ref().map(|r| json!({"age_s": r.age.as_secs_f64(), "how": r.how}))})
        }
        RecordSweep::Ended { job, end } => {
            if !quiet {
                outln!("job {job} ended: {end}");
            }
            json!({"job": job.to_string(), "ended": end})
        }
        RecordSweep::Failed { job, error } => {
            if !quiet {
                eprintln!("gpucloud: error: recovering job {job}: {error}");
            }
            json!({"job": job.to_string(), "error": error.to_string()})
        }
        RecordSweep::Unreadable { error } => {
            if !quiet {
                eprintln!("gpucloud: error: {error}");
            }
            json!({"error": error.to_string()})
        }
    }
}
