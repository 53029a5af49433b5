//! Output: tables for people, stable JSON for programs.
//!
//! JSON shapes (stable):
//! - pod: `{"id","provider","name","status","gpu_type","gpu_count","price_per_hour","ssh","created_at"}`,
//!   `status` one of `provisioning`, `starting`, `running`, `stopped`, `terminating`,
//!   `terminated`, `failed`, `unknown`; `ssh` an `ssh user@host -p port` command or null.
//! - offer: `{"provider","via","gpu_type","gpu_count","price_per_hour","spot","region","data_center","stock"}`.
//! - volume: `{"id","provider","name","size_gb","status","data_center"}`.

use gpucloud::{Offer, Pod, Volume};
use serde_json::{Value, json};

pub fn pod_json(pod: &Pod) -> Value {
    json!({
        "id": pod.id.to_string(),
        "provider": pod.provider,
        "name": pod.name,
        "status": pod.status.as_str(),
        "gpu_type": pod.gpu_type,
        "gpu_count": pod.gpu_count,
        "price_per_hour": pod.price_per_hour,
        "ssh": pod.ssh.as_ref().map(ToString::to_string),
        "created_at": pod.created_at.map(|t| t.to_rfc3339()),
    })
}

pub fn offer_json(offer: &Offer) -> Value {
    json!({
        "provider": offer.provider,
        "via": offer.via,
        "gpu_type": offer.gpu_type,
        "gpu_count": offer.gpu_count,
        "price_per_hour": offer.price_per_hour,
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
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
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
                format!("${:.2}", o.price_per_hour),
                if o.spot { "spot".into() } else { "on-demand".into() },
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
                p.price_per_hour.map(|v| format!("${v:.2}")).unwrap_or_else(|| "-".into()),
                p.ssh.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["POD", "NAME", "STATUS", "GPU", "PRICE/H", "SSH"], rows);
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
