//! The wire format of a gossip message (a batch of encoded transactions),
//! its id, and the verdict on a whole batch from the verdicts on its
//! transactions.

use crate::Verdict;

/// Most transactions in one gossip message.
pub(crate) const MAX_BATCH_TXS: usize = 2_048;

/// Judges one encoded transaction; runs off the swarm task.
pub(crate) type Judge = dyn Fn(&[u8]) -> Verdict + Send + Sync;

/// A batch: a u32 count, then each transaction as a u32 length and its bytes.
pub(crate) fn encode_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + txs.iter().map(|t| t.len() + 4).sum::<usize>());
    out.extend_from_slice(&(txs.len() as u32).to_be_bytes());
    for tx in txs {
        out.extend_from_slice(&(tx.len() as u32).to_be_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// The transactions of a batch, or `None` if the bytes are not exactly one.
pub(crate) fn decode_batch(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
        bytes = tail;
        Some(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    if count == 0 || count > MAX_BATCH_TXS {
        return None;
    }
    let mut txs = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        txs.push(take(len)?);
    }
    if !bytes.is_empty() {
        return None;
    }
    Some(txs)
}

/// How many transactions a batch claims to hold (its first four bytes,
/// capped), read without decoding it: what a peer's rate limit is charged.
pub(crate) fn claimed_len(bytes: &[u8]) -> u32 {
    bytes.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(1).clamp(1, MAX_BATCH_TXS as u32)
}

/// One verdict for a message from the verdicts on its transactions.
pub(crate) fn judge_batch(data: &[u8], judge: &Judge) -> Verdict {
    let Some(txs) = decode_batch(data) else { return Verdict::Reject };
    let mut verdict = Verdict::Ignore;
    for tx in txs {
        match judge(tx) {
            Verdict::Reject => return Verdict::Reject,
            Verdict::Accept => verdict = Verdict::Accept,
            Verdict::Ignore => {}
        }
    }
    verdict
}

/// A message's id: the keccak-256 of its payload. Stable across Rust
/// versions and builds (std's `DefaultHasher` is not), so nodes of different
/// builds deduplicate the same message.
pub(crate) fn message_id(data: &[u8]) -> Vec<u8> {
    alloy_primitives::keccak256(data).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_malformed_ones_are_refused() {
        let txs = vec![vec![1u8, 2, 3], vec![], vec![9u8; 300]];
        let bytes = encode_batch(&txs);
        let back: Vec<Vec<u8>> = decode_batch(&bytes).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(back, txs);
        assert_eq!(claimed_len(&bytes), 3);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_none());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_batch(&long).is_none());
        assert!(decode_batch(&[0, 0, 0, 0]).is_none());
        assert!(decode_batch(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]).is_none());
        assert_eq!(claimed_len(&[0xff, 0xff, 0xff, 0xff]), MAX_BATCH_TXS as u32);
        assert_eq!(claimed_len(b""), 1);
    }

    #[test]
    fn one_bad_transaction_rejects_the_message() {
        let judge = |tx: &[u8]| match tx.first() {
            Some(1) => Verdict::Accept,
            Some(2) => Verdict::Ignore,
            _ => Verdict::Reject,
        };
        assert_eq!(judge_batch(&encode_batch(&[vec![1], vec![2]]), &judge), Verdict::Accept);
        assert_eq!(judge_batch(&encode_batch(&[vec![2], vec![2]]), &judge), Verdict::Ignore);
        assert_eq!(judge_batch(&encode_batch(&[vec![1], vec![3]]), &judge), Verdict::Reject);
        assert_eq!(judge_batch(b"junk", &judge), Verdict::Reject);
    }

    #[test]
    fn message_ids_are_the_keccak_of_the_payload() {
        // Fixed values: an id must not change with the compiler or the build.
        assert_eq!(
            alloy_primitives::hex::encode(message_id(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(message_id(&encode_batch(&[vec![1]])), message_id(&encode_batch(&[vec![1]])));
        assert_ne!(message_id(&encode_batch(&[vec![1]])), message_id(&encode_batch(&[vec![2]])));
    }
}
