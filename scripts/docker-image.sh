#!/usr/bin/env bash
# Builds the MetaNode runtime image without pulling anything: a base image
# made here from the libraries the binary links (as `ldd` names them), then
# the runtime stage of the Dockerfile with the locally built binary.
#   usage: scripts/docker-image.sh [BINARY] [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
BIN="${1:-$CARGO_TARGET_DIR/debug/metanode-node}"
TAG="${2:-metanode:local}"
BASE_TAG="metanode-base:local"
[ -x "$BIN" ] || { echo "docker-image: no binary at $BIN (run cargo build -p metanode-node)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{etc,tmp,data,usr/local/bin}
chmod 1777 "$root/tmp"
# Every shared library the binary needs, at the same paths, plus the loader.
ldd "$BIN" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
tar -C "$root" -cf "$work/base.tar" .
docker import "$work/base.tar" "$BASE_TAG" >/dev/null

# The Dockerfile's runtime stage, with the binary taken from the build context.
ctx="$work/ctx"
mkdir -p "$ctx"
cp "$BIN" "$ctx/metanode-node"
{
    echo "FROM $BASE_TAG"
    sed -n '/^# --- runtime stage/,$p' Dockerfile | grep -v '^# ---' \
        | sed 's#^COPY --from=builder /metanode-node #COPY metanode-node #'
} > "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$ctx" >/dev/null
echo "$TAG"
