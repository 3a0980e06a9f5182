//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), as NetworkPolicies,
//! AdminNetworkPolicies and Cilium policies use them to pick pods and namespaces.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// How a selector's keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Kubernetes,
    /// Cilium writes keys with a source prefix (`k8s:app`, `any:app`): stripped.
    Cilium,
}

fn key(k: &str, keys: Keys) -> &str {
    match keys {
        Keys::Kubernetes => k,
        Keys::Cilium => k
            .strip_prefix("k8s:")
            .or_else(|| k.strip_prefix("any:"))
            .unwrap_or(k),
    }
}

/// Whether `selector` selects an object with `labels`; an empty selector selects all.
/// An operator this model does not know selects nothing.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>, keys: Keys) -> bool {
    let get = |k: &str| labels.get(key(k, keys)).map(String::as_str);
    let wanted = selector.match_labels.iter().flatten();
    if !wanted.into_iter().all(|(k, v)| get(k) == Some(v.as_str())) {
        return false;
    }
    selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let have = get(&e.key);
        let listed = |h: &str| values.iter().any(|v| v == h);
        match e.operator.as_str() {
            "In" => have.is_some_and(listed),
            "NotIn" => have.is_none_or(|h| !listed(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn labels_and_expressions() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let k = Keys::Kubernetes;
        assert!(matches(&sel(json!({})), &pod, k));
        assert!(matches(
            &sel(json!({"matchLabels": {"app": "web"}})),
            &pod,
            k
        ));
        assert!(!matches(
            &sel(json!({"matchLabels": {"app": "db"}})),
            &pod,
            k
        ));
        let expr = |op: &str, values: Value| {
            sel(json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]}))
        };
        assert!(matches(&expr("In", json!(["front", "x"])), &pod, k));
        assert!(!matches(&expr("NotIn", json!(["front"])), &pod, k));
        assert!(matches(&expr("Exists", json!(null)), &pod, k));
        assert!(!matches(&expr("DoesNotExist", json!(null)), &pod, k));
        assert!(!matches(&expr("Gt", json!(["1"])), &pod, k));
        let prefixed = sel(json!({"matchLabels": {"k8s:app": "web"}}));
        assert!(matches(&prefixed, &pod, Keys::Cilium));
        assert!(!matches(&prefixed, &pod, k));
    }
}
