//! The Kubernetes API client, configured as kubectl would be.

use std::io;
use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client from `kubeconfig` (and `context`), else the environment (KUBECONFIG,
/// ~/.kube/config) or the in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> io::Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(io::Error::other)?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(io::Error::other)?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(io::Error::other)?,
        None => Config::infer().await.map_err(io::Error::other)?,
    };
    Client::try_from(config).map_err(io::Error::other)
}
