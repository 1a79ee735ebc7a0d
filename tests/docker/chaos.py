"""Chaos driver for a `metanode-node testnet --validators 4 --full-nodes 1`
network running under docker-compose (scripts/chaos.sh sets it up).

Usage: chaos.py --project P --compose FILE --base PORT --seconds S --seed N
                --load CMD... (after `--`)

Starts the load tool (the command after `--`), waits until it sends, then
for S seconds applies one perturbation at a time, every 10-20 s, chosen with
a seeded RNG:

  kill     SIGKILL a validator (`docker kill`), start it again 1-5 s later
  stop     SIGSTOP a validator for 5-15 s, then SIGCONT (`docker kill -s`)
  cut      disconnect a validator from the compose network for 5-15 s,
           then connect it again under its service name
  restart  restart the full node (`docker restart`, SIGTERM then start)

A perturbed node counts as perturbed until it is back: at the others' head
(within one block) and, for a validator, directly connected to the three
other validators again (its `metanode_consensus_peer_validators`, read at
least 11 s after the heal, since the node refreshes it every 10 s). The next
perturbation never starts before that, so at most one validator is out.

When the time is up and the load tool has finished, it checks: every node
reaches the highest head; every node has the same block hash at every
height up to the lowest head (no fork); every transaction the load tool
recorded as final has its receipt on every node, in the recorded block.
Then it prints (and with --report writes, as Markdown) the perturbations
applied, finalized tx/s over the run and the longest stall. Exits 1 if a
check fails. Plain standard library only.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request

VALIDATORS = [f"validator-{i}" for i in range(4)]
FULL_NODE = "fullnode-0"
NODES = VALIDATORS + [FULL_NODE]
ALL_KINDS = ["kill", "stop", "cut", "restart"]
# CHAOS_KINDS (comma-separated) restricts the perturbations drawn.
KINDS = [k for k in os.environ.get("CHAOS_KINDS", ",".join(ALL_KINDS)).split(",") if k]
if not KINDS or any(k not in ALL_KINDS for k in KINDS):
    raise SystemExit(f"chaos: CHAOS_KINDS must name some of {ALL_KINDS}, got {KINDS}")
# How long a perturbed node may take to be back before the run fails.
RECOVER_TIMEOUT = 120
# How long every node has after the run to reach the highest head.
TIP_TIMEOUT = 120


def log(msg):
    print(f"chaos: {msg}", flush=True)


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())


def rpc(url, method, params, timeout=5):
    reply = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def rpc_batch(url, calls, timeout=30):
    """[(method, params)] -> [result or None for an error], in order."""
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    replies = post(url, body, timeout)
    by_id = {r["id"]: r for r in replies}
    return [by_id.get(i, {}).get("result") for i in range(len(calls))]


def head(url, timeout=2):
    return int(rpc(url, "eth_blockNumber", [], timeout), 16)


def metric(url, name, timeout=2):
    text = urllib.request.urlopen(f"{url}/metrics", timeout=timeout).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


class Node:
    def __init__(self, name, index, base, project, compose):
        self.name = name
        self.rpc = f"http://127.0.0.1:{base + 10 * index}"
        self.metrics = f"http://127.0.0.1:{base + 10 * index + 3}"
        out = subprocess.run(
            ["docker-compose", "-p", project, "-f", compose, "ps", "-q", name], check=True, capture_output=True, text=True
        )
        self.container = out.stdout.strip()
        if not self.container:
            raise SystemExit(f"chaos: no container for {name}")


class Monitor(threading.Thread):
    """Polls every node's head; records when the network's tip (the highest
    head any node reports) advances, for the stall measurement."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.lock = threading.Lock()
        self.heads = {n.name: 0 for n in nodes}
        self.tip = 0
        self.advances = []  # (wall time, new tip)
        self.stopped = threading.Event()

    def poll(self, node):
        while not self.stopped.is_set():
            try:
                h = head(node.rpc, timeout=1)
                now = time.time()
                with self.lock:
                    self.heads[node.name] = h
                    if h > self.tip:
                        self.tip = h
                        self.advances.append((now, h))
            except Exception:
                pass
            time.sleep(0.25)

    def run(self):
        threads = [threading.Thread(target=self.poll, args=(n,), daemon=True) for n in self.nodes]
        for t in threads:
            t.start()
        self.stopped.wait()


