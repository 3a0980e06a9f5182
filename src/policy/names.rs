//! Each dialect's rule for matching a DNS name against a pattern. Names and patterns
//! compare lower-case, with or without the trailing dot.

/// Lower-case, without the trailing dot.
pub fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Cilium `matchName` (exact) or `matchPattern`: `*` alone matches every name; a leading
/// `**.` spans one or more labels (Cilium 1.19); elsewhere `*` is zero or more DNS
/// characters and never crosses a dot.
pub fn cilium_pattern(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (normalise(pattern), normalise(name));
    if pattern == "*" {
        return true;
    }
    if let Some(rest) = pattern.strip_prefix("**.") {
        // One or more whole labels, then `rest` over the remaining labels.
        let labels: Vec<&str> = name.split('.').collect();
        return (1..labels.len()).any(|i| glob(rest.as_bytes(), labels[i..].join(".").as_bytes()));
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

/// `*` matches a run of characters other than `.`.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            let run = name.iter().take_while(|&&c| c != b'.').count();
            (0..=run).any(|n| glob(rest, &name[n..]))
        }
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// AdminNetworkPolicy `domainNames`: exact, or a leading `*.` spanning one or more whole
/// labels (`*.kubernetes.io` matches `a.b.kubernetes.io`, not `kubernetes.io`).
pub fn admin_domain(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (normalise(pattern), normalise(name));
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => {
            name.len() > suffix.len() && name.ends_with(suffix)
        }
        _ => pattern == name,
    }
}

/// An Istio host (ServiceEntry `hosts`, Sidecar dnsName): `*` every host, a leading `*.`
/// any name under the suffix, else exact. `host` may itself be a wildcard host, which a
/// pattern covers only when its suffix covers the whole wildcard (a Sidecar's
/// `en.wikipedia.org` does not admit `*.wikipedia.org`).
pub fn istio_host(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (normalise(pattern), normalise(host));
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cilium_star_stays_in_its_label() {
        let cases = [
            ("*.cilium.io", "sub.cilium.io", true),
            ("*.cilium.io", "cilium.io", false),
            ("*.cilium.io", "a.b.cilium.io", false),
            ("*", "anything.at.all", true),
            ("api-*.example.com", "api-eu.example.com", true),
            ("api-*.example.com", "api-.example.com", true),
            ("api-*.example.com", "api.eu.example.com", false),
            ("**.cilium.io", "a.b.cilium.io", true),
            ("**.cilium.io", "sub.cilium.io", true),
            ("**.cilium.io", "cilium.io", false),
            ("Api.Example.COM.", "api.example.com", true),
            ("api.example.com", "API.example.com.", true),
            ("api.example.com", "xapi.example.com", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(cilium_pattern(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn admin_wildcard_spans_labels() {
        assert!(admin_domain("*.kubernetes.io", "a.b.kubernetes.io"));
        assert!(admin_domain("*.kubernetes.io", "docs.kubernetes.io"));
        assert!(!admin_domain("*.kubernetes.io", "kubernetes.io"));
        assert!(admin_domain("kubernetes.io.", "Kubernetes.IO"));
        assert!(!admin_domain("kubernetes.io", "docs.kubernetes.io"));
    }

    #[test]
    fn istio_hosts_and_wildcard_hosts() {
        assert!(istio_host("*.wikipedia.org", "en.wikipedia.org"));
        assert!(istio_host("*.wikipedia.org", "a.b.wikipedia.org"));
        assert!(!istio_host("*.wikipedia.org", "wikipedia.org"));
        assert!(istio_host("*", "x.y"));
        // Sidecar host against a ServiceEntry host (network-config-analyzer's cases).
        assert!(!istio_host("en.wikipedia.org", "*.wikipedia.org"));
        assert!(istio_host("*.facebook.com", "api.facebook.com"));
        assert!(istio_host("*.facebook.com", "*.api.facebook.com"));
    }
}
