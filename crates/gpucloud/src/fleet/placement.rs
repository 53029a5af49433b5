//! Volume affinity: a launch with a volume considers only offers that can attach it.
//!
//! A volume lives with one provider, in one place: a PrimeIntellect disk in its data center
//! (availability's `disks=` "returns only GPU offers available in the same location as your
//! disk"), a RunPod network volume in its `dataCenter`, on Secure Cloud only ("in the same data
//! center as the pod"). The [`crate::Fleet`] finds which provider holds the volume ids and asks
//! only that provider, with the volume in the query ([`crate::OfferQuery::volume_id`]); each
//! adapter then narrows its own offers (PrimeIntellect by `disks=`, RunPod to the volume's data
//! center on Secure Cloud, so `dataCenterIds` names only it). An id no provider has is a typed
//! error before any create.

use crate::model::Provider;
use crate::model::error::{Error, Result};
use crate::providers::provisioner::Provisioner;
use std::sync::Arc;

/// The provider holding every one of `ids`; [`Error::InvalidInput`] (`volume_ids`) when one is
/// on no provider, or they are split across providers (a pod attaches volumes of its own
/// provider only). Providers that cannot be listed are reported in the error when the volume
/// is not found elsewhere.
pub(crate) async fn volume_provider(provisioners: &[Arc<dyn Provisioner>], ids: &[String]) -> Result<Option<Provider>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let lists = provisioners
        .iter()
        .filter(|p| p.capabilities().volumes)
        .map(|p| async move { (p.provider(), p.list_volumes().await) });
    let mut unreadable = Vec::new();
    let mut homes: Vec<(String, Provider)> = Vec::new();
    for (provider, listed) in futures::future::join_all(lists).await {
        match listed {
            Ok(volumes) => {
                homes.extend(volumes.into_iter().filter(|v| ids.contains(&v.id)).map(|v| (v.id, provider)));
            }
            Err(e) => unreadable.push(format!("{provider}: {e}")),
        }
    }
    let mut provider = None;
    for id in ids {
        let Some((_, home)) = homes.iter().find(|(v, _)| v == id) else {
            let unreadable = if unreadable.is_empty() {
                String::new()
            } else {
                format!(" (could not list: {})", unreadable.join("; "))
            };
            return Err(Error::invalid("volume_ids", format!("no provider has a volume {id:?}{unreadable}")));
        };
        match provider {
            Some(p) if p != *home => {
                return Err(Error::invalid(
                    "volume_ids",
                    format!(
                        "the volumes are on different providers ({p} and {home}); a pod attaches its own provider's"
                    ),
                ));
            }
            _ => provider = Some(*home),
        }
    }
    Ok(provider)
}