# metanode_consensus_peer_validators is refreshed every 10 s: a reading this
# long after the heal is one the node made after it.
REACH_REFRESH = 11


def recovered(node, nodes, healed):
    """The node answers, is within one block of the others' highest head and,
    for a validator, reaches the three other validators directly, by a count
    it made after the heal."""
    if node.name in VALIDATORS and time.time() - healed < REACH_REFRESH:
        return False
    try:
        mine = head(node.rpc)
        others = []
        for n in nodes:
            if n is not node:
                try:
                    others.append(head(n.rpc))
                except Exception:
                    pass
        if not others or mine < max(others) - 1:
            return False
        if node.name in VALIDATORS:
            reached = metric(node.metrics, "metanode_consensus_peer_validators")
            return reached is not None and reached >= len(VALIDATORS) - 1
        return True
    except Exception:
        return False


def perturb(kind, node, network, fraction):
    """Applies one perturbation and heals it; returns how long the node was out (s)."""
    t = time.time()
    if kind == "kill":
        docker("kill", node.container)
        time.sleep(1 + 4 * fraction)
        docker("start", node.container)
    elif kind == "stop":
        docker("kill", "-s", "STOP", node.container)
        time.sleep(5 + 10 * fraction)
        docker("kill", "-s", "CONT", node.container)
    elif kind == "cut":
        docker("network", "disconnect", network, node.container)
        time.sleep(5 + 10 * fraction)
        docker("network", "connect", "--alias", node.name, network, node.container)
    elif kind == "restart":
        docker("restart", "-t", "10", node.container)
    else:
        raise ValueError(kind)
    return time.time() - t


def chaos(args, nodes, network, monitor, t0):
    """Perturbs until t0 + seconds; returns (applied perturbations, failures)."""
    rng = random.Random(args.seed)
    by_name = {n.name: n for n in nodes}
    applied, failures = [], []
    next_start = t0 + rng.uniform(10, 20)
    while next_start < t0 + args.seconds:
        # The same draws in the same order whatever is picked, so a seed replays.
        kind = rng.choice(KINDS)
        target = rng.choice(VALIDATORS)
        fraction = rng.random()
        interval = rng.uniform(10, 20)
        if kind == "restart":
            target = FULL_NODE
        time.sleep(max(0.0, next_start - time.time()))
        start = time.time()
        node = by_name[target]
        out_for = perturb(kind, node, network, fraction)
        healed = time.time()
        while not recovered(node, nodes, healed):
            if time.time() - healed > RECOVER_TIMEOUT:
                break
            time.sleep(0.5)
        back = time.time() - healed
        entry = {"t": start - t0, "kind": kind, "target": target, "out": out_for, "back": back}
        applied.append(entry)
        log(f"t={entry['t']:6.1f}s {kind:<7} {target:<11} out {out_for:5.1f}s, back in step {back:5.1f}s later")
        if back > RECOVER_TIMEOUT:
            failures.append(f"{target} not back in step {RECOVER_TIMEOUT}s after {kind}")
            log(f"FAIL: {failures[-1]}; no further perturbations")
            break
        next_start = max(start + interval, time.time())
    return applied, failures


