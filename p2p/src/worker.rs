//! The thread that judges gossip messages: signature recovery and the
//! pool's lock cost far more than a swarm event, so they run here and the
//! swarm task only hands messages over and reports the verdicts. One thread
//! judges messages in arrival order, so a sender's transactions reach the
//! pool in the order peers sent them (out of order, they would be queued
//! behind nonce gaps).

use crate::{batch::judge_batch, batch::Judge, Verdict};
use libp2p::{gossipsub::MessageId, PeerId};
use std::sync::{mpsc as std_mpsc, Arc};
use tokio::sync::mpsc;

/// A message to judge.
pub(crate) struct Work {
    pub(crate) id: MessageId,
    pub(crate) source: PeerId,
    pub(crate) data: Vec<u8>,
}

/// A judged message on its way back to the swarm task.
pub(crate) struct Judged {
    pub(crate) id: MessageId,
    pub(crate) source: PeerId,
    pub(crate) verdict: Verdict,
}

/// Starts the judging thread with room for `backlog` waiting messages; it
/// ends when the returned sender is dropped.
pub(crate) fn spawn(
    judge: Arc<Judge>,
    backlog: usize,
) -> std::io::Result<(std_mpsc::SyncSender<Work>, mpsc::UnboundedReceiver<Judged>)> {
    let (work_tx, work_rx) = std_mpsc::sync_channel::<Work>(backlog);
    let (judged_tx, judged_rx) = mpsc::unbounded_channel();
    std::thread::Builder::new().name("gossip-judge".into()).spawn(move || {
        for Work { id, source, data } in work_rx {
            // A panicking judge must not leave the message unreported.
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| judge_batch(&data, &*judge)))
                .unwrap_or(Verdict::Ignore);
            if judged_tx.send(Judged { id, source, verdict }).is_err() {
                break;
            }
        }
    })?;
    Ok((work_tx, judged_rx))
}
