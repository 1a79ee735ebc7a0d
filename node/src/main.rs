//! `metanode-node`: one binary for every role of a MetaNode deployment.

mod chain;
mod cli;
mod config;
mod consensus_app;
mod dev;
mod gossip;
mod keys;
mod metrics;
mod run;
mod testnet;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the state root and block execution
/// allocate many small short-lived buffers on several threads, where glibc's
/// per-thread arenas cost time (about 15% of a state root in `perf`) and memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        Some(cli::Command::Version) => {
            println!("metanode-node {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(cli::Command::Config(args)) => {
            args.resolve().map_err(anyhow::Error::from).map(|c| print!("{}", c.to_toml()))
        }
        Some(cli::Command::Init(args)) => run::init(&args),
        Some(cli::Command::Testnet(args)) => testnet::generate(&args),
        Some(cli::Command::Node(args)) => run::run(args),
        None => run::run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
