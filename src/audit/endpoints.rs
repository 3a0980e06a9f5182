//! Destinations named in configuration text (env values, arguments, log lines): URLs and
//! connection strings (parsed with the `url` crate, several hosts of a MongoDB or broker
//! list each on their own), `host:port` pairs and comma-separated broker lists, and, where the
//! variable's name says it holds one, a bare host. Hostnames are validated, never guessed
//! from a list of top-level domains; whether one is external is the classifier's call.

use std::net::IpAddr;

use crate::classify::is_valid_hostname;

/// A destination found in text. `scheme` is the URL scheme, when it came from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub host: Host,
    pub port: Option<u16>,
    pub scheme: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// Every destination in `text`. `bare_hosts`: a token that is only a hostname or an IP counts
/// too (an env variable named like `API_HOST`); elsewhere `config.yaml` would be a "host".
pub fn extract(text: &str, bare_hosts: bool) -> Vec<Named> {
    let mut out = Vec::new();
    let separators = |c: char| c.is_whitespace() || "\"'`<>(){};|=".contains(c);
    for token in text.split(separators) {
        let token = token.trim_end_matches(['.', ',', ':']);
        if token.is_empty() || token.len() > 2048 {
            continue;
        }
        if let Some(at) = token.find("://") {
            url_destinations(token, at, &mut out);
        } else {
            for part in token.split(',') {
                if let Some(found) = host_port(part).or_else(|| bare(part, bare_hosts)) {
                    out.push(found);
                }
            }
        }
    }
    out.dedup();
    out
}

/// A URL or connection string whose `://` is at `at`. The scheme is the run of scheme
/// characters before it (`jdbc:postgresql://` is postgresql).
fn url_destinations(token: &str, at: usize, out: &mut Vec<Named>) {
    let is_scheme_char = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    let start = token[..at]
        .rfind(|c: char| !is_scheme_char(c))
        .map_or(0, |i| i + 1);
    let scheme = token[start..at].to_ascii_lowercase();
    if scheme.is_empty() || !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return;
    }
    let default_port = default_port(&scheme);
    if let Ok(url) = url::Url::parse(&token[start..])
        && let Some(host) = url.host()
    {
        let host = match host {
            url::Host::Domain(d) => Host::Name(d.to_string()),
            url::Host::Ipv4(v4) => Host::Ip(v4.into()),
            url::Host::Ipv6(v6) => Host::Ip(v6.into()),
        };
        if valid(&host) {
            out.push(Named {
                host,
                port: url.port_or_known_default().or(default_port),
                scheme: Some(scheme),
            });
        }
        return;
    }
    // Several hosts in one authority (mongodb://a:27017,b:27017/db) are not a URL.
    let rest = &token[at + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    for part in hosts.split(',') {
        let found = host_port(part).or_else(|| bare(part, true));
        if let Some(mut found) = found {
            found.port = found.port.or(default_port);
            found.scheme = Some(scheme.clone());
            out.push(found);
        }
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(part: &str) -> Option<Named> {
    let (host, port) = part.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = parse_host(host)?;
    Some(Named {
        host,
        port: Some(port),
        scheme: None,
    })
}

fn bare(part: &str, allowed: bool) -> Option<Named> {
    if !allowed {
        return None;
    }
    let host = parse_host(part)?;
    // A bare single label is a word, not a host.
    if matches!(&host, Host::Name(n) if !n.contains('.')) {
        return None;
    }
    Some(Named {
        host,
        port: None,
        scheme: None,
    })
}

fn parse_host(host: &str) -> Option<Host> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Host::Ip(ip));
    }
    let host = Host::Name(host.to_ascii_lowercase());
    valid(&host).then_some(host)
}

/// A hostname per RFC 1123 whose last label is not all digits (RFC 3696: no top-level domain
/// is numeric, so `1.2.3` is a version, not a host). IPs are always valid.
fn valid(host: &Host) -> bool {
    match host {
        Host::Ip(_) => true,
        Host::Name(n) => {
            let n = n.strip_suffix('.').unwrap_or(n);
            is_valid_hostname(n)
                && !n.starts_with('-')
                && n.rsplit('.')
                    .next()
                    .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
        }
    }
}

