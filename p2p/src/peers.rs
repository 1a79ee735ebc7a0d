//! What the swarm remembers about peers between events: rate-limit buckets,
//! rejected messages and bans with an expiry, and when to dial a configured
//! peer again. Plain bookkeeping over an explicit clock, so it is tested
//! without a network.

use libp2p::{swarm::ConnectionId, Multiaddr, PeerId};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Limits on what peers may do.
#[derive(Debug, Clone)]
pub struct PeerLimits {
    /// Most established inbound connections, and separately most outbound
    /// ones (libp2p's connection limits); at most two per peer (both sides
    /// may dial at once).
    pub max_peers: u32,
    /// Messages with an invalid transaction a peer may send before it is banned.
    pub max_rejects: u32,
    /// How long a banned peer stays disconnected and refused.
    pub ban_duration: Duration,
    /// Transactions per second a peer may send us; beyond it (after a burst
    /// of twice as many) its messages are ignored, not judged.
    pub txs_per_second: u32,
    /// First wait before dialing a configured peer again; doubled per
    /// failed or short-lived attempt.
    pub redial_min: Duration,
    /// Longest wait between dials.
    pub redial_max: Duration,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            max_peers: 50,
            max_rejects: 4,
            ban_duration: Duration::from_secs(600),
            txs_per_second: 20_000,
            redial_min: Duration::from_secs(1),
            redial_max: Duration::from_secs(60),
        }
    }
}

/// Per-peer token buckets, counted in transactions.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self { rate, burst: rate * 2.0, buckets: HashMap::new() }
    }

    /// Whether `peer` may send `cost` more transactions at `now`.
    pub(crate) fn allow(&mut self, peer: PeerId, cost: u32, now: Instant) -> bool {
        let (tokens, last) = self.buckets.entry(peer).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        let cost = f64::from(cost);
        if *tokens < cost {
            return false;
        }
        *tokens -= cost;
        true
    }

    /// Drops a disconnected peer's bucket.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

/// Rejected messages per peer, and the peers banned until when.
#[derive(Debug)]
pub(crate) struct Bans {
    max_rejects: u32,
    duration: Duration,
    rejects: HashMap<PeerId, u32>,
    until: HashMap<PeerId, Instant>,
}

impl Bans {
    pub(crate) fn new(max_rejects: u32, duration: Duration) -> Self {
        Self { max_rejects: max_rejects.max(1), duration, rejects: HashMap::new(), until: HashMap::new() }
    }

    /// Counts an invalid message from `peer`; true when it is now banned.
    pub(crate) fn reject(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.until.contains_key(&peer) {
            return false;
        }
        let n = self.rejects.entry(peer).or_default();
        *n += 1;
        if *n < self.max_rejects {
            return false;
        }
        self.rejects.remove(&peer);
        self.until.insert(peer, now + self.duration);
        true
    }

    /// Peers whose ban is over at `now`, forgotten here.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let over: Vec<PeerId> = self.until.iter().filter(|(_, t)| **t <= now).map(|(p, _)| *p).collect();
        for p in &over {
            self.until.remove(p);
        }
        over
    }

    /// Whether anyone is banned.
    pub(crate) fn any(&self) -> bool {
        !self.until.is_empty()
    }
}

/// Where one configured peer stands.
#[derive(Debug)]
enum Slot {
    /// Not connected; dial at the instant.
    Waiting(Instant),
    /// A dial is under way.
    Dialing(ConnectionId),
    /// Connected since the instant.
    Connected(ConnectionId, Instant),
}

#[derive(Debug)]
struct Configured {
    addr: Multiaddr,
    slot: Slot,
    failures: u32,
    peer: Option<PeerId>,
}

/// Dials configured peers with exponential backoff: a peer that refuses us
/// or drops us at once is dialed less and less often, one that stays
/// connected a while starts afresh.
#[derive(Debug)]
pub(crate) struct Redial {
    peers: Vec<Configured>,
    min: Duration,
    max: Duration,
}

/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);

impl Redial {
    pub(crate) fn new(addrs: Vec<Multiaddr>, min: Duration, max: Duration, now: Instant) -> Self {
        let peers = addrs
            .into_iter()
            .map(|addr| Configured { addr, slot: Slot::Waiting(now), failures: 0, peer: None })
            .collect();
        Self { peers, min, max }
    }

