//! Deterministic 4-validator consensus on Malachite's pure core (no clock, no network).

use std::collections::VecDeque;
use std::convert::Infallible;

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use futures::executor::block_on;

use malachitebft_app_channel::app::consensus as mc;
use malachitebft_app_channel::app::metrics::Metrics;
use malachitebft_core_types::{
    CommitCertificate, Context, NilOrVal, Round, ThresholdParams, Timeout, TimeoutKind, Validity, ValueOrigin,
    ValuePayload, VoteExtensionPolicy, VoteType,
};
use malachitebft_signing::{Signer, Verifier, VerifierExt};
use mc::{
    ConsensusMsg, Effect, Input, LivenessMsg, LocallyProposedValue, MisbehaviorEvidence, Params, ProposedValue,
    Resumable, Resume, SignedConsensusMsg, State,
};
use metanode_consensus::{
    BlockValue, Height, MetaContext, SignatureVerifier, Validator, ValidatorAddress, ValidatorSet, ValidatorSigner,
};

type Ctx = MetaContext;
const CHAIN_ID: u64 = 9928;

/// What a node asked to send, collected while `process!` holds its State.
enum Outgoing {
    Consensus(SignedConsensusMsg<Ctx>),
    Liveness(LivenessMsg<Ctx>),
}

/// A node's side of every effect. Lives next to the State, never inside it.
struct Io {
    signer: ValidatorSigner,
    verifier: SignatureVerifier,
    /// Scheduled timers. A Vec keeps the order deterministic (`Timeout` is not `Ord`).
    timers: Vec<Timeout>,
    outbox: Vec<Outgoing>,
    /// `GetValue` requests, answered with `Input::Propose` after the call returns.
    value_requests: Vec<(Height, Round)>,
    decided: Vec<CommitCertificate<Ctx>>,
    finalized: Vec<(CommitCertificate<Ctx>, MisbehaviorEvidence<Ctx>)>,
    rounds: Vec<(Height, Round, ValidatorAddress)>,
}

impl Io {
    fn new(signer: ValidatorSigner) -> Self {
        Self {
            signer,
            verifier: SignatureVerifier::new(CHAIN_ID),
            timers: Vec::new(),
            outbox: Vec::new(),
            value_requests: Vec::new(),
            decided: Vec::new(),
            finalized: Vec::new(),
            rounds: Vec::new(),
        }
    }

