#!/usr/bin/env bash
# Set up everything rr's demo and tests need on a fresh Debian machine (idempotent).
# - system packages via apt (git, xz, npm; docker.io and busybox-static with RR_WITH_DOCKER=1;
#   slurmctld, slurmd, slurm-client and munge with RR_WITH_SLURM=1; chromium and
#   chromium-driver, the headless browser of rr report's tests, with RR_WITH_BROWSER=1)
# - the JavaScript rr report inlines (tools/fetch-report-js.sh: npm, pinned, checked)
# - a virtual environment .venv with rr and its test/ML extras
# - with RR_WITH_ROC=1, the RO-Crate validator (roc-validator, pinned) in its own .venv-roc
#   (its pins need not agree with rr's), for tests/test_rocrate.py
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v xz >/dev/null || need_apt+=(xz-utils)
command -v rsync >/dev/null || need_apt+=(rsync)
command -v dot >/dev/null || need_apt+=(graphviz)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v npm >/dev/null || need_apt+=(npm)
if [ "${RR_WITH_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
  command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
fi
if [ "${RR_WITH_DOCKER:-0}" = 1 ]; then
  command -v dockerd >/dev/null || need_apt+=(docker.io)
  [ -x /bin/busybox ] || need_apt+=(busybox-static)
fi
if [ "${RR_WITH_SLURM:-0}" = 1 ]; then
  # a one-node Slurm for the tests of the cluster path (tools/slurm.sh starts it)
  command -v slurmctld >/dev/null || need_apt+=(slurmctld)
  command -v slurmd >/dev/null || need_apt+=(slurmd)
  command -v sbatch >/dev/null || need_apt+=(slurm-client)
  command -v munged >/dev/null || need_apt+=(munge)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]} with apt" >&2
  # keep package scripts from starting services (sshd on all interfaces, dockerd with a
  # bridge): the tests start their own, on loopback and without networking
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
extras="test"
[ "${RR_WITH_ML:-0}" = 1 ] && extras="test,ml"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[$extras]"
bash tools/fetch-report-js.sh
if [ "${RR_WITH_ROC:-0}" = 1 ] && [ ! -x .venv-roc/bin/rocrate-validator ]; then
  echo "setup: creating .venv-roc (the RO-Crate validator)" >&2
  "$PY" -m venv .venv-roc
  .venv-roc/bin/python -m pip install -q "roc-validator==0.13.0" "rocrate==0.16.0"
fi
# git needs an identity to commit; set one only where none is configured
git config --global user.name >/dev/null 2>&1 || git config --global user.name "rr user"
git config --global user.email >/dev/null 2>&1 || git config --global user.email "rr@example.invalid"
echo "setup: done (rr at .venv/bin/rr)" >&2
