//! The `prometheus_query` source: instant queries to a Prometheus server's HTTP API on an
//! interval. Each series is a counter of calls from a workload to a destination (Istio's
//! `istio_requests_total`, Envoy's per-cluster upstream connections); what it grew by since
//! the previous query becomes one finding with that count. A counter that went down was
//! reset (its pod restarted): all of its new value is new. At the first query, what grew
//! over `lookback_secs` before it counts, from `increase()`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::time::Duration;

use serde::Deserialize;

use super::SourceCtx;
use crate::capture::finding::{Finding, MeshCalls};
use crate::config::PrometheusQuerySourceConfig;
use crate::telemetry::RateLimitedWarn;

type Labels = BTreeMap<String, String>;

/// The HTTP client for the server: its CA, a client certificate, the query timeout.
pub fn client(cfg: &PrometheusQuerySourceConfig) -> io::Result<reqwest::Client> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .user_agent(concat!("egress-scout/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = &cfg.tls {
        if let Some(ca) = &tls.ca {
            let certs =
                reqwest::Certificate::from_pem_bundle(&read(ca)?).map_err(io::Error::other)?;
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            builder =
                builder.identity(reqwest::Identity::from_pem(&pem).map_err(io::Error::other)?);
        }
    }
    builder.build().map_err(io::Error::other)
}

pub async fn run(
    cfg: PrometheusQuerySourceConfig,
    client: reqwest::Client,
    ctx: SourceCtx,
) -> io::Result<()> {
    let mut counters = Counters::default();
    let mut warn = RateLimitedWarn::default();
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(source = %ctx.stats.name, url = %cfg.url, "querying prometheus");
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let first = !counters.started;
        let mut findings = Vec::new();
        let mut failed = None;
        for (i, query) in cfg.queries.iter().enumerate() {
            let grown = (first && cfg.lookback_secs > 0)
                .then(|| format!("increase(({query})[{}s])", cfg.lookback_secs));
            let result = async {
                let now = instant(&client, &cfg, query).await?;
                let before = match &grown {
                    Some(q) => Some(instant(&client, &cfg, q).await?),
                    None => None,
                };
                Ok::<_, String>((now, before))
            }
            .await;
            match result {
                Ok((now, before)) => counters.update(i, now, before, first, &mut findings),
                Err(e) => failed = Some(format!("{query}: {e}")),
            }
        }
        // A query that failed keeps its counters: its growth is counted at the next success.
        if let Some(e) = failed
            && warn.should_log()
        {
            tracing::warn!(source = %ctx.stats.name, so_far = warn.seen(), "prometheus query failed: {e}");
        }
        counters.started = true;
        if !findings.is_empty() && !ctx.send_findings(findings, false).await {
            return Ok(());
        }
    }
    ctx.send_findings(Vec::new(), true).await;
    Ok(())
}

/// One series of an instant vector: labels, evaluation time (seconds), value.
struct Sample {
    labels: Labels,
    time: f64,
    value: f64,
}

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: Labels,
    value: (f64, String),
}

/// Runs one instant query; the token is read at every query (it may be rotated).
async fn instant(
    client: &reqwest::Client,
    cfg: &PrometheusQuerySourceConfig,
    query: &str,
) -> Result<Vec<Sample>, String> {
    let url = format!("{}/api/v1/query", cfg.url.trim_end_matches('/'));
    let mut request = client.post(url).form(&[("query", query)]);
    if let Some(path) = &cfg.bearer_token_file {
        let token =
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        request = request.bearer_auth(token.trim());
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Response = response
        .json()
        .await
        .map_err(|e| format!("HTTP {status}, not Prometheus' JSON: {e}"))?;
    if body.status != "success" {
        return Err(body.error.unwrap_or(body.status));
    }
    let data = body.data.ok_or("no data")?;
    if data.result_type != "vector" {
        return Err(format!(
            "a {} result; the query must return an instant vector",
            data.result_type
        ));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|s| {
            let value = s.value.1.parse::<f64>().ok().filter(|v| v.is_finite())?;
            Some(Sample {
                labels: s.metric,
                time: s.value.0,
                value,
            })
        })
        .collect())
}

/// The last value of every series, by query and labels (less `__name__`, which
/// `increase()` drops).
#[derive(Default)]
struct Counters {
    last: HashMap<(usize, Labels), f64>,
    started: bool,
}