    /// Synchronous effect handler. Never returns `Err`: for typed effects that would make
    /// `process!` resume with `Continue` and abort the input with `UnexpectedResume`.
    fn handle(&mut self, effect: Effect<Ctx>) -> Result<Resume<Ctx>, Infallible> {
        let resume = match effect {
            // Answered later by a new Input; resume with () now.
            Effect::ScheduleTimeout(t, r) => {
                if !self.timers.contains(&t) {
                    self.timers.push(t);
                }
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                self.timers.retain(|x| *x != t);
                r.resume_with(())
            }
            Effect::CancelAllTimeouts(r) => {
                self.timers.clear();
                r.resume_with(())
            }
            Effect::GetValue(height, round, _timeout, r) => {
                self.value_requests.push((height, round));
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(msg, r) => {
                self.outbox.push(Outgoing::Consensus(msg));
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                self.outbox.push(Outgoing::Liveness(msg));
                r.resume_with(())
            }
            Effect::RepublishVote(vote, r) => {
                self.outbox.push(Outgoing::Liveness(LivenessMsg::Vote(vote)));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(cert, r) => {
                self.outbox.push(Outgoing::Liveness(LivenessMsg::SkipRoundCertificate(cert)));
                r.resume_with(())
            }
            // The simulator sends ProposedValue with every Proposal, so a restream adds nothing.
            Effect::RestreamProposal(.., r) => r.resume_with(()),
            Effect::Finalize(cert, _extensions, evidence, r) => {
                self.finalized.push((cert, evidence));
                r.resume_with(())
            }

            // Informational.
            Effect::StartRound(height, round, proposer, _role, r) => {
                self.rounds.push((height, round, proposer));
                r.resume_with(())
            }
            Effect::Decide(cert, _extensions, r) => {
                self.decided.push(cert);
                r.resume_with(())
            }
            Effect::WalAppend(_height, _input, r) => r.resume_with(()),
            Effect::CertVerifiedSyncValue(_, _, r) => r.resume_with(()),
            Effect::CertRejectedSyncValue(_, _, _, r) => r.resume_with(()),

            // Must be answered now, with a typed Resume.
            Effect::SignVote(vote, r) => r.resume_with(block_on(self.signer.sign_vote(vote)).expect("sign vote")),
            Effect::SignProposal(proposal, r) => {
                r.resume_with(block_on(self.signer.sign_proposal(proposal)).expect("sign proposal"))
            }
            Effect::VerifySignature(msg, public_key, r) => {
                let result = match &msg.message {
                    ConsensusMsg::Vote(v) => block_on(self.verifier.verify_signed_vote(v, &msg.signature, &public_key)),
                    ConsensusMsg::Proposal(p) => {
                        block_on(self.verifier.verify_signed_proposal(p, &msg.signature, &public_key))
                    }
                };
                r.resume_with(result.map(|v| v.is_valid()).unwrap_or(false))
            }
            Effect::VerifyCommitCertificate(cert, vs, th, r) => {
                r.resume_with(block_on(self.verifier.verify_commit_certificate(&MetaContext, &cert, &vs, th)))
            }
            Effect::VerifyExtendedCommitCertificate(cert, vs, th, policy, r) => r.resume_with(block_on(
                self.verifier.verify_extended_commit_certificate(&MetaContext, &cert, &vs, th, policy),
            )),
            Effect::VerifyPolkaCertificate(cert, vs, th, r) => {
                r.resume_with(block_on(self.verifier.verify_polka_certificate(&MetaContext, &cert, &vs, th)))
            }
            Effect::VerifyRoundCertificate(cert, vs, th, r) => {
                r.resume_with(block_on(self.verifier.verify_round_certificate(&MetaContext, &cert, &vs, th)))
            }
            // Never emitted with VoteExtensionPolicy::Disabled.
            Effect::ExtendVote(.., r) => r.resume_with(None),
            Effect::VerifyVoteExtension(.., r) => r.resume_with(Ok(())),
        };
        Ok(resume)
    }
}

struct Node {
    state: State<Ctx>,
    io: Io,
    /// Per node: the metrics track each node's step and assert on it.
    metrics: Metrics,
    /// `false`: crashed, or Byzantine and spoken for by the test. Gets no inputs.
    alive: bool,
}

/// The value node `i` proposes at (height, round).
type ValueMaker = Box<dyn Fn(usize, Height, Round) -> BlockValue>;
/// Node `j`'s application verdict on a received value.
type ValidityCheck = Box<dyn Fn(usize, &BlockValue) -> Validity>;

struct Sim {
    nodes: Vec<Node>,
    validator_set: ValidatorSet,
    queue: VecDeque<(usize, Input<Ctx>)>,
    /// Every consensus message published, as (from, message), in order.
    sent: Vec<(usize, SignedConsensusMsg<Ctx>)>,
    /// The value node `i` proposes when asked at (height, round).
    make_value: ValueMaker,
    /// Node `j`'s application verdict on a value it received.
    validity: ValidityCheck,
}

fn value_hash(height: Height, round: Round) -> B256 {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&height.0.to_be_bytes());
    bytes[8..16].copy_from_slice(&round.as_i64().to_be_bytes());
    bytes[31] = 1;
    B256::from(bytes)
}

impl Sim {
    fn new(n: u8) -> Self {
        let keys: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let validator_set = ValidatorSet::new(keys.iter().map(|k| Validator::new(k.verifying_key(), 1))).unwrap();
        let nodes = keys
            .iter()
            .map(|key| {
                let signer = ValidatorSigner::new(key.clone(), CHAIN_ID);
                let params = Params {
                    address: signer.address(),
                    threshold_params: ThresholdParams::default(),
                    value_payload: ValuePayload::ProposalAndParts,
                    enabled: true,
                };
                let state = State::new(MetaContext, Height(1), validator_set.clone(), params, 10, 500);
                Node { state, io: Io::new(signer), metrics: Metrics::new(), alive: true }
            })
            .collect();
        Sim {
            nodes,
            validator_set,
            queue: VecDeque::new(),
            sent: Vec::new(),
            make_value: Box::new(|_: usize, h: Height, r: Round| BlockValue(value_hash(h, r))),
            validity: Box::new(|_: usize, _: &BlockValue| Validity::Valid),
        }
    }

    /// Nodes are numbered by key; the validator set has its own (canonical) order.
    fn index_of(&self, address: &ValidatorAddress) -> usize {
        self.nodes.iter().position(|n| n.state.address() == address).unwrap()
    }

    fn proposer(&self, height: Height, round: Round) -> usize {
        let address = self.validator_set.proposer(height, round.as_u32().unwrap()).address;
        self.index_of(&address)
    }