    /// The wait after `failures` failures in a row (at least one).
    fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
        min.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(max)
    }

    /// Addresses to dial now; `connected` tells whether a known peer is
    /// already connected (it dialed us), in which case it is not dialed.
    pub(crate) fn due(&mut self, now: Instant, connected: impl Fn(&PeerId) -> bool) -> Vec<(usize, Multiaddr)> {
        let mut out = Vec::new();
        for (i, p) in self.peers.iter_mut().enumerate() {
            if let Slot::Waiting(at) = p.slot {
                if at > now {
                    continue;
                }
                if p.peer.as_ref().is_some_and(&connected) {
                    p.slot = Slot::Waiting(now + self.min);
                    continue;
                }
                out.push((i, p.addr.clone()));
            }
        }
        out
    }

    /// A dial of peer `index` started as `id`.
    pub(crate) fn dialing(&mut self, index: usize, id: ConnectionId) {
        if let Some(p) = self.peers.get_mut(index) {
            p.slot = Slot::Dialing(id);
        }
    }

    /// A dial could not start at all.
    pub(crate) fn not_started(&mut self, index: usize, now: Instant) {
        let (min, max) = (self.min, self.max);
        if let Some(p) = self.peers.get_mut(index) {
            p.failures += 1;
            p.slot = Slot::Waiting(now + Self::backoff(min, max, p.failures));
        }
    }

    fn find(&mut self, id: ConnectionId) -> Option<&mut Configured> {
        self.peers.iter_mut().find(|p| matches!(p.slot, Slot::Dialing(c) | Slot::Connected(c, _) if c == id))
    }

    /// Connection `id` was established with `peer`.
    pub(crate) fn established(&mut self, id: ConnectionId, peer: PeerId, now: Instant) {
        if let Some(p) = self.find(id) {
            p.slot = Slot::Connected(id, now);
            p.peer = Some(peer);
        }
    }

    /// Connection `id` failed or closed: wait before the next dial, longer
    /// after each failure or short-lived connection.
    pub(crate) fn ended(&mut self, id: ConnectionId, now: Instant) {
        let (min, max) = (self.min, self.max);
        let Some(p) = self.find(id) else { return };
        match p.slot {
            Slot::Connected(_, since) if now.saturating_duration_since(since) >= STABLE => p.failures = 0,
            _ => p.failures += 1,
        }
        p.slot = Slot::Waiting(now + Self::backoff(min, max, p.failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_a_burst_then_the_rate() {
        let mut r = RateLimiter::new(100);
        let (peer, t0) = (PeerId::random(), Instant::now());
        assert!(r.allow(peer, 200, t0), "a burst of twice the rate");
        assert!(!r.allow(peer, 1, t0));
        assert!(r.allow(peer, 50, t0 + Duration::from_millis(500)));
        assert!(!r.allow(peer, 10, t0 + Duration::from_millis(500)));
        assert!(r.allow(PeerId::random(), 200, t0), "buckets are per peer");
    }

    #[test]
    fn bans_follow_repeated_rejects_and_expire() {
        let mut b = Bans::new(3, Duration::from_secs(10));
        let (peer, t0) = (PeerId::random(), Instant::now());
        assert!(!b.reject(peer, t0));
        assert!(!b.reject(peer, t0));
        assert!(b.reject(peer, t0), "the third invalid message bans");
        assert!(!b.reject(peer, t0), "banned once, not again");
        assert!(b.expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(b.expire(t0 + Duration::from_secs(10)), vec![peer]);
        assert!(!b.any());
    }

    #[test]
    fn redials_back_off_and_reset_after_a_stable_connection() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        let t0 = Instant::now();
        let mut r = Redial::new(vec![addr], min, max, t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let due = r.due(now, |_| false);
            assert_eq!(due.len(), 1, "dialed when due");
            let id = ConnectionId::new_unchecked(waits.len());
            r.dialing(0, id);
            assert!(r.due(now, |_| false).is_empty(), "not dialed twice at once");
            r.ended(id, now);
            let next = (1..=60).map(|s| now + Duration::from_secs(s)).find(|t| !r.due(*t, |_| false).is_empty());
            let next = next.unwrap();
            waits.push(next.duration_since(now).as_secs());
            now = next;
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
        // A connection that held resets the wait.
        let id = ConnectionId::new_unchecked(100);
        r.dialing(0, id);
        let peer = PeerId::random();
        r.established(id, peer, now);
        assert!(r.due(now + Duration::from_secs(100), |_| false).is_empty(), "connected: no dial");
        r.ended(id, now + STABLE);
        assert_eq!(r.due(now + STABLE + min, |_| false).len(), 1);
        // A known peer that is connected anyway (it dialed us) is not dialed.
        assert!(r.due(now + STABLE + min, |p| *p == peer).is_empty());
    }
}
