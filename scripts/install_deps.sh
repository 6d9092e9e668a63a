#!/usr/bin/env bash
# Installs the Debian 12 packages shardlm builds and tests with (needs root or sudo).
set -euo pipefail
PACKAGES=(
  cmake ninja-build g++ pkg-config git ca-certificates
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libpcre2-dev libxxhash-dev
  libopenblas-pthread-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
  prometheus-cpp-dev libgloo-dev iproute2 iptables openmpi-bin
  etcd-server etcd-client nats-server libnats-dev
  python3 python3-pip python3-venv python3-jinja2 python3-dev
  chromium
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
