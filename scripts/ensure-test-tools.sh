#!/usr/bin/env bash
# What the end-to-end tests need besides Python packages: Debian's Chromium (driven by
# Playwright, which must never download a browser of its own), Node.js with npm, the
# JavaScript Binder clients from tests/js/package-lock.json, openssl (test certificates),
# systemd-analyze (the service unit is verified), iptables (egress rules), nginx (a
# reverse proxy in front, as in a lab) and R (the tests build a package for their own CRAN-like
# repository with `R CMD build`) and Debian's docker-registry (the swarm tests' registry).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v Rscript >/dev/null 2>&1 || missing+=(r-base-core)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
  touch tests/js/node_modules
fi
