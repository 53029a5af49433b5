//! `gpucloud offers`: live offers from every provider, cheapest first.

use crate::cli::{self, Cli};
use crate::render::{self};
use crate::setup::session;
use gpucloud::{Error, OfferQuery};
use serde_json::Value;
use std::time::Duration;

pub(crate) async fn offers(cli: &Cli, args: &cli::OffersArgs) -> Result<(), Error> {
    let session = session(cli, &args.providers, Duration::from_secs(2)).await?;
    let query = OfferQuery {
        gpu: args.gpu.clone(),
        gpu_count: args.count,
        regions: args.regions.clone(),
        max_price_per_hour: args.max_price,
        spot: if args.spot {
            Some(true)
        } else if args.on_demand {
            Some(false)
        } else {
            None
        },
        volume_id: args.volume.clone(),
        cloud: None,
        allow_prepaid: args.allow_prepaid,
        in_stock_only: !args.all,
    };
    // A region no provider knows is a usage error (exit 2) before any request.
    query.validate()?;
    if let Some(nodes) = args.nodes {
        return cluster_offers(&session, args, query, nodes).await;
    }
    if let Some(total) = args.total_gpus {
        return shapes(&session, args, query, total).await;
    }
    let results = session.fleet.offers(&query).await;
    // A volume no provider has is the caller's mistake, not a provider's failure.
    if let Some((_, error)) = results.errors.iter().find(|(_, e)| matches!(e, Error::InvalidInput { .. })) {
        return Err(error.clone());
    }
    for (provider, error) in &results.errors {
        eprintln!("gpucloud: warning: no offers from {provider}: {error}");
    }
    let shown: Vec<_> = results.offers.into_iter().take(args.limit).collect();
    if shown.is_empty()
        && let Some(unknown) = unknown_gpu(args.gpu.as_deref())
    {
        return Err(unknown);
    }
    if args.json {
        render::print_json(&Value::Array(shown.iter().map(render::offer_json).collect()));
    } else if shown.is_empty() {
        eprintln!("no matching offers");
    } else {
        render::offers_table(&shown);
    }
    match results.errors.into_iter().next() {
        Some((_, error)) if shown.is_empty() => Err(error),
        _ => Ok(()),
    }
}

/// `offers --nodes N`: cluster offers of every provider, cheapest per GPU-hour first.
async fn cluster_offers(
    session: &crate::setup::Session,
    args: &cli::OffersArgs,
    mut query: OfferQuery,
    nodes: u32,
) -> Result<(), Error> {
    // The cap is for all nodes: it is applied to each cluster's total, not to one node.
    let cap = query.max_price_per_hour.take();
    let (mut offers, errors) = session.fleet.cluster_offers(&query, nodes).await;
    let errors: Vec<_> = errors.into_iter().filter(|(_, e)| !matches!(e, Error::Unsupported { .. })).collect();
    for (provider, error) in &errors {
        eprintln!("gpucloud: warning: no cluster offers from {provider}: {error}");
    }
    offers.sort_by(|a, b| a.price_per_gpu_hour().total_cmp(&b.price_per_gpu_hour()));
    show_cluster_offers(args, offers, cap, errors, "no matching cluster offers")
}

/// `offers --total-gpus G`: every shape of G GPUs (one node, or clusters), cheapest per
/// GPU-hour first.
async fn shapes(
    session: &crate::setup::Session,
    args: &cli::OffersArgs,
    mut query: OfferQuery,
    total: u32,
) -> Result<(), Error> {
    // The cap is for the whole shape, as for clusters.
    let cap = query.max_price_per_hour.take();
    let (shapes, errors) = session.fleet.offer_shapes(&query, total).await?;
    for (provider, error) in &errors {
        eprintln!("gpucloud: warning: {provider}: {error}");
    }
    show_cluster_offers(args, shapes, cap, errors, &format!("no offers of {total} GPUs in any shape"))
}

/// Prints ranked cluster offers or shapes within `cap` (the whole shape's price per hour), at
/// most `args.limit`; with none shown, the first provider error is the command's.
fn show_cluster_offers(
    args: &cli::OffersArgs,
    ranked: Vec<gpucloud::ClusterOffer>,
    cap: Option<f64>,
    errors: Vec<(gpucloud::Provider, Error)>,
    none: &str,
) -> Result<(), Error> {
    let mut shown: Vec<_> =
        ranked.into_iter().filter(|o| cap.is_none_or(|cap| o.price_per_hour() <= cap + 1e-9)).collect();
    shown.truncate(args.limit);
    if args.json {
        render::print_json(&Value::Array(shown.iter().map(render::cluster_offer_json).collect()));
    } else if shown.is_empty() {
        eprintln!("{none}");
    } else {
        render::cluster_offers_table(&shown);
    }
    match errors.into_iter().next() {
        Some((_, error)) if shown.is_empty() => Err(error),
        _ => Ok(()),
    }
}

/// When `gpu` is a name gpucloud does not know, the error that says so, with the closest known
/// names. Unknown names are still asked for (a provider may list a GPU newer than this
/// release); this is for when nothing matched.
pub(crate) fn unknown_gpu(gpu: Option<&str>) -> Option<Error> {
    let gpu = gpu?;
    if gpucloud::model::gpu::lookup(gpu).is_some() {
        return None;
    }
    let closest: Vec<&str> = gpucloud::model::gpu::closest(gpu, 3).iter().map(|m| m.name).collect();
    Some(Error::InvalidInput {
        field: "gpu",
        message: format!(
            "{gpu:?} is not a GPU gpucloud knows and no provider offers it; closest known: {}",
            closest.join(", ")
        ),
    })
}
