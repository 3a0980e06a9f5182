//! The IP->name cache: external names learned from DNS answers (Hubble DNS flows), so a
//! connection known only by its destination IP is reported by the name it was resolved from.
//! Bounded (two generations: the older is dropped when the newer fills) and honouring TTLs,
//! with a grace period, because connections outlive the record that led to them.

use std::collections::HashMap;
use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use crate::egress::Learned;

/// How long past its TTL an answer still names its addresses.
const GRACE: Duration = Duration::minutes(5);

pub struct NameCache {
    current: HashMap<IpAddr, Named>,
    previous: HashMap<IpAddr, Named>,
    generation: usize,
}

struct Named {
    name: String,
    until: OffsetDateTime,
}

impl NameCache {
    /// Remembers at least the last `capacity / 2` addresses learned.
    pub fn new(capacity: usize) -> Self {
        NameCache {
            current: HashMap::new(),
            previous: HashMap::new(),
            generation: (capacity / 2).max(1),
        }
    }

    pub fn learn(&mut self, answer: Learned) {
        let until = answer.time + Duration::seconds(answer.ttl.into()) + GRACE;
        for ip in answer.ips {
            if self.current.len() >= self.generation {
                self.previous = std::mem::take(&mut self.current);
            }
            self.current.insert(
                ip,
                Named {
                    name: answer.name.clone(),
                    until,
                },
            );
        }
    }

    /// The name `ip` was resolved from, if that answer is still valid at `at`.
    pub fn name_of(&self, ip: IpAddr, at: OffsetDateTime) -> Option<&str> {
        let named = self.current.get(&ip).or_else(|| self.previous.get(&ip))?;
        (at <= named.until).then_some(named.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(name: &str, ip: &str, secs: i64) -> Learned {
        Learned {
            name: name.into(),
            ips: vec![ip.parse().unwrap()],
            ttl: 30,
            time: OffsetDateTime::from_unix_timestamp(secs).unwrap(),
        }
    }

    #[test]
    fn names_until_ttl_and_grace_and_stays_bounded() {
        let mut cache = NameCache::new(4);
        cache.learn(answer("a.example.com", "192.0.2.1", 0));
        let ip = "192.0.2.1".parse().unwrap();
        let at = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert_eq!(cache.name_of(ip, at(10)), Some("a.example.com"));
        assert_eq!(cache.name_of(ip, at(30 + 300)), Some("a.example.com"));
        assert_eq!(cache.name_of(ip, at(30 + 301)), None);
        for i in 2..=5 {
            cache.learn(answer("b.example.com", &format!("192.0.2.{i}"), 0));
        }
        assert_eq!(
            cache.name_of(ip, at(10)),
            None,
            "the oldest generation is gone"
        );
        assert!(cache.current.len() + cache.previous.len() <= 4);
    }
}
