//! One environment contract on every node of a cluster, written over SSH where the provider does
//! not provide it ([`write_environment`]).
//!
//! On each node gpucloud writes `~/.gpucloud/hostfile` ([`HOSTFILE_PATH`]: one line per node in
//! rank order, `<private address> slots=<GPUs per node>`) and `~/.gpucloud/env`
//! ([`ENV_FILE_PATH`]): `export` lines for every variable of [`crate::model::cluster::ENV_CONTRACT`]
//! (`NCCL_SOCKET_IFNAME` on RunPod only: its guides name its interface). Each line keeps a
//! value the node already has (RunPod's own `PRIMARY_ADDR`, `MASTER_PORT`, `NODE_RANK`, ...) and
//! fills only what is missing from the cluster as gpucloud read it, so RunPod's documented
//! variables win where they exist. `GPUCLOUD_HOSTFILE` is the hostfile's absolute path. A line
//! that loads the file is appended once to `~/.bashrc` (interactive shells); commands started
//! otherwise load it with `. ~/.gpucloud/env`.

use crate::model::cluster::{Cluster, ENV_FILE_PATH, HOSTFILE_PATH, RUNPOD_CLUSTER_INTERFACE};
use crate::model::error::{Error, Result};
use crate::remote::session::{RemoteSession, SessionOptions, quote};

/// The port `MASTER_PORT` defaults to where the node has none (torchrun's own default).
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// The marker of the line appended to `~/.bashrc`.
const BASHRC_MARKER: &str = "gpucloud-cluster-env";

/// The `(name, value)` pairs of the contract for the node of `rank` whose private address is
/// `address`, as gpucloud computes them (a node's own values take precedence when the file is
/// loaded). `GPUCLOUD_HOSTFILE` is left out: it is the node's `$HOME` plus [`HOSTFILE_PATH`].
pub fn contract_values(cluster: &Cluster, rank: u32, address: &str) -> Vec<(&'static str, String)> {
    let primary = cluster.primary_node().and_then(|n| n.private_address.clone()).unwrap_or_default();
    let port = DEFAULT_MASTER_PORT.to_string();
    let nodes = cluster.node_count.to_string();
    let gpus = cluster.gpus_per_node.to_string();
    let mut values = vec![
        ("PRIMARY_ADDR", primary.clone()),
        ("MASTER_ADDR", primary.clone()),
        ("PRIMARY_PORT", port.clone()),
        ("MASTER_PORT", port.clone()),
        ("NODE_ADDR", address.to_string()),
        ("NODE_RANK", rank.to_string()),
        ("NUM_NODES", nodes.clone()),
        ("NNODES", nodes),
        ("NUM_TRAINERS", gpus.clone()),
        ("GPUS_PER_NODE", gpus),
        ("HOST_NODE_ADDR", format!("{primary}:{port}")),
        ("WORLD_SIZE", cluster.total_gpus().to_string()),
    ];
    // RunPod's guides name RunPod's node-to-node interface; PrimeIntellect documents none, and
    // a wrong name would make NCCL fail where its own choice works.
    if cluster.provider == crate::model::Provider::RunPod {
        values.push(("NCCL_SOCKET_IFNAME", RUNPOD_CLUSTER_INTERFACE.to_string()));
    }
    values
}

/// A host name or an IP address (v4, v6, with a zone): letters, digits and `.-:_%`, at most
/// 253 characters; nothing a shell would expand.
pub fn is_plain_address(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= 253
        && address.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:_%".contains(&b))
        && !address.starts_with('-')
}

/// The script that writes the hostfile and the env file on one node.
pub fn node_script(cluster: &Cluster, rank: u32, address: &str) -> String {
    let mut env = String::new();
    for (name, value) in contract_values(cluster, rank, address) {
        // Keep the node's own value; fill the one gpucloud read where it has none.
        env.push_str(&format!("export {name}=\"${{{name}:-{value}}}\"\n"));
    }
    env.push_str(&format!("export GPUCLOUD_HOSTFILE=\"$HOME/{HOSTFILE_PATH}\"\n"));
    let directory = HOSTFILE_PATH.rsplit_once('/').map_or(".gpucloud", |(dir, _)| dir);
    format!(
        "set -e\nmkdir -p \"$HOME/{directory}\"\nprintf '%s' {hostfile} > \"$HOME/{HOSTFILE_PATH}\"\n\
         printf '%s' {env} > \"$HOME/{ENV_FILE_PATH}\"\n\
         grep -q {BASHRC_MARKER} \"$HOME/.bashrc\" 2>/dev/null || \
         echo '[ -f \"$HOME/{ENV_FILE_PATH}\" ] && . \"$HOME/{ENV_FILE_PATH}\" # {BASHRC_MARKER}' >> \"$HOME/.bashrc\"\n",
        hostfile = quote(&cluster.hostfile()),
        env = quote(&env),
    )
}

/// Writes the hostfile and the env file on every node of `cluster`, all nodes at once, over one
/// SSH session each. Every node must be ranked, addressed and reachable (a ready cluster is);
/// the first failure is the error, naming the node.
pub async fn write_environment(cluster: &Cluster, options: &SessionOptions) -> Result<()> {
    // The addresses come from the provider's answer and are evaluated by every shell that loads
    // the env file (`"${NODE_ADDR:-<address>}"`): only plain host names and IP addresses pass.
    if let Some(node) =
        cluster.nodes.iter().find(|n| n.private_address.as_deref().is_some_and(|a| !is_plain_address(a)))
    {
        return Err(Error::invalid(
            "cluster",
            format!(
                "node {} has the address {:?}, which is not a host name or IP address",
                node.pod.id,
                node.private_address.as_deref().unwrap_or_default()
            ),
        ));
    }
    let writes = cluster.nodes.iter().map(|node| async move {
        let (Some(rank), Some(address)) = (node.rank, node.private_address.as_deref()) else {
            return Err(Error::invalid("cluster", format!("node {} has no rank or private address yet", node.pod.id)));
        };
        let session = RemoteSession::connect(&node.pod, options).await?;
        let written = session.output(&node_script(cluster, rank, address)).await;
        let closed = session.close().await;
        let (code, _, stderr) = written?;
        closed?;
        if code != 0 {
            return Err(Error::Ssh {
                id: node.pod.id.clone(),
                message: format!("writing the cluster environment exited {code}: {}", stderr.trim()),
            });
        }
        Ok(())
    });
    futures::future::try_join_all(writes).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_addresses_go_into_the_env_file() {
        for good in ["10.65.0.2", "127.0.0.1", "fe80::1%ens1", "node-1.internal"] {
            assert!(super::is_plain_address(good), "{good}");
        }
        for bad in ["", "$(reboot)", "10.0.0.1\"; rm -rf ~; \"", "a b", "`id`", "-oProxyCommand=x", "x\ny"] {
            assert!(!super::is_plain_address(bad), "{bad:?}");
        }
    }
}
