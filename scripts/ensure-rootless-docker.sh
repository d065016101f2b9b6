#!/usr/bin/env bash
# Make sure a rootless Docker daemon answers on this host, for the tests of engines other than
# the host's rootful one (issue 20): Debian's rootlesskit + slirp4netns + uidmap and docker.io's
# dockerd-rootless.sh, run as an unprivileged user with its own data root. Idempotent: a daemon
# that answers is reused; images already there with the same ID are not loaded again.
#
# Usage (as root): scripts/ensure-rootless-docker.sh [IMAGE ...]
#   Each IMAGE is copied from the root daemon (`docker save | docker load`). The only line on
#   stdout is the DOCKER_HOST to use (progress goes to stderr), so:
#     export DOCKER_HOST=$(scripts/ensure-rootless-docker.sh minibinder-base:py3.11)
#   scripts/ensure-rootless-docker.sh --stop   stops the daemon; its data root is kept.
#
# Environment: MINIBINDER_ROOTLESS_USER (mbrootless), MINIBINDER_ENGINE_TIMEOUT (120 s).
# Where things are: the socket /run/user/UID/docker.sock, exec root /run/user/UID/docker, data
# root ~USER/.local/share/docker, log ~USER/dockerd-rootless.log.
set -euo pipefail

name=ensure-rootless-docker
user=${MINIBINDER_ROOTLESS_USER:-mbrootless}
timeout=${MINIBINDER_ENGINE_TIMEOUT:-120}
# shellcheck source-path=SCRIPTDIR source=engines-common.sh
source "$(dirname "$0")/engines-common.sh"

[ "$(id -u)" = 0 ] || die "run this as root (it installs packages and creates the user $user)"

find_contrib() {
  local candidate
  for candidate in /usr/share/docker.io/contrib/dockerd-rootless.sh \
    "$(command -v dockerd-rootless.sh 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# rootlesskit runs `ip` (iproute2) to make its tap device.
install_missing rootlesskit=rootlesskit slirp4netns=slirp4netns newuidmap=uidmap \
  iptables=iptables ip=iproute2 dockerd=docker.io
find_contrib >/dev/null || install_missing no-such-command=docker.io
contrib=$(find_contrib) || die "dockerd-rootless.sh not found (docker.io ships it in its contrib folder)"
ensure_tun
ensure_user "$user"

socket=$runtime_dir/docker.sock
docker_host=unix://$socket
log=$home/dockerd-rootless.log

answers() { DOCKER_HOST=$docker_host timeout 20 docker info >/dev/null 2>&1; }
# The daemon's top process: rootlesskit, run by the user (nothing else runs as that user).
running_pid() { pgrep -u "$uid" -x rootlesskit | head -n 1 | grep .; }
stop() {
  local pid=$1
  say "stopping the rootless daemon (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# One run at a time: a second run waits for the first, then finds its daemon answering.
exec 9>/run/lock/minibinder-rootless-docker.lock
flock -w "$((timeout + 60))" 9 || die "another run holds /run/lock/minibinder-rootless-docker.lock"

if [ "${1:-}" = --stop ]; then
  if pid=$(running_pid); then stop "$pid"; fi
  exit 0
fi

if answers; then
  say "reusing the rootless daemon at $docker_host"
else
  if pid=$(running_pid); then
    # Started by an earlier run and not answering yet: give it the timeout, then replace it.
    say "waiting for the rootless daemon that is starting (pid $pid)"
    wait_until "$timeout" "$pid" answers || stop "$pid"
  fi
  if ! answers; then
    rm -f "$socket" "$runtime_dir/docker.pid"
    say "starting dockerd-rootless.sh as $user (log: $log)"
    started=$EPOCHREALTIME
    cd "$home" # not the caller's directory: the daemon's working directory stays for its life
    # A session of its own, every descriptor on the log or /dev/null and the lock closed: the
    # daemon outlives this script and whatever ran it (a test's subprocess waits for its pipes).
    as_user setsid "$contrib" \
      --host "$docker_host" --data-root "$home/.local/share/docker" \
      --exec-root "$runtime_dir/docker" --pidfile "$runtime_dir/docker.pid" \
      >>"$log" 2>&1 </dev/null 9>&- &
    if ! wait_until "$timeout" $! answers; then
      say "the rootless daemon did not answer within $timeout s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    say "the rootless daemon answers after $(elapsed "$started") s"
  fi
fi

load_images "$docker_host" "$@"
echo "$docker_host"