def wait_for_load(proc, logfile, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(logfile) as f:
            if "sending for up to" in f.read():
                return
        if proc.poll() is not None:
            raise SystemExit(f"chaos: the load tool exited with {proc.returncode} before sending; see {logfile}")
        time.sleep(0.5)
    raise SystemExit(f"chaos: the load tool did not start sending within {timeout}s; see {logfile}")


def check_tip(nodes, failures):
    """Every node reaches the highest head seen now; returns the heads then."""
    target = 0
    for n in nodes:
        try:
            target = max(target, head(n.rpc))
        except Exception:
            pass
    deadline = time.time() + TIP_TIMEOUT
    heads = {}
    for n in nodes:
        while True:
            try:
                heads[n.name] = head(n.rpc)
            except Exception:
                heads[n.name] = -1
            if heads[n.name] >= target or time.time() > deadline:
                break
            time.sleep(0.5)
        if heads[n.name] < target:
            failures.append(f"{n.name} at {heads[n.name]}, not at the tip {target} within {TIP_TIMEOUT}s")
    log(f"tip {target}: heads {heads}")
    return target, heads


def check_chain(nodes, heads, failures):
    """One hash per height on every node, up to each node's head (a node
    behind the tip has failed check_tip already); returns
    [(number, hash, timestamp, txs)] up to the highest head."""
    chain = []
    step = 100
    upto = max(heads.values())
    for lo in range(1, upto + 1, step):
        hi = min(upto, lo + step - 1)
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(lo, hi + 1)]
        per_node = {n.name: rpc_batch(n.rpc, calls) for n in nodes if heads[n.name] >= lo}
        for i, number in enumerate(range(lo, hi + 1)):
            blocks = {name: blocks[i] for name, blocks in per_node.items() if heads[name] >= number}
            hashes = {name: (b or {}).get("hash") for name, b in blocks.items()}
            if len(set(hashes.values())) != 1 or None in hashes.values():
                failures.append(f"fork or gap at block {number}: {hashes}")
                if len(failures) > 20:
                    return chain
                continue
            # The full node's block if it holds it (heads were sampled at different times).
            b = blocks.get(nodes[0].name) or next(iter(blocks.values()))
            chain.append((number, b["hash"], int(b["timestamp"], 16), len(b["transactions"])))
    return chain


def check_receipts(nodes, heads, record, canonical, failures):
    """Every recorded transaction has its receipt on every node that holds
    its block (one that does not has failed check_tip), in the recorded block."""
    lost = 0
    for tx, number, block_hash in record:
        if canonical.get(number, block_hash) != block_hash:
            failures.append(f"the load tool saw {tx} final in block {number} {block_hash}, now {canonical[number]}")
            lost += 1
    step = 200
    for n in nodes:
        held = [r for r in record if r[1] <= heads[n.name]]
        for lo in range(0, len(held), step):
            chunk = held[lo : lo + step]
            receipts = rpc_batch(n.rpc, [("eth_getTransactionReceipt", [tx]) for tx, _, _ in chunk], timeout=60)
            for (tx, number, block_hash), r in zip(chunk, receipts):
                if r is None or r.get("blockHash") != block_hash or int(r["blockNumber"], 16) != number:
                    lost += 1
                    if lost <= 20:
                        where = None if r is None else (r.get("blockNumber"), r.get("blockHash"))
                        failures.append(f"{n.name}: receipt of {tx} (final in block {number}) is {where}")
                elif r.get("status") != "0x1":
                    lost += 1
                    if lost <= 20:
                        failures.append(f"{n.name}: {tx} failed (status {r.get('status')})")
    return lost


def longest_gap(times):
    gap = (0.0, None, None)
    for a, b in zip(times, times[1:]):
        if b - a > gap[0]:
            gap = (b - a, a, b)
    return gap


