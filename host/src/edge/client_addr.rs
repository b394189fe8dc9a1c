//! Who a client is, by network address, and the optional cap on connections per address
//! (`--max-connections-per-client`). Behind a reverse proxy every connection comes from the
//! proxy, so `X-Forwarded-For` names the client, but only when the peer is a configured
//! `--trusted-proxy`: anyone else could write any address there.

use crate::lock::lock;
use hyper::header::HeaderMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The client's address: the peer's, or for a trusted proxy the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy (entries left of it were written by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // From the right: proxies we trust append; the first entry that is not an address stops
    // the walk (skipping it would let a client-written entry further left count).
    for entry in entries.into_iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

/// Connections counted per client address; `limit` 0 counts nothing.
pub struct AddressSlots {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the place back.
pub struct AddressSlot {
    slots: Arc<AddressSlots>,
    ip: Option<IpAddr>,
}

impl AddressSlots {
    pub fn new(limit: usize) -> Arc<AddressSlots> {
        Arc::new(AddressSlots { limit, counts: Mutex::new(HashMap::new()) })
    }

    /// A place for one more connection from `ip`, or `None` when it has `limit` already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if self.limit == 0 {
            return Some(AddressSlot { slots: self.clone(), ip: None });
        }
        let mut counts = lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot { slots: self.clone(), ip: Some(ip) })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut counts = lock(&self.slots.counts);
        if let Some(n) = counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 10.0.0.7, 10.0.0.1".parse().expect("header"));
        let proxies = [ip("127.0.0.1"), ip("10.0.0.1")];
        assert_eq!(client_ip(ip("127.0.0.1"), &headers, &proxies), ip("10.0.0.7"));
        assert_eq!(client_ip(ip("192.0.2.9"), &headers, &proxies), ip("192.0.2.9"), "not a proxy: ignored");
        assert_eq!(client_ip(ip("127.0.0.1"), &HeaderMap::new(), &proxies), ip("127.0.0.1"));
        let mut odd = HeaderMap::new();
        odd.insert("x-forwarded-for", "6.6.6.6, unknown".parse().expect("header"));
        assert_eq!(client_ip(ip("127.0.0.1"), &odd, &proxies), ip("127.0.0.1"), "no skipping past garbage");
    }

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let slots = AddressSlots::new(2);
        let a1 = slots.take(ip("10.0.0.1"));
        let _a2 = slots.take(ip("10.0.0.1"));
        assert!(slots.take(ip("10.0.0.1")).is_none());
        assert!(slots.take(ip("10.0.0.2")).is_some());
        drop(a1);
        assert!(slots.take(ip("10.0.0.1")).is_some());
        let unlimited = AddressSlots::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.take(ip("10.0.0.1"))).collect();
        assert!(held.iter().all(Option::is_some));
    }
}
