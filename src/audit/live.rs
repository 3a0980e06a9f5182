//! Cluster objects through the API (kubeconfig or in-cluster service account): pods,
//! NetworkPolicies, istio-system's mesh ConfigMap, and, where their CRDs are installed,
//! Istio ServiceEntries and DestinationRules (the first served of v1, v1beta1, v1alpha3) and
//! Cilium policies. A missing CRD or an RBAC denial is reported per resource, not fatal;
//! an unreachable API server is.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams};
use kube::{Client, Resource};
use serde::Serialize;

use super::{ContainerLog, Objects, Unavailable};

/// A custom resource the audit reads: its group, kind, plural, versions in preference order.
struct Custom {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    versions: &'static [&'static str],
    namespaced: bool,
}

const CUSTOM: [Custom; 4] = [
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
];

/// Log lines fetched per container at once.
const LOG_FETCHES_AT_ONCE: usize = 8;

pub struct Scope {
    /// Only this namespace (cluster-wide policies are still read).
    pub namespace: Option<String>,
    /// The last N lines of every container's log, when set.
    pub logs: Option<i64>,
}

pub async fn fetch(client: Client, scope: &Scope) -> Result<Objects, kube::Error> {
    let mut objects = Objects::default();
    let ns = scope.namespace.as_deref();
    let pods: Vec<Pod> = list(&mut objects, namespaced(&client, ns), "pods")
        .await?
        .unwrap_or_default();
    for pod in &pods {
        add_typed(&mut objects, pod);
    }
    match list::<NetworkPolicy>(&mut objects, namespaced(&client, ns), "networkpolicies").await? {
        Some(policies) => policies.iter().for_each(|p| add_typed(&mut objects, p)),
        None => objects.policies_unreadable = true,
    }
    let istio: Api<ConfigMap> = Api::namespaced(client.clone(), "istio-system");
    if let Some(maps) = list(&mut objects, istio, "istio-system/configmaps").await? {
        maps.iter().for_each(|m| add_typed(&mut objects, m));
    }
    for custom in &CUSTOM {
        custom_objects(&client, custom, ns, &mut objects).await?;
    }
    if let Some(lines) = scope.logs {
        logs(&client, &pods, lines, &mut objects).await;
    }
    Ok(objects)
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

/// Lists every object; an API refusal (RBAC, missing resource) is recorded and gives None.
async fn list<K>(
    objects: &mut Objects,
    api: Api<K>,
    what: &str,
) -> Result<Option<Vec<K>>, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(list.items)),
        Err(kube::Error::Api(status)) => {
            objects.unavailable.push(Unavailable {
                resource: what.to_string(),
                reason: refusal(status.code, &status.message),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn refusal(code: u16, message: &str) -> String {
    match code {
        403 => format!("forbidden (RBAC: grant get/list): {message}"),
        404 => "not served by this cluster (CRD not installed)".into(),
        _ => format!("HTTP {code}: {message}"),
    }
}

/// A typed object into the audit, with the kind and apiVersion lists leave out.
fn add_typed<K: Resource<DynamicType = ()> + Serialize>(objects: &mut Objects, object: &K) {
    let Ok(mut value) = serde_json::to_value(object) else {
        return;
    };
    value["kind"] = K::kind(&()).into();
    value["apiVersion"] = K::api_version(&()).into();
    objects.add(value, "api");
}

async fn custom_objects(
    client: &Client,
    custom: &Custom,
    ns: Option<&str>,
    objects: &mut Objects,
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
                        objects.add(value, "api");
                    }
                }
                return Ok(());
            }
            // Not served in this version: try the next one.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Api(status)) => {
                refused = Some(refusal(status.code, &status.message));
                // A Cilium policy nobody may read may still restrict pods.
                objects.policies_unreadable |= custom.group == "cilium.io";
                break;
            }
            Err(e) => return Err(e),
        }
    }
    objects.unavailable.push(Unavailable {
        resource: format!("{}.{}", custom.plural, custom.group),
        reason: refused.unwrap_or_else(|| refusal(404, "")),
    });
    Ok(())
}

/// The last `lines` of every container of every scheduled pod, a few fetches at a time.
async fn logs(client: &Client, pods: &[Pod], lines: i64, objects: &mut Objects) {
    use futures_util::StreamExt;
    let mut wanted = Vec::new();
    for pod in pods {
        let scheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            continue;
        };
        let (kind, workload) = crate::enrich::workload(pod);
        let containers = pod.spec.iter().flat_map(|s| &s.containers);
        for c in containers.filter(|_| scheduled) {
            wanted.push((
                ns.clone(),
                name.clone(),
                format!("{kind}/{workload}"),
                c.name.clone(),
            ));
        }
    }
    let fetched: Vec<_> = futures_util::stream::iter(wanted)
        .map(|(ns, pod, object, container)| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            async move {
                let params = LogParams {
                    container: Some(container.clone()),
                    tail_lines: Some(lines),
                    ..LogParams::default()
                };
                let text = api.logs(&pod, &params).await;
                (ns, pod, object, container, text)
            }
        })
        .buffer_unordered(LOG_FETCHES_AT_ONCE)
        .collect()
        .await;
    for (namespace, pod, object, container, text) in fetched {
        match text {
            Ok(text) => objects.logs.push(ContainerLog {
                namespace,
                object,
                container,
                text,
            }),
            Err(e) => objects.unavailable.push(Unavailable {
                resource: format!("{namespace}/pods/{pod}/log ({container})"),
                reason: match e {
                    kube::Error::Api(status) => refusal(status.code, &status.message),
                    other => other.to_string(),
                },
            }),
        }
    }
}
