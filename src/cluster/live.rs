//! The cluster through the API (kubeconfig or in-cluster service account), listed once:
//! namespaces, pods with the ReplicaSets and Jobs that name their workloads, Services,
//! NetworkPolicies, istio-system's mesh ConfigMap, and, where their CRDs are installed,
//! Istio ServiceEntries, DestinationRules and Sidecars (the first served of v1, v1beta1,
//! v1alpha3), Cilium policies and AdminNetworkPolicies. A missing CRD or an RBAC denial is
//! reported per resource, not fatal; an unreachable API server is.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, Resource};
use serde::Serialize;

use super::Cluster;
use super::load::Loader;

/// A custom resource the audit reads: its group, kind, plural, versions in preference order.
struct Custom {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    versions: &'static [&'static str],
    namespaced: bool,
}

const CUSTOM: [Custom; 7] = [
    Custom {
        group: "networking.istio.io",
        kind: "ServiceEntry",
        plural: "serviceentries",
        versions: &["v1", "v1beta1", "v1alpha3"],
        namespaced: true,
    },
    Custom {
        group: "networking.istio.io",
        kind: "DestinationRule",
        plural: "destinationrules",
        versions: &["v1", "v1beta1", "v1alpha3"],
        namespaced: true,
    },
    Custom {
        group: "networking.istio.io",
        kind: "Sidecar",
        plural: "sidecars",
        versions: &["v1", "v1beta1", "v1alpha3"],
        namespaced: true,
    },
    Custom {
        group: "cilium.io",
        kind: "CiliumNetworkPolicy",
        plural: "ciliumnetworkpolicies",
        versions: &["v2"],
        namespaced: true,
    },
    Custom {
        group: "cilium.io",
        kind: "CiliumClusterwideNetworkPolicy",
        plural: "ciliumclusterwidenetworkpolicies",
        versions: &["v2"],
        namespaced: false,
    },
    Custom {
        group: "policy.networking.k8s.io",
        kind: "AdminNetworkPolicy",
        plural: "adminnetworkpolicies",
        versions: &["v1alpha1"],
        namespaced: false,
    },
    Custom {
        group: "policy.networking.k8s.io",
        kind: "BaselineAdminNetworkPolicy",
        plural: "baselineadminnetworkpolicies",
        versions: &["v1alpha1"],
        namespaced: false,
    },
];

pub struct Scope {
    /// Only this namespace (cluster-wide objects are still read).
    pub namespace: Option<String>,
}

pub async fn fetch(client: Client, scope: &Scope) -> Result<Cluster, kube::Error> {
    let mut loader = Loader::default();
    let ns = scope.namespace.as_deref();
    let l = &mut loader;
    match ns {
        Some(ns) => {
            let api: Api<Namespace> = Api::all(client.clone());
            match api.get_opt(ns).await {
                Ok(Some(n)) => add_typed(l, &n),
                Ok(None) => {}
                Err(kube::Error::Api(s)) => l.unreadable("namespaces", refusal(s.code, &s.message)),
                Err(e) => return Err(e),
            }
        }
        None => {
            add_all::<Namespace>(l, Api::all(client.clone()), "namespaces").await?;
        }
    }
    add_all::<Pod>(l, namespaced(&client, ns), "pods").await?;
    add_all::<ReplicaSet>(l, namespaced(&client, ns), "replicasets.apps").await?;
    add_all::<Job>(l, namespaced(&client, ns), "jobs.batch").await?;
    add_all::<Service>(l, namespaced(&client, ns), "services").await?;
    let policies = namespaced::<NetworkPolicy>(&client, ns);
    if !add_all(l, policies, "networkpolicies.networking.k8s.io").await? {
        l.cluster_mut().policies_unreadable = true;
    }
    let istio: Api<ConfigMap> = Api::namespaced(client.clone(), "istio-system");
    add_all(l, istio, "istio-system/configmaps").await?;
    for custom in &CUSTOM {
        custom_objects(&client, custom, ns, l).await?;
    }
    Ok(loader.finish())
}

/// Lists every object into the loader; false when the API refused (recorded).
async fn add_all<K>(loader: &mut Loader, api: Api<K>, what: &str) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            list.items.iter().for_each(|o| add_typed(loader, o));
            Ok(true)
        }
        Err(kube::Error::Api(status)) => {
            loader.unreadable(what, refusal(status.code, &status.message));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn namespaced<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

pub(crate) fn refusal(code: u16, message: &str) -> String {
    match code {
        403 => format!("forbidden (RBAC: grant get/list): {message}"),
        404 => "not served by this cluster (CRD not installed)".into(),
        _ => format!("HTTP {code}: {message}"),
    }
}

/// A typed object into the model, with the kind and apiVersion lists leave out.
fn add_typed<K: Resource<DynamicType = ()> + Serialize>(loader: &mut Loader, object: &K) {
    let Ok(mut value) = serde_json::to_value(object) else {
        return;
    };
    value["kind"] = K::kind(&()).into();
    value["apiVersion"] = K::api_version(&()).into();
    loader.add(value, "api");
}

async fn custom_objects(
    client: &Client,
    custom: &Custom,
    ns: Option<&str>,
    loader: &mut Loader,
) -> Result<(), kube::Error> {
    let mut refused = None;
    for version in custom.versions {
        let gvk = GroupVersionKind::gvk(custom.group, version, custom.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, custom.plural);
        let api: Api<DynamicObject> = match ns.filter(|_| custom.namespaced) {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for item in list.items {
                    if let Ok(mut value) = serde_json::to_value(&item) {
                        value["kind"] = custom.kind.into();
                        value["apiVersion"] = resource.api_version.clone().into();
                        loader.add(value, "api");
                    }
                }
                return Ok(());
            }
            // Not served in this version: try the next one.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Api(status)) => {
                refused = Some(refusal(status.code, &status.message));
                // A policy nobody may read may still restrict pods.
                loader.cluster_mut().policies_unreadable |= custom.group != "networking.istio.io";
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let resource = format!("{}.{}", custom.plural, custom.group);
    loader.unreadable(&resource, refused.unwrap_or_else(|| refusal(404, "")));
    Ok(())
}
