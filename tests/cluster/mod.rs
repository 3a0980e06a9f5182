//! A real Kubernetes control plane on loopback for the tests: etcd and kube-apiserver (built by
//! tests/support/kube-apiserver.sh) with token auth and RBAC, plus a small test kubelet that
//! serves container logs over HTTPS the way the apiserver expects (registered as a Node's
//! kubelet endpoint), so `pods/log` streams through the real apiserver.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::routing::get;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::free_port;

/// The apiserver binary, when there is one (and etcd).
fn apiserver_binary() -> Option<PathBuf> {
    let candidate = std::env::var_os("EGRESS_SCOUT_KUBE_APISERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cache/egress-scout/kube-apiserver-reflect2-1.0.2"))
        })
        .filter(|p| p.is_file());
    let etcd = Path::new("/usr/bin/etcd").is_file();
    crate::support::service(
        candidate.filter(|_| etcd),
        "no kube-apiserver or etcd: tests/run.sh (tests/support/kube-apiserver.sh) provides them",
    )
}

pub struct Cluster {
    children: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// The `viewer` user's: no rights but what a test grants with RBAC.
    pub viewer_kubeconfig: PathBuf,
    pub client: kube::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const TOKEN: &str = "egress-scout-test-token";
const VIEWER_TOKEN: &str = "egress-scout-viewer-token";

impl Cluster {
    pub async fn start() -> Option<Cluster> {
        let apiserver = apiserver_binary()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let log = |name: &str| std::fs::File::create(d.join(name)).unwrap();
        let etcd = Command::new("/usr/bin/etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(d.join("etcd"))
            .args([
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
            ])
            .stdout(Stdio::from(log("etcd.log")))
            .stderr(Stdio::from(log("etcd.err")))
            .spawn()
            .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(d.join("sa.key"), key.serialize_pem()).unwrap();
        std::fs::write(d.join("sa.pub"), key.public_key_pem()).unwrap();
        std::fs::write(
            d.join("tokens.csv"),
            format!("{TOKEN},admin,admin,\"system:masters\"\n{VIEWER_TOKEN},viewer,viewer,\n"),
        )
        .unwrap();
        let api = Command::new(apiserver)
            .args([
                format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                "--insecure-port=0".into(),
                format!("--cert-dir={}", d.join("certs").display()),
                format!("--token-auth-file={}", d.join("tokens.csv").display()),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", d.join("sa.pub").display()),
                format!(
                    "--service-account-signing-key-file={}",
                    d.join("sa.key").display()
                ),
                "--service-cluster-ip-range=10.96.0.0/12".into(),
                // No controller-manager creates service account tokens here.
                "--disable-admission-plugins=ServiceAccount".into(),
                "--kubelet-preferred-address-types=InternalIP".into(),
            ])
            .stdout(Stdio::from(log("apiserver.log")))
            .stderr(Stdio::from(log("apiserver.err")))
            .spawn()
            .unwrap();
        let kubeconfig_for = |file: &str, token: &str| {
            let path = d.join(file);
            std::fs::write(
                &path,
                format!(
                    "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{api_port}\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: user\n"
                ),
            )
            .unwrap();
            path
        };
        let kubeconfig = kubeconfig_for("kubeconfig", TOKEN);
        let viewer_kubeconfig = kubeconfig_for("viewer-kubeconfig", VIEWER_TOKEN);
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let cluster = Cluster {
            children: vec![etcd, api],
            dir,
            kubeconfig,
            viewer_kubeconfig,
            client,
        };
        cluster.wait_ready().await;
        Some(cluster)
    }

    /// What the apiserver last logged: from its crash when it crashed, else the last lines.
    fn apiserver_log(&self) -> String {
        let err =
            std::fs::read_to_string(self.dir.path().join("apiserver.err")).unwrap_or_default();
        let lines: Vec<&str> = err.lines().collect();
        let from = lines
            .iter()
            .position(|l| l.starts_with("fatal error") || l.starts_with("panic"))
            .unwrap_or(lines.len().saturating_sub(20));
        lines[from..lines.len().min(from + 40)].join("\n")
    }

    /// Until the apiserver serves and has made its system namespaces (it makes them a moment
    /// after it starts serving; a pod created in kube-system before then is refused).
    async fn wait_ready(&self) {
        let started = Instant::now();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        loop {
            if namespaces.get("kube-system").await.is_ok()
                && namespaces.get("default").await.is_ok()
            {
                return;
            }
            if started.elapsed() > Duration::from_secs(90) {
                panic!("apiserver not ready:\n{}", self.apiserver_log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Registers a Node whose kubelet is `kubelet`.
    pub async fn add_node(&self, name: &str, kubelet: &Kubelet) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}},
            "conditions": [{"type": "Ready", "status": "True"}]
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    /// Creates a running pod on `node` with one container.
    pub async fn add_pod(&self, p: TestPod<'_>, node: &str) {
        let TestPod {
            ns,
            name,
            labels,
            ip,
            container,
            owner,
        } = p;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
        if let Some((api_version, kind, owner_name, uid)) = owner {
            metadata["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
                "name": owner_name, "uid": uid, "controller": true}]);
        }
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": container, "image": "registry.k8s.io/coredns/coredns:v1.11.1"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let status = json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": "2024-05-14T08:00:00Z",
            "containerStatuses": [{"name": container, "ready": true, "restartCount": 0,
                "image": "registry.k8s.io/coredns/coredns:v1.11.1", "imageID": "",
                "state": {"running": {"startedAt": "2024-05-14T08:00:00Z"}}}]
        }});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    pub async fn add_namespace(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name}}))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    /// Creates any namespaced object from its JSON; returns it as stored (with its uid).
    pub async fn create<K>(&self, ns: &str, object: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let object: K = serde_json::from_value(object).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap()
    }

    /// The API of any object's kind (core, CRDs, custom resources), waiting while its kind
    /// is not served yet (a CRD just created).
    async fn api_for(&self, object: &serde_json::Value) -> Api<kube::api::DynamicObject> {
        use kube::api::GroupVersionKind;
        let api_version = object["apiVersion"].as_str().unwrap().to_string();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let started = Instant::now();
        let (resource, caps) = loop {
            match kube::discovery::pinned_kind(&self.client, &gvk).await {
                Ok(found) => break found,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("{gvk:?} never served: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        match object["metadata"]["namespace"].as_str() {
            Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Creates any object from its JSON.
    pub async fn apply(&self, object: serde_json::Value) {
        let api = self.api_for(&object).await;
        let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
        let started = Instant::now();
        // A CRD's resources may be discoverable a moment before they accept objects.
        loop {
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => return,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!(
                        "cannot create {:?}: {e}\n{}",
                        object.metadata.name,
                        self.apiserver_log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A server-side dry run of applying the object (created or updated, nothing stored):
    /// the apiserver's validation and defaulting, or its refusal.
    pub async fn dry_run(&self, object: &serde_json::Value) -> Result<(), kube::Error> {
        let api = self.api_for(object).await;
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let params = PatchParams::apply("egress-scout-tests").force().dry_run();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .map(drop)
    }

    /// The object as a server-side dry run of creating it would store it (defaults applied,
    /// unknown fields pruned), or the refusal.
    pub async fn dry_run_create(
        &self,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, kube::Error> {
        let api = self.api_for(object).await;
        let typed: kube::api::DynamicObject = serde_json::from_value(object.clone()).unwrap();
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let stored = api.create(&params, &typed).await?;
        Ok(serde_json::to_value(stored).unwrap())
    }

    pub async fn delete_pod(&self, ns: &str, name: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        pods.delete(name, &Default::default()).await.unwrap();
    }
}

/// A pod to create: one container, running, with an IP and maybe a controller.
pub struct TestPod<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub labels: serde_json::Value,
    pub ip: &'a str,
    pub container: &'a str,
    /// (apiVersion, kind, name, uid) of its controller.
    pub owner: Option<(&'a str, &'a str, &'a str, &'a str)>,
}

/// Log lines of one container: (RFC3339Nano time, text).
type Lines = Vec<(String, String)>;

#[derive(Default)]
struct Logs {
    lines: HashMap<(String, String, String), Lines>,
    /// Containers whose open stream is to end now, as when a connection drops.
    cut: std::collections::HashSet<(String, String, String)>,
    streams_opened: usize,
}

/// A test kubelet: `GET /containerLogs/{ns}/{pod}/{container}` over HTTPS, with `follow`,
/// `timestamps` and `sinceTime` (resolved to the second, as the real one receives it).
pub struct Kubelet {
    pub port: u16,
    logs: Arc<Mutex<Logs>>,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

#[derive(serde::Deserialize)]
struct LogQuery {
    follow: Option<bool>,
    timestamps: Option<bool>,
    #[serde(rename = "sinceTime")]
    since_time: Option<String>,
}

impl Kubelet {
    pub async fn start() -> Kubelet {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.cert.pem().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let logs = Arc::new(Mutex::new(Logs::default()));
        let app = Router::new()
            .route("/containerLogs/{ns}/{pod}/{container}", get(serve_logs))
            .with_state(logs.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone())
            .serve(app.into_make_service());
        tokio::spawn(server);
        Kubelet { port, logs, handle }
    }

    /// Appends a line stamped now.
    pub fn log(&self, ns: &str, pod: &str, container: &str, text: &str) {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        self.logs
            .lock()
            .unwrap()
            .lines
            .entry(key)
            .or_default()
            .push((now, text.to_string()));
    }

    /// Ends the open log stream of this container, as when a connection drops.
    pub fn cut(&self, ns: &str, pod: &str, container: &str) {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        self.logs.lock().unwrap().cut.insert(key);
    }

    pub fn streams_opened(&self) -> usize {
        self.logs.lock().unwrap().streams_opened
    }
}

async fn serve_logs(
    State(logs): State<Arc<Mutex<Logs>>>,
    UrlPath((ns, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Body {
    let key = (ns, pod, container);
    // The apiserver forwards sinceTime in RFC3339 seconds.
    let since = q.since_time.as_deref().and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    });
    logs.lock().unwrap().streams_opened += 1;
    let follow = q.follow.unwrap_or(false);
    let timestamps = q.timestamps.unwrap_or(false);
    let state = (logs, key, 0usize);
    let stream = futures_util::stream::unfold(state, move |(logs, key, mut next)| async move {
        loop {
            let line = {
                let mut l = logs.lock().unwrap();
                if l.cut.remove(&key) {
                    return None;
                }
                l.lines.get(&key).and_then(|v| v.get(next).cloned())
            };
            match line {
                Some((t, text)) => {
                    next += 1;
                    let stamp = time::OffsetDateTime::parse(
                        &t,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap();
                    if since.is_some_and(|s| stamp < s) {
                        continue;
                    }
                    let out = if timestamps {
                        format!("{t} {text}\n")
                    } else {
                        format!("{text}\n")
                    };
                    return Some((Ok::<_, std::io::Error>(out), (logs, key, next)));
                }
                None if follow => tokio::time::sleep(Duration::from_millis(20)).await,
                None => return None,
            }
        }
    });
    Body::from_stream(stream)
}