/// Ports of schemes the `url` crate does not know, for connection strings without one.
fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "redis" | "rediss" => 6379,
        "amqp" => 5672,
        "amqps" => 5671,
        "mongodb" => 27017,
        "kafka" => 9092,
        "nats" => 4222,
        "mqtt" => 1883,
        "mqtts" => 8883,
        "ldap" => 389,
        "ldaps" => 636,
        "sqlserver" | "mssql" => 1433,
        "smtp" => 25,
        "smtps" => 465,
        "ssh" | "sftp" => 22,
        "ftp" => 21,
        _ => return None,
    })
}

/// Whether an environment variable's name says its value is a host (bare hosts count).
pub fn names_a_host(var: &str) -> bool {
    const HINTS: [&str; 10] = [
        "HOST", "ENDPOINT", "SERVER", "ADDR", "DOMAIN", "BROKER", "URL", "URI", "DSN", "REMOTE",
    ];
    let upper = var.to_ascii_uppercase();
    HINTS.iter().any(|h| upper.contains(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str, bare: bool) -> Vec<(String, Option<u16>)> {
        extract(text, bare)
            .into_iter()
            .map(|n| {
                let host = match n.host {
                    Host::Name(s) => s,
                    Host::Ip(ip) => ip.to_string(),
                };
                (host, n.port)
            })
            .collect()
    }

    fn h(host: &str, port: Option<u16>) -> (String, Option<u16>) {
        (host.to_string(), port)
    }

    #[test]
    fn connection_strings() {
        assert_eq!(
            hosts(
                "postgres://app:s3cret@db.example.com/app?sslmode=require",
                false
            ),
            [h("db.example.com", Some(5432))]
        );
        assert_eq!(
            hosts("jdbc:postgresql://pg.example.net:6543/x", false),
            [h("pg.example.net", Some(6543))]
        );
        assert_eq!(
            hosts("mongodb+srv://u:p@cluster0.abcde.mongodb.net/db", false),
            [h("cluster0.abcde.mongodb.net", None)]
        );
        assert_eq!(
            hosts(
                "mongodb://u:p@m1.example.org:27018,m2.example.org/db",
                false
            ),
            [
                h("m1.example.org", Some(27018)),
                h("m2.example.org", Some(27017))
            ]
        );
        assert_eq!(
            hosts("rediss://:pw@cache.example.com", false),
            [h("cache.example.com", Some(6379))]
        );
        assert_eq!(
            hosts("amqp://guest:guest@[2001:db8::5]:5673/vhost", false),
            [h("2001:db8::5", Some(5673))]
        );
    }

    #[test]
    fn host_ports_and_broker_lists() {
        assert_eq!(
            hosts(
                "b-1.kafka.example.com:9092,b-2.kafka.example.com:9094",
                false
            ),
            [
                h("b-1.kafka.example.com", Some(9092)),
                h("b-2.kafka.example.com", Some(9094))
            ]
        );
        assert_eq!(
            hosts("--upstream=203.0.113.7:8443", false),
            [h("203.0.113.7", Some(8443))]
        );
        assert!(hosts("at 12:30 or v1.2.3:80", false).is_empty());
    }

    #[test]
    fn bare_hosts_only_where_the_name_says_so() {
        assert_eq!(hosts("api.stripe.com", true), [h("api.stripe.com", None)]);
        assert!(hosts("api.stripe.com", false).is_empty());
        assert_eq!(hosts("203.0.113.9", true), [h("203.0.113.9", None)]);
        assert!(hosts("1.2.3 production", true).is_empty());
        assert!(names_a_host("PAYMENTS_API_URL") && names_a_host("db_host"));
        assert!(!names_a_host("LOG_LEVEL"));
    }

    #[test]
    fn hostile_text() {
        assert!(hosts("http://exa\u{7}mple.com/ https://", false).is_empty());
        assert!(hosts(&"a".repeat(5000), true).is_empty());
        assert!(hosts("::::,,,@@@://", true).is_empty());
    }
}
