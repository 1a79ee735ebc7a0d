#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io when the
# daemon is missing and starts dockerd in the background when none runs.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker-daemon: installing docker.io"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    echo "docker-daemon: starting dockerd"
    $SUDO sh -c 'nohup dockerd >/var/log/metanode-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && exit 0
        sleep 1
    done
    echo "docker-daemon: dockerd did not start; see /var/log/metanode-dockerd.log" >&2
    exit 1
fi
