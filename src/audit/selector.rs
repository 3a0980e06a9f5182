//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), as NetworkPolicies and
//! Cilium policies use them to pick pods.

use std::collections::BTreeMap;

use serde_json::Value;

/// Whether `selector` selects a pod with `labels`; an empty selector selects every pod.
/// Cilium writes keys with a source prefix (`k8s:app`, `any:app`): `cilium` strips it.
pub fn matches(selector: &Value, labels: &BTreeMap<String, String>, cilium: bool) -> bool {
    let key = |k: &str| -> String {
        let k = if cilium {
            k.strip_prefix("k8s:")
                .or_else(|| k.strip_prefix("any:"))
                .unwrap_or(k)
        } else {
            k
        };
        k.to_string()
    };
    if let Some(wanted) = selector.get("matchLabels").and_then(Value::as_object) {
        let all = wanted
            .iter()
            .all(|(k, v)| labels.get(&key(k)).map(String::as_str) == v.as_str());
        if !all {
            return false;
        }
    }
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    expressions.into_iter().flatten().all(|e| {
        let k = key(e.get("key").and_then(Value::as_str).unwrap_or_default());
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = labels.get(&k).map(String::as_str);
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            // An operator this audit does not know selects nothing: the pod stays reported.
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_expressions() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        assert!(matches(&json!({}), &pod, false));
        assert!(matches(
            &json!({"matchLabels": {"app": "web"}}),
            &pod,
            false
        ));
        assert!(!matches(
            &json!({"matchLabels": {"app": "db"}}),
            &pod,
            false
        ));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(matches(&expr("In", json!(["front", "x"])), &pod, false));
        assert!(!matches(&expr("NotIn", json!(["front"])), &pod, false));
        assert!(matches(&expr("Exists", json!(null)), &pod, false));
        assert!(!matches(&expr("DoesNotExist", json!(null)), &pod, false));
        assert!(!matches(&expr("Gt", json!(["1"])), &pod, false));
        assert!(matches(
            &json!({"matchLabels": {"k8s:app": "web"}}),
            &pod,
            true
        ));
        assert!(!matches(
            &json!({"matchLabels": {"k8s:app": "web"}}),
            &pod,
            false
        ));
    }
}
