//! Account resources: `ssh-keys`, `teams`, `volumes`.

use crate::cli::{self, Cli, SshKeysCommand, VolumesCommand};
use crate::launch::read_public_key;
use crate::render::{self, outln};
use crate::setup::session;
use gpucloud::{Error, Provider, VolumeSpec};
use serde_json::Value;
use std::time::Duration;

pub(crate) async fn ssh_keys(cli: &Cli, command: &SshKeysCommand) -> Result<(), Error> {
    match command {
        SshKeysCommand::Ls { provider, json } => {
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            let mut keys = Vec::new();
            for provisioner in session.fleet.provisioners() {
                keys.extend(provisioner.list_ssh_keys().await?);
            }
            if *json {
                render::print_json(&serde_json::to_value(&keys).unwrap_or(Value::Null));
            } else {
                render::ssh_keys_table(&keys);
            }
        }
        SshKeysCommand::Add { path, provider } => {
            let public_key = read_public_key(path)?;
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            for provisioner in session.fleet.provisioners() {
                let key = provisioner.ensure_ssh_key(&public_key).await?;
                outln!("{}: registered{}", key.provider, key.id.map(|id| format!(" as {id}")).unwrap_or_default());
            }
        }
    }
    Ok(())
}

pub(crate) async fn teams(cli: &Cli, args: &cli::TeamsArgs) -> Result<(), Error> {
    let session = session(cli, &[Provider::PrimeIntellect], Duration::from_secs(2)).await?;
    let client = session.primeintellect.as_ref().ok_or(Error::MissingCredentials {
        provider: Provider::PrimeIntellect,
        variable: gpucloud::providers::primeintellect::API_KEY_ENV,
    })?;
    let teams = client.teams().await?;
    if args.json {
        render::print_json(&serde_json::to_value(&teams).unwrap_or(Value::Null));
    } else {
        render::teams_table(&teams);
    }
    Ok(())
}

pub(crate) async fn volumes(cli: &Cli, command: &VolumesCommand) -> Result<(), Error> {
    match command {
        VolumesCommand::Ls { provider, json } => {
            let only: Vec<Provider> = provider.iter().copied().collect();
            let session = session(cli, &only, Duration::from_secs(2)).await?;
            let mut all = Vec::new();
            for provisioner in session.fleet.provisioners() {
                all.extend(provisioner.list_volumes().await?);
            }
            if *json {
                render::print_json(&Value::Array(all.iter().map(render::volume_json).collect()));
            } else {
                render::volumes_table(&all);
            }
        }
        VolumesCommand::Create { provider, name, size, data_center, via, json } => {
            let session = session(cli, &[*provider], Duration::from_secs(2)).await?;
            let spec = VolumeSpec {
                name: name.clone(),
                size_gb: *size,
                data_center: data_center.clone(),
                provider_type: via.clone(),
                ..VolumeSpec::default()
            };
            let volume = session.fleet.provisioner(*provider)?.create_volume(&spec).await?;
            if *json {
                render::print_json(&render::volume_json(&volume));
            } else {
                render::volumes_table(std::slice::from_ref(&volume));
            }
        }
        VolumesCommand::Rm { provider, id } => {
            let session = session(cli, &[*provider], Duration::from_secs(2)).await?;
            session.fleet.provisioner(*provider)?.delete_volume(id).await?;
            outln!("deleted {provider} volume {id}");
        }
    }
    Ok(())
}