    /// Run one input through node `i` now, then queue what it asked for.
    fn apply(&mut self, i: usize, input: Input<Ctx>) {
        if !self.nodes[i].alive {
            return;
        }
        let Node { state, io, metrics, .. } = &mut self.nodes[i];
        let result: Result<(), mc::Error<Ctx>> = mc::process!(
            input: input,
            state: state,
            metrics: &*metrics,
            with: effect => io.handle(effect)
        );
        if let Err(e) = result {
            panic!("node {i}: consensus error: {e:?}");
        }
        self.flush(i);
    }

    /// Turn node `i`'s deferred effects into queued inputs (never re-enter `process!` from the handler).
    fn flush(&mut self, i: usize) {
        for (height, round) in std::mem::take(&mut self.nodes[i].io.value_requests) {
            let value = (self.make_value)(i, height, round);
            self.queue.push_back((i, Input::Propose(LocallyProposedValue::new(height, round, value))));
        }
        for out in std::mem::take(&mut self.nodes[i].io.outbox) {
            if let Outgoing::Consensus(msg) = &out {
                self.sent.push((i, msg.clone()));
            }
            for j in 0..self.nodes.len() {
                if j == i {
                    continue; // consensus already processed its own message
                }
                match &out {
                    Outgoing::Consensus(SignedConsensusMsg::Vote(v)) => {
                        self.queue.push_back((j, Input::Vote(v.clone())))
                    }
                    Outgoing::Consensus(SignedConsensusMsg::Proposal(p)) => {
                        self.queue.push_back((j, Input::Proposal(p.clone())));
                        // ProposalAndParts: the value travels separately (parts) and the app rules on it.
                        let value = ProposedValue {
                            height: p.height,
                            round: p.round,
                            valid_round: p.pol_round,
                            proposer: p.proposer,
                            value: p.value,
                            validity: (self.validity)(j, &p.value),
                        };
                        self.queue.push_back((j, Input::ProposedValue(value, ValueOrigin::Consensus)));
                    }
                    Outgoing::Liveness(LivenessMsg::Vote(v)) => self.queue.push_back((j, Input::Vote(v.clone()))),
                    Outgoing::Liveness(LivenessMsg::PolkaCertificate(c)) => {
                        self.queue.push_back((j, Input::PolkaCertificate(c.clone())))
                    }
                    Outgoing::Liveness(LivenessMsg::SkipRoundCertificate(c)) => {
                        self.queue.push_back((j, Input::RoundCertificate(c.clone())))
                    }
                }
            }
        }
    }

    fn start_height(&mut self, height: Height) {
        for i in 0..self.nodes.len() {
            let vs = self.validator_set.clone();
            self.apply(i, Input::StartHeight(height, vs, false, None, VoteExtensionPolicy::Disabled));
        }
    }

    fn step(&mut self) -> bool {
        match self.queue.pop_front() {
            Some((to, input)) => {
                self.apply(to, input);
                true
            }
            None => false,
        }
    }

    /// Deliver until the network is quiet.
    fn run(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < 100_000, "the network never went quiet");
        }
    }

    /// "Time passes": every live node that has a `kind` timer for its current round gets it.
    fn fire(&mut self, kind: TimeoutKind) -> usize {
        let mut fired = 0;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            let timeout = Timeout::new(self.nodes[i].state.round(), kind);
            let timers = &mut self.nodes[i].io.timers;
            if let Some(pos) = timers.iter().position(|t| *t == timeout) {
                timers.remove(pos);
                self.queue.push_back((i, Input::TimeoutElapsed(timeout)));
                fired += 1;
            }
        }
        fired
    }

    fn decided(&self) -> Vec<(usize, &CommitCertificate<Ctx>)> {
        self.nodes.iter().enumerate().flat_map(|(i, n)| n.io.decided.iter().map(move |c| (i, c))).collect()
    }
}

#[test]
fn four_validators_decide_in_round_0() {
    let mut sim = Sim::new(4);
    sim.start_height(Height(1));
    sim.run();
    let p0 = sim.proposer(Height(1), Round::new(0));
    let expected = (sim.make_value)(p0, Height(1), Round::new(0)).0;
    let decided = sim.decided();
    assert_eq!(decided.len(), 4);
    for (_, cert) in &decided {
        assert_eq!((cert.height, cert.round, cert.value_id), (Height(1), Round::new(0), expected));
        assert!(cert.commit_signatures.len() >= 3);
    }
    for n in &sim.nodes {
        assert_eq!(n.io.finalized.len(), 1);
        assert!(n.io.finalized[0].1.is_empty());
    }
    // Next height: only after Finalize (input.rs:29-37).
    sim.start_height(Height(2));
    sim.run();
    assert_eq!(sim.decided().len(), 8);
}

