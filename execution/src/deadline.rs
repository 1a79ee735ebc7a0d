//! A wall-clock budget for `eth_call` and `eth_estimateGas`. revm has no
//! timeout of its own and a cheap loop can run for minutes under a large gas
//! cap, so this inspector looks at the clock every few thousand
//! instructions and halts every frame once the deadline has passed: the EVM
//! really stops, rather than a thread spinning on after the caller gave up.

use revm::{
    interpreter::{InstructionResult, Interpreter, InterpreterTypes},
    Inspector,
};
use std::time::{Duration, Instant};

/// Instructions between two looks at the clock (`Instant::now` costs tens of
/// nanoseconds; an instruction costs a few).
const CHECK_EVERY: u32 = 4096;

/// Halts execution once `deadline` has passed.
#[derive(Debug, Clone)]
pub struct Deadline {
    deadline: Option<Instant>,
    timeout: Duration,
    /// Instructions left until the next look at the clock.
    steps: u32,
    expired: bool,
}

impl Deadline {
    /// A budget of `timeout` from now; `None` means no limit.
    pub fn after(timeout: Option<Duration>) -> Self {
        Self {
            deadline: timeout.map(|t| Instant::now() + t),
            timeout: timeout.unwrap_or_default(),
            steps: 0,
            expired: false,
        }
    }

    /// Whether the budget ran out (then the outcome of the run is meaningless).
    pub fn expired(&self) -> bool {
        self.expired || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The budget this deadline was made with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<CTX, INTR: InterpreterTypes> Inspector<CTX, INTR> for Deadline {
    fn step(&mut self, interp: &mut Interpreter<INTR>, _context: &mut CTX) {
        if self.expired {
            // Sticky: a parent frame that resumes after its halted child halts too.
            interp.halt(InstructionResult::OutOfGas);
            return;
        }
        if self.steps > 0 {
            self.steps -= 1;
            return;
        }
        self.steps = CHECK_EVERY;
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.expired = true;
            // Out of gas (not revm's fatal-error flag, which panics in a parent
            // frame); the caller tells a timeout apart with `expired`.
            interp.halt(InstructionResult::OutOfGas);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_timeout_never_expires() {
        let d = Deadline::after(None);
        assert!(!d.expired());
    }

    /// An endless loop under an effectively unlimited gas allowance is
    /// stopped by the deadline, not by running out of gas.
    #[test]
    fn halts_an_endless_loop_in_the_evm() {
        use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory};
        use alloy_primitives::{address, Bytes, TxKind};
        use revm::{
            bytecode::Bytecode,
            context::TxEnv,
            database::{CacheDB, EmptyDB},
            state::AccountInfo,
        };
        let looping = address!("0x00000000000000000000000000000000000000aa");
        let mut db = CacheDB::new(EmptyDB::default());
        // JUMPDEST; PUSH1 0; JUMP
        let code = Bytecode::new_raw(Bytes::from_static(&[0x5b, 0x60, 0x00, 0x56]));
        db.insert_account_info(looping, AccountInfo::from_bytecode(code));
        let mut env = EvmEnv::default();
        env.cfg_env.disable_block_gas_limit = true;
        env.cfg_env.disable_base_fee = true;
        env.cfg_env.tx_gas_limit_cap = Some(u64::MAX);
        let tx = TxEnv { gas_limit: u64::MAX / 2, kind: TxKind::Call(looping), ..Default::default() };
        let mut deadline = Deadline::after(Some(Duration::from_millis(200)));
        let started = Instant::now();
        let result = EthEvmFactory::default().create_evm_with_inspector(&mut db, env, &mut deadline).transact(tx);
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(deadline.expired());
        assert!(result.is_ok_and(|r| !r.result.is_success()));
    }

    #[test]
    fn expires_after_its_budget() {
        let d = Deadline::after(Some(Duration::from_millis(10)));
        assert!(!d.expired());
        std::thread::sleep(Duration::from_millis(20));
        assert!(d.expired());
        assert_eq!(d.timeout(), Duration::from_millis(10));
    }
}