impl Counters {
    /// Turns one query's series into findings of what they grew by. `before`, at the first
    /// query, is their `increase()` over the lookback.
    fn update(
        &mut self,
        query: usize,
        now: Vec<Sample>,
        before: Option<Vec<Sample>>,
        first: bool,
        out: &mut Vec<Finding>,
    ) {
        let grown: HashMap<Labels, f64> = before
            .into_iter()
            .flatten()
            .map(|s| (s.labels, s.value))
            .collect();
        let mut seen = HashMap::with_capacity(now.len());
        for mut s in now {
            s.labels.remove("__name__");
            let key = (query, s.labels);
            let increase = match self.last.get(&key) {
                Some(&last) if s.value >= last => s.value - last,
                // Reset: the counter started again from zero.
                Some(_) => s.value,
                None if first => grown.get(&key.1).copied().unwrap_or(0.0),
                // A series new since the first query: all of it is new.
                None => s.value,
            };
            if let Some(calls) = calls(&key.1, s.time, increase) {
                out.push(Finding::MeshCalls(calls));
            }
            seen.insert(key, s.value);
        }
        // Series gone from the answer are forgotten: back, they start from zero.
        self.last.retain(|(q, _), _| *q != query);
        self.last.extend(seen);
    }
}

/// What a series says by its labels, when its counter grew.
fn calls(labels: &Labels, time: f64, increase: f64) -> Option<MeshCalls> {
    if increase <= 0.0 || !increase.is_finite() {
        return None;
    }
    let get = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
    let series = labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",");
    Some(MeshCalls {
        time_ns: (time * 1e9) as i64,
        namespace: get(&[
            "source_workload_namespace",
            "namespace",
            "kubernetes_namespace",
        ]),
        workload: get(&["source_workload"]),
        pod: get(&["pod", "pod_name", "kubernetes_pod_name"]),
        service: get(&["destination_service", "cluster_name"]),
        service_name: get(&["destination_service_name"]),
        port: get(&["destination_port"]).and_then(|p| p.parse().ok()),
        // increase() extrapolates: 0.4 of a call is still one.
        count: (increase.round() as u64).max(1),
        series: format!("{{{series}}}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dest: &str, value: f64) -> Sample {
        let labels = [
            ("__name__", "istio_requests_total"),
            ("source_workload", "checkout"),
            ("source_workload_namespace", "shop"),
            ("destination_service", dest),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Sample {
            labels,
            time: 1_700_000_000.5,
            value,
        }
    }

    fn counts(out: &[Finding]) -> Vec<(String, u64)> {
        out.iter()
            .map(|f| match f {
                Finding::MeshCalls(m) => (m.service.clone().unwrap(), m.count),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn growth_resets_and_new_series() {
        let mut c = Counters::default();
        let mut out = Vec::new();
        // First query: the lookback's increase counts, the raw values are the baseline.
        let mut grown = sample("a.example.com", 2.6);
        grown.labels.remove("__name__");
        c.update(
            0,
            vec![
                sample("a.example.com", 40.0),
                sample("idle.example.com", 9.0),
            ],
            Some(vec![grown]),
            true,
            &mut out,
        );
        assert_eq!(counts(&out), [("a.example.com".into(), 3)]);
        out.clear();
        // Later: growth, a reset (pod restarted), a new series, an idle one.
        c.update(
            0,
            vec![
                sample("a.example.com", 45.0),
                sample("idle.example.com", 2.0),
                sample("new.example.com", 4.0),
            ],
            None,
            false,
            &mut out,
        );
        assert_eq!(
            counts(&out),
            [
                ("a.example.com".into(), 5),
                ("idle.example.com".into(), 2),
                ("new.example.com".into(), 4)
            ]
        );
        out.clear();
        c.update(
            0,
            vec![sample("a.example.com", 45.0)],
            None,
            false,
            &mut out,
        );
        assert!(out.is_empty());
        // Gone and back: from zero.
        c.update(
            0,
            vec![sample("new.example.com", 1.0)],
            None,
            false,
            &mut out,
        );
        assert_eq!(counts(&out), [("new.example.com".into(), 1)]);
    }

    #[test]
    fn labels_of_istio_and_envoy_series() {
        let labels: Labels = [
            ("cluster_name", "outbound|443||api.example.com"),
            ("namespace", "shop"),
            ("pod", "checkout-7d9f-abcde"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = calls(&labels, 1.0, 3.0).unwrap();
        assert_eq!(m.service.as_deref(), Some("outbound|443||api.example.com"));
        assert_eq!(m.namespace.as_deref(), Some("shop"));
        assert_eq!(m.pod.as_deref(), Some("checkout-7d9f-abcde"));
        assert_eq!(m.workload, None);
        assert_eq!(m.time_ns, 1_000_000_000);
        assert!(calls(&labels, 1.0, 0.0).is_none());
    }
}
