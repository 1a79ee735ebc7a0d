//! Start-up refuses bad input with a message naming the problem, and
//! configuration follows flags > METANODE_* env > config.toml > defaults.

mod common;

use common::binary;
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for var in ["METANODE_ROLE", "METANODE_DATADIR", "METANODE_HTTP_PORT", "METANODE_CHAIN_ID", "METANODE_DEV"] {
        if !env.iter().any(|(k, _)| *k == var) {
            cmd.env_remove(var);
        }
    }
    // A node that wrongly starts would run forever: give it a deadline.
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run metanode-node");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("metanode-node {args:?} did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn config_precedence_flags_env_file_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("config.toml"), "block_time = \"3s\"\n[http]\nport = 9100\n[ws]\nport = 9101\n")
        .unwrap();
    let (ok, out, err) = run(
        &["config", "--datadir", d, "--http.port", "9200"],
        &[("METANODE_HTTP_PORT", "9300"), ("METANODE_WS_PORT", "9301")],
    );
    assert!(ok, "{err}");
    let cfg: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(cfg["http"]["port"].as_integer(), Some(9200), "flag beats env");
    assert_eq!(cfg["ws"]["port"].as_integer(), Some(9301), "env beats file");
    assert_eq!(cfg["block_time"].as_str(), Some("3s"), "file beats default");
    assert_eq!(cfg["rpc"]["max_logs_range"].as_integer(), Some(10_000), "default");
}

#[test]
fn unknown_config_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[http]\nprot = 1\n").unwrap();
    let (ok, _, err) = run(&["--dev", "--datadir", dir.path().to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("prot") && err.contains("config.toml"), "{err}");
}

#[test]
fn unknown_or_unsupported_role_is_refused() {
    let (ok, _, err) = run(&["--dev", "--role", "miner"], &[]);
    assert!(!ok);
    assert!(err.contains("unknown role 'miner'"), "{err}");
    let (ok, _, err) = run(&["--dev"], &[("METANODE_ROLE", "ipfs")]);
    assert!(!ok);
    assert!(err.contains("not supported by this build") && err.contains("validator"), "{err}");
}

#[test]
fn broken_genesis_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("genesis.json"), "{\"config\": {\"chainId\": 9928}, \"gasLimit\": \"0x10\"}")
        .unwrap();
    let (ok, _, err) = run(&["--datadir", dir.path().to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("genesis") && err.contains("gasLimit"), "{err}");
    let (ok, _, err) = run(&["--datadir", tempfile::tempdir().unwrap().path().to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("no genesis"), "{err}");
}

#[test]
fn foreign_or_mismatched_data_directory_is_refused() {
    // Something that is not a MetaNode database where the database should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db").join("important.txt"), "keep me").unwrap();
    let (ok, _, err) =
        run(&["--dev", "--datadir", dir.path().to_str().unwrap(), "--http.port", "0", "--ws.port", "0"], &[]);
    assert!(!ok);
    assert!(err.contains("holds no MetaNode database"), "{err}");
    assert!(dir.path().join("db").join("important.txt").exists(), "nothing was reset");

    // A database initialised for one chain, started with another genesis.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, _, err) = run(&["init", "--datadir", d], &[]);
    assert!(ok, "{err}");
    let genesis = std::fs::read_to_string(dir.path().join("genesis.json")).unwrap();
    // Start with `genesis` edited by replacing `from` with `to`; expect a refusal naming `expected`.
    let refused = |from: &str, to: &str, expected: &str| {
        let edited = genesis.replacen(from, to, 1);
        assert_ne!(genesis, edited, "edit {from} -> {to} changed nothing");
        std::fs::write(dir.path().join("genesis.json"), edited).unwrap();
        let (ok, _, err) = run(&["--datadir", d, "--http.port", "0", "--ws.port", "0"], &[]);
        assert!(!ok && err.contains(expected), "{err}");
    };
    refused("\"chainId\": 9928", "\"chainId\": 9929", "holds chain id 9928");
    // Same chain id, different alloc: a different genesis block.
    refused("\"balance\": \"0x", "\"balance\": \"0x1", "holds a chain with genesis");
}

#[test]
fn bad_validator_setups_are_refused_clearly() {
    // A testnet node directory to start from.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (ok, _, err) =
        run(&["testnet", "--validators", "1", "--out", out.to_str().unwrap(), "--base-port", "41000"], &[]);
    assert!(ok, "{err}");
    let node = out.join("validator-0");
    let d = node.to_str().unwrap();
    let free = ["--http.port", "0", "--ws.port", "0", "--metrics", "0", "--consensus.port", "0", "--p2p.port", "0"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        ["--datadir", d].iter().chain(free.iter()).chain(extra).map(|s| s.to_string()).collect()
    };
    let run_with = |extra: &[&'static str]| {
        let args = with(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, &[])
    };

    // A validator key others can read.
    let key = node.join("keys/validator_key.json");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = run_with(&[]);
    assert!(!ok && err.contains("validator_key.json") && err.contains("644") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A key file that is not one.
    let saved = std::fs::read(&key).unwrap();
    std::fs::write(&key, "{\"address\": 1}").unwrap();
    let (ok, _, err) = run_with(&[]);
    assert!(!ok && err.contains("validator_key.json"), "{err}");
    std::fs::write(&key, saved).unwrap();

    // A genesis with an empty validator set.
    let genesis_path = node.join("genesis.json");
    let genesis = std::fs::read_to_string(&genesis_path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&genesis).unwrap();
    value["validators"] = serde_json::json!([]);
    std::fs::write(&genesis_path, value.to_string()).unwrap();
    let (ok, _, err) = run_with(&["--role", "blockchain"]);
    assert!(!ok && err.contains("no validators"), "{err}");

    // A validator whose key is not in the set.
    value["validators"] = serde_json::json!([{"publicKey": format!("0x{}", "11".repeat(32)), "power": 1}]);
    std::fs::write(&genesis_path, value.to_string()).unwrap();
    let (ok, _, err) = run_with(&[]);
    assert!(!ok && err.contains("not in the genesis validator set"), "{err}");
}
