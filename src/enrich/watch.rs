//! The pod table kept current from the API: Pods, ReplicaSets and Jobs are watched
//! cluster-wide into reflector stores, and the table is rebuilt at most once a second after a
//! change, then swapped in without stopping the stage.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::{StreamExt, stream};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::{PodTable, SharedPods};

/// How long start-up waits for the first complete listing.
const FIRST_SYNC: Duration = Duration::from_secs(60);
const REBUILD_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Stores {
    pods: Store<Pod>,
    replicasets: Store<ReplicaSet>,
    jobs: Store<Job>,
}

impl Stores {
    fn table(&self) -> PodTable {
        let (pods, replicasets, jobs) = (
            self.pods.state(),
            self.replicasets.state(),
            self.jobs.state(),
        );
        PodTable::build(
            pods.iter().map(AsRef::as_ref),
            replicasets.iter().map(AsRef::as_ref),
            jobs.iter().map(AsRef::as_ref),
        )
    }
}

/// Starts watching; returns once the first listing is in the table, which then follows the
/// cluster until `shutdown`.
pub async fn watch(client: Client, shutdown: CancellationToken) -> io::Result<SharedPods> {
    let (pods, pods_writer) = reflector::store::<Pod>();
    let (replicasets, rs_writer) = reflector::store::<ReplicaSet>();
    let (jobs, jobs_writer) = reflector::store::<Job>();
    let config = watcher::Config::default;
    let changes = stream::select_all([
        watcher::watcher(Api::<Pod>::all(client.clone()), config())
            .default_backoff()
            .reflect(pods_writer)
            .map(|e| e.map(drop))
            .boxed(),
        watcher::watcher(Api::<ReplicaSet>::all(client.clone()), config())
            .default_backoff()
            .reflect(rs_writer)
            .map(|e| e.map(drop))
            .boxed(),
        watcher::watcher(Api::<Job>::all(client), config())
            .default_backoff()
            .reflect(jobs_writer)
            .map(|e| e.map(drop))
            .boxed(),
    ]);
    let stores = Stores {
        pods,
        replicasets,
        jobs,
    };
    let shared: SharedPods = Arc::new(ArcSwap::from_pointee(PodTable::default()));
    let ready = {
        let (p, r, j) = (
            stores.pods.clone(),
            stores.replicasets.clone(),
            stores.jobs.clone(),
        );
        async move {
            let _ = p.wait_until_ready().await;
            let _ = r.wait_until_ready().await;
            let _ = j.wait_until_ready().await;
        }
    };
    tokio::spawn(follow(changes, stores.clone(), shared.clone(), shutdown));
    tokio::time::timeout(FIRST_SYNC, ready).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "pods, replicasets and jobs could not be listed (check the kubeconfig and RBAC: list/watch on them cluster-wide)",
        )
    })?;
    shared.store(Arc::new(stores.table()));
    Ok(shared)
}

async fn follow(
    mut changes: impl futures_util::Stream<Item = Result<(), watcher::Error>> + Unpin,
    stores: Stores,
    shared: SharedPods,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(REBUILD_EVERY);
    let mut dirty = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = changes.next() => match change {
                Some(Ok(())) => dirty = true,
                Some(Err(e)) => tracing::warn!("pod table watch: {e}"),
                None => return,
            },
            _ = tick.tick() => {
                if dirty {
                    shared.store(Arc::new(stores.table()));
                    dirty = false;
                }
            }
        }
    }
}
