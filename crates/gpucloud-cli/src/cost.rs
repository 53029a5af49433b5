//! `gpucloud cost`: the fleet's cost report as a table or JSON.

use crate::cli::CostArgs;
use crate::render::{self, outln};
use gpucloud::jobs::JobRecords;
use gpucloud::upkeep::cost::{Basis, CostReport, GroupBy, Totals};
use gpucloud::{Error, Fleet, PodId};
use serde_json::{Value, json};

/// Reads the report for the last `args.since` and prints it.
pub async fn report(fleet: &Fleet, args: &CostArgs) -> Result<(), Error> {
    let until = chrono::Utc::now();
    let since =
        chrono::Duration::from_std(args.since).ok().and_then(|span| until.checked_sub_signed(span)).ok_or_else(
            || Error::InvalidInput { field: "since", message: format!("{:?} reaches before any date", args.since) },
        )?;
    let report = fleet.costs(since, until).await?;
    let by = GroupBy::from(args.by);
    let interrupted = interrupted(&report);
    if args.json {
        let mut value = report_json(&report, by);
        value["interrupted_usd"] = json!(interrupted.iter().map(|(_, t, _)| t.total_usd()).sum::<f64>());
        value["interrupted"] = interrupted
            .iter()
            .map(|(pod, t, sign)| {
                json!({"pod": pod.to_string(), "billed_usd": t.billed_usd, "estimated_usd": t.estimated_usd,
                       "total_usd": t.total_usd(), "interrupted": sign})
            })
            .collect();
        render::print_json(&value);
    } else {
        table(&report, by);
        if !interrupted.is_empty() {
            let total: f64 = interrupted.iter().map(|(_, t, _)| t.total_usd()).sum();
            let pods: Vec<String> = interrupted.iter().map(|(pod, ..)| pod.to_string()).collect();
            outln!(
                "interrupted spot attempts (taken back by their provider, the job relaunched or ended): {} of it, on {}",
                usd(total),
                pods.join(", ")
            );
        }
    }
    Ok(())
}

/// The report's amounts for pods interrupted under a gpucloud job on this machine
/// (`JobRecords::interrupted`), with what showed each interruption.
fn interrupted(report: &CostReport) -> Vec<(PodId, Totals, String)> {
    let noted = JobRecords::open_default().interrupted();
    let mut pods: Vec<PodId> = noted.iter().map(|i| i.pod.clone()).collect();
    pods.sort();
    pods.dedup();
    report
        .spent_on(&pods)
        .into_iter()
        .map(|(pod, totals)| {
            let sign = noted.iter().find(|i| i.pod == pod).map(|i| i.sign.to_string()).unwrap_or_default();
            (pod, totals, sign)
        })
        .collect()
}

fn report_json(report: &CostReport, by: GroupBy) -> Value {
    let totals = report.totals();
    json!({
        "since": report.since,
        "until": report.until,
        "billed_usd": totals.billed_usd,
        "estimated_usd": totals.estimated_usd,
        "total_usd": totals.total_usd(),
        "by_provider": report.by_provider().iter().map(|(p, t)| (p.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
        "groups": report.group(by).iter().map(|(key, t)| json!({
            "key": key, "billed_usd": t.billed_usd, "estimated_usd": t.estimated_usd, "total_usd": t.total_usd()
        })).collect::<Vec<_>>(),
        "entries": report.entries,
        "unpriced": report.unpriced,
    })
}

fn table(report: &CostReport, by: GroupBy) {
    let header = match by {
        GroupBy::Provider => "PROVIDER",
        GroupBy::Resource => "RESOURCE",
        GroupBy::Day => "DAY",
    };
    let names = |key: &str| {
        report
            .entries
            .iter()
            .find(|e| format!("{}:{}", e.provider, e.id) == key)
            .and_then(|e| e.name.clone())
            .unwrap_or_default()
    };
    let rows = report
        .group(by)
        .into_iter()
        .map(|(key, t)| {
            let mut row = vec![key.clone(), usd(t.billed_usd), estimate(t.estimated_usd), usd(t.total_usd())];
            if by == GroupBy::Resource {
                row.push(names(&key));
            }
            row
        })
        .collect();
    let mut headers = vec![header, "BILLED", "ESTIMATED", "TOTAL"];
    if by == GroupBy::Resource {
        headers.push("NAME");
    }
    render::table(&headers, rows);
    let totals = report.totals();
    outln!(
        "spent from {} to {}: {} ({} billed, {} estimated)",
        report.since.format("%Y-%m-%d %H:%M UTC"),
        report.until.format("%Y-%m-%d %H:%M UTC"),
        usd(totals.total_usd()),
        usd(totals.billed_usd),
        usd(totals.estimated_usd),
    );
    outln!(
        "sums: RunPod's account-wide billing (pods, network volumes, clusters; serverless and endpoints as \"other\"); PrimeIntellect's history, each ended resource counted by the share of its life inside the window; live PrimeIntellect disks and running pods, estimated. PrimeIntellect amounts name no currency and are read as USD, its default."
    );
    if report.entries.iter().any(|e| e.basis == Basis::Estimate) {
        outln!(
            "estimated: price x time for running pods since their last billed record, and for live PrimeIntellect disks"
        );
    }
    let shares = report.entries.iter().filter(|e| e.share_of.is_some()).count();
    if shares > 0 {
        outln!(
            "{shares} amounts are time shares of a longer billed period: a RunPod bucket cut by the window's edge, or a PrimeIntellect resource's whole life (see --json share_of)"
        );
    }
    for pod in &report.unpriced {
        outln!("not priced: {} ({}): {}", pod.id, pod.name, pod.reason);
    }
}

fn usd(amount: f64) -> String {
    render::money(amount, "USD")
}

fn estimate(amount: f64) -> String {
    if amount == 0.0 { "-".into() } else { format!("~{}", usd(amount)) }
}
