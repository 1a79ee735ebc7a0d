//! Consensus counters and gauges, rendered in the Prometheus text format by
//! the node's metrics endpoint. Plain atomics: updated on the consensus path,
//! read by a scrape, no locks shared between the two.

use parking_lot::Mutex;
use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
    time::Instant,
};

/// Upper bounds (seconds) of the block-interval histogram buckets.
const INTERVAL_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0];

/// What consensus reports about itself.
#[derive(Default)]
pub struct ConsensusMetrics {
    height: AtomicU64,
    round: AtomicI64,
    committed: AtomicU64,
    synced: AtomicU64,
    invalid_proposals: AtomicU64,
    equivocations: AtomicU64,
    validators: AtomicU64,
    missing_validators: AtomicU64,
    peers: AtomicU64,
    peer_validators: AtomicU64,
    network_height: AtomicU64,
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    disconnected: Mutex<BTreeMap<&'static str, u64>>,
    interval: Mutex<Interval>,
}

#[derive(Default)]
struct Interval {
    last: Option<Instant>,
    buckets: [u64; INTERVAL_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl ConsensusMetrics {
    /// The height and round consensus is in.
    pub fn set_round(&self, height: u64, round: i64) {
        self.height.store(height, Ordering::Relaxed);
        self.round.store(round, Ordering::Relaxed);
    }

    /// A block was committed through consensus.
    pub fn committed(&self) {
        self.committed.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut iv = self.interval.lock();
        if let Some(last) = iv.last.replace(now) {
            let secs = now.duration_since(last).as_secs_f64();
            iv.count += 1;
            iv.sum += secs;
            for (i, bound) in INTERVAL_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    iv.buckets[i] += 1;
                }
            }
        }
    }

    /// A block was taken from a peer by value sync.
    pub fn synced(&self) {
        self.synced.fetch_add(1, Ordering::Relaxed);
    }

    /// A proposed block failed re-execution.
    pub fn invalid_proposal(&self) {
        self.invalid_proposals.fetch_add(1, Ordering::Relaxed);
    }

    /// Pieces of double-signing evidence seen.
    pub fn equivocations(&self, n: usize) {
        self.equivocations.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A message was dropped, for `reason`.
    pub fn dropped_message(&self, reason: &'static str) {
        *self.dropped.lock().entry(reason).or_default() += 1;
    }

    /// A peer was disconnected for sending an invalid message, for `reason`.
    pub fn peer_disconnected(&self, reason: &'static str) {
        *self.disconnected.lock().entry(reason).or_default() += 1;
    }

    /// The size of the validator set and how many of them did not sign the last commit.
    pub fn set_validators(&self, total: usize, missing: usize) {
        self.validators.store(total as u64, Ordering::Relaxed);
        self.missing_validators.store(missing as u64, Ordering::Relaxed);
    }

    /// Connected consensus peers.
    pub fn set_peers(&self, n: usize) {
        self.peers.store(n as u64, Ordering::Relaxed);
    }

    /// Validators this node is directly connected to (their proofs verified).
    pub fn set_peer_validators(&self, n: usize) {
        self.peer_validators.store(n as u64, Ordering::Relaxed);
    }

    /// The height the network has reached (see `NetworkHeight`).
    pub fn set_network_height(&self, height: u64) {
        self.network_height.store(height, Ordering::Relaxed);
    }

    /// The height consensus is deciding.
    pub fn consensus_height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }

    /// The height more than a third of the validators' power has signed messages at.
    pub fn network_height(&self) -> u64 {
        self.network_height.load(Ordering::Relaxed)
    }

    /// Blocks taken from peers by value sync so far.
    pub fn synced_blocks(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// Appends the metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let gauge = |out: &mut String, name: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        gauge(
            out,
            "metanode_consensus_height",
            "Height consensus is deciding.",
            self.height.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            out,
            "metanode_consensus_round",
            "Round at the current height.",
            self.round.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            out,
            "metanode_consensus_validators",
            "Validators in the set.",
            self.validators.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            out,
            "metanode_consensus_missing_validators",
            "Validators whose precommit is missing from the last commit certificate.",
            self.missing_validators.load(Ordering::Relaxed).to_string(),
        );
        gauge(out, "metanode_peers", "Connected consensus peers.", self.peers.load(Ordering::Relaxed).to_string());
        gauge(
            out,
            "metanode_consensus_peer_validators",
            "Validators directly connected on the consensus network, by verified validator proof.",
            self.peer_validators.load(Ordering::Relaxed).to_string(),
        );
        counter(
            out,
            "metanode_blocks_committed_total",
            "Blocks decided by consensus and committed.",
            self.committed.load(Ordering::Relaxed),
        );
        let (height, target) = (self.height.load(Ordering::Relaxed), self.network_height());
        gauge(
            out,
            "metanode_sync_target_height",
            "Highest height validators with over a third of the power signed messages at.",
            target.to_string(),
        );
        gauge(
            out,
            "metanode_sync_catching_up",
            "1 while this node is more than one height behind its peers.",
            u8::from(target > height + 1).to_string(),
        );
        counter(
            out,
            "metanode_sync_blocks_total",
            "Blocks taken from peers by catch-up.",
            self.synced.load(Ordering::Relaxed),
        );
        counter(
            out,
            "metanode_invalid_proposals_total",
            "Proposed blocks that failed re-execution.",
            self.invalid_proposals.load(Ordering::Relaxed),
        );
        counter(
            out,
            "metanode_equivocations_total",
            "Double votes or proposals detected.",
            self.equivocations.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP metanode_dropped_messages_total Consensus messages from peers dropped, by reason: bad_signature, non_validator, far_future, oversized, malformed, wrong_proposer, proposal_part, own_key_from_peer.\n# TYPE metanode_dropped_messages_total counter"
        );
        for (reason, n) in self.dropped.lock().iter() {
            let _ = writeln!(out, "metanode_dropped_messages_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP metanode_disconnected_peers_total Consensus peers disconnected for a provably invalid message, by reason: bad_signature, non_validator, wrong_proposer, proposal_part.\n# TYPE metanode_disconnected_peers_total counter"
        );
        for (reason, n) in self.disconnected.lock().iter() {
            let _ = writeln!(out, "metanode_disconnected_peers_total{{reason=\"{reason}\"}} {n}");
        }
        let iv = self.interval.lock();
        let _ = writeln!(
            out,
            "# HELP metanode_block_interval_seconds Time between consecutive committed blocks.\n# TYPE metanode_block_interval_seconds histogram"
        );
        for (bound, n) in INTERVAL_BUCKETS.iter().zip(iv.buckets) {
            let _ = writeln!(out, "metanode_block_interval_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "metanode_block_interval_seconds_bucket{{le=\"+Inf\"}} {}", iv.count);
        let _ = writeln!(out, "metanode_block_interval_seconds_sum {}", iv.sum);
        let _ = writeln!(out, "metanode_block_interval_seconds_count {}", iv.count);
    }
}