#[test]
fn round_0_proposer_down_decides_in_round_1() {
    let mut sim = Sim::new(4);
    let down = sim.proposer(Height(1), Round::new(0));
    sim.nodes[down].alive = false;
    sim.start_height(Height(1));
    sim.run();
    assert!(sim.decided().is_empty());
    assert_eq!(sim.fire(TimeoutKind::Propose), 3); // prevote nil
    sim.run(); // polka nil -> precommit nil -> PrecommitAny -> ScheduleTimeout(Precommit r0)
    assert_eq!(sim.fire(TimeoutKind::Precommit), 3); // -> round 1
    sim.run();
    let p1 = sim.proposer(Height(1), Round::new(1));
    assert_ne!(p1, down);
    let expected = (sim.make_value)(p1, Height(1), Round::new(1)).0;
    let decided = sim.decided();
    assert_eq!(decided.len(), 3);
    assert!(decided.iter().all(|(_, c)| c.round == Round::new(1) && c.value_id == expected));
}

#[test]
fn invalid_proposal_is_prevoted_nil_and_a_later_round_decides() {
    let mut sim = Sim::new(4);
    let p0 = sim.proposer(Height(1), Round::new(0));
    let bad = BlockValue(B256::repeat_byte(0xBA));
    sim.make_value = Box::new(
        move |i: usize, h: Height, r: Round| {
            if i == p0 && r == Round::new(0) {
                bad
            } else {
                BlockValue(value_hash(h, r))
            }
        },
    );
    sim.validity =
        Box::new(move |_: usize, v: &BlockValue| if *v == bad { Validity::Invalid } else { Validity::Valid });
    sim.start_height(Height(1));
    sim.run();
    for (from, msg) in &sim.sent {
        if let SignedConsensusMsg::Vote(v) = msg {
            if v.round == Round::new(0) && v.vote_type == VoteType::Prevote {
                let want = if *from == p0 { NilOrVal::Val(bad.0) } else { NilOrVal::Nil };
                assert_eq!(v.value, want, "prevote of node {from}");
            }
        }
    }
    assert!(sim.decided().is_empty());
    assert_eq!(sim.fire(TimeoutKind::Precommit), 4);
    sim.run();
    let decided = sim.decided();
    assert_eq!(decided.len(), 4);
    let good = value_hash(Height(1), Round::new(1));
    assert!(decided.iter().all(|(_, c)| c.round == Round::new(1) && c.value_id == good));
}

#[test]
fn equivocating_prevote_is_evidence_and_safety_holds() {
    let mut sim = Sim::new(4);
    let p0 = sim.proposer(Height(1), Round::new(0));
    let byz = (0..4).find(|&i| i != p0).unwrap();
    let byz_addr = *sim.nodes[byz].state.address();
    sim.nodes[byz].alive = false; // the test speaks for it
    sim.start_height(Height(1));

    let signer = &sim.nodes[byz].io.signer;
    let prevote = |value| MetaContext.new_prevote(Height(1), Round::new(0), value, byz_addr);
    let first = block_on(signer.sign_vote(prevote(NilOrVal::Nil))).unwrap();
    let second = block_on(signer.sign_vote(prevote(NilOrVal::Val(B256::repeat_byte(0xEE))))).unwrap();

    let honest: Vec<usize> = (0..4).filter(|&i| i != byz).collect();
    for &j in &honest {
        sim.apply(j, Input::Vote(first.clone()));
        sim.apply(j, Input::Vote(second.clone()));
        let pairs = sim.nodes[j].state.driver.votes().evidence().get(&byz_addr).cloned();
        assert_eq!(pairs, Some(vec![(first.clone(), second.clone())]));
    }

    sim.run();
    let expected = (sim.make_value)(p0, Height(1), Round::new(0)).0;
    let decided = sim.decided();
    assert_eq!(decided.len(), 3);
    assert!(decided.iter().all(|(_, c)| c.round == Round::new(0) && c.value_id == expected));
    for &j in &honest {
        let (_, evidence) = &sim.nodes[j].io.finalized[0];
        assert_eq!(evidence.votes.get(&byz_addr).map(Vec::len), Some(1));
        assert!(sim.nodes[j].state.driver.votes().evidence().is_empty()); // taken by Finalize
    }
}
