#!/usr/bin/env bash
# Docker end-to-end: build the image offline, run `--dev` in a container,
# answer eth_chainId from the host, stop cleanly with `docker stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/docker-daemon.sh
IMAGE="$(scripts/docker-image.sh)"
NAME="metanode-test-$$"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8545" "$IMAGE" --dev >/dev/null
chain_id() {
    python3 - "$PORT" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}",
    data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
    headers={"content-type": "application/json"},
)
print(urllib.request.urlopen(req, timeout=5).read().decode())
PY
}
for i in $(seq 1 60); do
    if out="$(chain_id 2>/dev/null)"; then break; fi
    sleep 1
    [ "$i" -lt 60 ] || { docker logs "$NAME"; echo "docker-test: node did not answer"; exit 1; }
done
echo "docker-test: eth_chainId -> $out"
echo "$out" | grep -q '"result":"0x26c8"' || { echo "docker-test: wrong chain id"; exit 1; }
docker stop -t 20 "$NAME" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
docker logs "$NAME" 2>&1 | grep -q "stopped cleanly" || { docker logs "$NAME"; echo "docker-test: no clean shutdown"; exit 1; }
[ "$code" = "0" ] || { echo "docker-test: exit code $code after docker stop"; exit 1; }
echo "1 passed, 0 failed"
