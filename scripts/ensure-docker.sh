#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io and start dockerd when none does.
set -euo pipefail

log=${MINIBINDER_DOCKERD_LOG:-/var/log/minibinder-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "No Docker engine answers and dockerd is not installed; run this as root or install Docker." >&2
    exit 1
  fi
  echo "Installing Debian's docker.io (no Docker engine answers) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi

# A dockerd that is still shutting down does not answer: wait for it to go, then start anew.
for _ in $(seq 1 180); do
  if docker info >/dev/null 2>&1; then
    echo "Docker engine is up."
    exit 0
  fi
  if ! pgrep -u root -x dockerd >/dev/null 2>&1; then
    echo "Starting dockerd in the background (log: $log) ..."
    # Without the descriptors this script inherited: a daemon that kept a caller's lock file
    # open (`flock LOCK make test`) would hold that lock for as long as it runs.
    (
      for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
      done
      exec nohup dockerd >>"$log" 2>&1 </dev/null
    ) &
  fi
  sleep 0.5
done
echo "dockerd did not answer within 90 s; last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
