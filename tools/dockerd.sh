#!/usr/bin/env bash
# Start a local Docker engine with no networking (no bridge, no iptables) if none runs.
set -uo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd: not installed" >&2; exit 1; }
mkdir -p /var/log
nohup dockerd --bridge=none --iptables=false --ip6tables=false >/var/log/rr-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "dockerd: did not come up; see /var/log/rr-dockerd.log" >&2
exit 1