def report(args, applied, chain, record, monitor, t0, t_end, lost, failures, load_summary):
    window = [b for b in chain if t0 <= b[2] <= t_end]
    txs = sum(b[3] for b in window)
    seconds = t_end - t0
    counts = {k: sum(1 for p in applied if p["kind"] == k) for k in KINDS}
    with monitor.lock:
        advances = [t for t, _ in monitor.advances if t0 <= t <= t_end]
    gap, a, b = longest_gap([t0, *advances, t_end])
    during = [p for p in applied if a is not None and p["t"] + t0 <= b and p["t"] + t0 + p["out"] + p["back"] >= a]
    ts_gap, ts_a, _ = longest_gap([blk[2] for blk in window])
    lines = [
        f"seed {args.seed}, {seconds:.0f} s of perturbations under load",
        f"perturbations applied: {len(applied)} ("
        + ", ".join(f"{counts[k]} {k}" for k in KINDS)
        + f"); longest return to step {max((p['back'] for p in applied), default=0):.1f} s",
        f"finalized: {txs} transactions in {len(window)} blocks with timestamps in the run = {txs / seconds:.1f} tx/s; "
        f"{len(record)} recorded by the load tool",
        f"longest stall (no node's head advanced; polled every 0.25 s): {gap:.1f} s"
        + (f" at t={a - t0:.1f}..{b - t0:.1f} s" if a is not None else "")
        + (", during " + "; ".join(f"{p['kind']} {p['target']} (t={p['t']:.0f} s)" for p in during) if during else ""),
        f"longest gap between consecutive block timestamps (1 s resolution): {ts_gap} s"
        + (f" after t={ts_a - t0:.0f} s" if ts_a is not None else ""),
        f"checks: {len(chain)} heights compared on every node holding them, {len(record)} recorded receipts "
        "on every node holding their block; "
        f"lost or moved: {lost}; failures: {len(failures)}",
        f"load tool: {load_summary}",
    ]
    table = ["| t (s) | perturbation | target | out (s) | back in step after (s) |", "|---|---|---|---|---|"]
    table += [f"| {p['t']:.1f} | {p['kind']} | {p['target']} | {p['out']:.1f} | {p['back']:.1f} |" for p in applied]
    for line in lines:
        log(line)
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(f"- {line}" for line in lines) + "\n\n" + "\n".join(table) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--project", required=True)
    p.add_argument("--compose", required=True)
    p.add_argument("--base", type=int, required=True)
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--record", required=True, help="the file the load tool's --record writes")
    p.add_argument("--load-log", required=True)
    p.add_argument("--report", help="write the report here as Markdown")
    p.add_argument("load", nargs=argparse.REMAINDER, help="-- the load tool's command")
    args = p.parse_args()
    load_cmd = args.load[1:] if args.load[:1] == ["--"] else args.load

    nodes = [Node(name, i, args.base, args.project, args.compose) for i, name in enumerate(NODES)]
    # Full node first: it is the reference for timestamps and transaction counts.
    nodes = nodes[-1:] + nodes[:-1]
    network = docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", nodes[0].container)
    for n in nodes:
        deadline = time.time() + 120
        while True:
            try:
                if head(n.rpc) >= 2:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise SystemExit(f"chaos: {n.name} did not finalize 2 blocks within 120s")
            time.sleep(0.5)
    log(f"5 nodes finalize blocks; network {network}; seed {args.seed}")

    monitor = Monitor(nodes)
    monitor.start()
    with open(args.load_log, "w") as out:
        proc = subprocess.Popen(load_cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_load(proc, args.load_log, 300)
        t0 = time.time()
        log(f"load is sending; perturbing for {args.seconds}s")
        applied, failures = chaos(args, nodes, network, monitor, t0)
        t_end = max(time.time(), t0 + args.seconds)
        time.sleep(max(0.0, t0 + args.seconds - time.time()))
        log("perturbations over; waiting for the load tool to finish")
        try:
            proc.wait(timeout=args.seconds + 240 - (time.time() - t0))
        except subprocess.TimeoutExpired:
            failures.append("the load tool did not finish")
            proc.kill()
            proc.wait()
        if proc.returncode != 0:
            failures.append(f"the load tool exited with {proc.returncode} (see {args.load_log})")
    finally:
        if proc.poll() is None:
            proc.kill()
        monitor.stopped.set()
    with open(args.load_log) as f:
        summary = [line.strip() for line in f if line.startswith("transfers:")]
    load_summary = summary[-1] if summary else "(no summary)"

    _, heads = check_tip(nodes, failures)
    lowest = min(h for h in heads.values())
    chain = check_chain(nodes, heads, failures)
    canonical = {number: h for number, h, _, _ in chain}
    record = []
    with open(args.record) as f:
        for line in f:
            tx, number, block_hash = line.split()
            record.append((tx, int(number), block_hash))
    beyond = [r for r in record if r[1] > lowest]
    if beyond:
        failures.append(f"{len(beyond)} recorded transactions are in blocks above the lowest head {lowest}")
    lost = check_receipts(nodes, heads, record, canonical, failures)
    report(args, applied, chain, record, monitor, t0, t_end, lost, failures, load_summary)
    for f in failures:
        log(f"FAIL: {f}")
    if failures:
        sys.exit(1)
    log("no fork, no finalized transaction lost, every node at the tip")


if __name__ == "__main__":
    main()
