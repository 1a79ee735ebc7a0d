#!/usr/bin/env bash
# Makes sure a Docker engine answers (scripts/docker-daemon.sh) and that
# Debian's docker-compose is installed, for the scripts that run compose files.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/docker-daemon.sh
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose-install: installing docker-compose"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
