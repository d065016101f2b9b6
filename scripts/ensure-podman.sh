#!/usr/bin/env bash
# Make sure Podman's Docker-compatible API answers on this host, for the tests of engines other
# than the host's rootful Docker (issue 20): Debian's podman, `podman system service --time=0`
# on a unix socket. Idempotent: a service that answers is reused; images already there with the
# same ID are not loaded again (they appear as localhost/NAME:TAG).
#
# Usage (as root): scripts/ensure-podman.sh [--rootless] [IMAGE ...]
#   rootful (the default): the service runs as root on /run/minibinder-podman/podman.sock.
#   --rootless: it runs as an unprivileged user (MINIBINDER_PODMAN_USER, mbpodman) on
#     /run/user/UID/podman/podman.sock, with that user's storage (~USER/.local/share/containers).
#   Each IMAGE is copied from the root daemon through the service's Docker API
#   (`docker save | docker load`). The only line on stdout is the DOCKER_HOST to use.
#   scripts/ensure-podman.sh [--rootless] --stop   stops the service (containers and images stay).
#
# Environment: MINIBINDER_ENGINE_TIMEOUT (120 s). Logs: /var/log/minibinder-podman.log (rootful),
# ~USER/podman-service.log (rootless).
set -euo pipefail

name=ensure-podman
timeout=${MINIBINDER_ENGINE_TIMEOUT:-120}
# shellcheck source-path=SCRIPTDIR source=engines-common.sh
source "$(dirname "$0")/engines-common.sh"

rootless=false
if [ "${1:-}" = --rootless ]; then
  rootless=true
  shift
fi
[ "$(id -u)" = 0 ] || die "run this as root (it installs packages and starts the service)"

install_missing podman=podman docker=docker.io
if $rootless; then
  # catatonit: the rootless service's pause process (`catatonit -P`) that keeps its user
  # namespace (a Recommends of podman).
  install_missing newuidmap=uidmap slirp4netns=slirp4netns catatonit=catatonit
  ensure_tun
  ensure_user "${MINIBINDER_PODMAN_USER:-mbpodman}"
  socket=$runtime_dir/podman/podman.sock
  log=$home/podman-service.log
  install -d -m 0700 -o "$uid" -g "$gid" "$runtime_dir/podman"
  lock=/run/lock/minibinder-podman-rootless.lock
  # Debian ships no storage.conf, and rootless Podman 4.3 without one stores images with vfs
  # (every layer a full copy: 2.6 GB and 34 s to load the 0.7 GB base image). The kernel's own
  # overlay works in a user namespace here (Linux >= 5.13), as Fedora's and RHEL's default
  # storage.conf asks for. Written before the user's storage is first made: a storage made with
  # vfs stays vfs until `podman system reset`.
  storage_conf=$home/.config/containers/storage.conf
  if [ ! -e "$storage_conf" ]; then
    install -d -o "$uid" -g "$gid" "$home/.config" "$home/.config/containers"
    printf '[storage]\ndriver = "overlay"\n' >"$storage_conf"
    chown "$uid:$gid" "$storage_conf"
  fi
else
  uid=0
  socket=/run/minibinder-podman/podman.sock
  log=/var/log/minibinder-podman.log
  install -d -m 0755 /run/minibinder-podman
  lock=/run/lock/minibinder-podman.lock
fi
docker_host=unix://$socket

# The Docker API at the version minibinder's SDK asks for (`docker version` negotiates it).
answers() {
  [ "$(DOCKER_HOST=$docker_host timeout 20 docker version --format '{{.Server.APIVersion}}' \
    2>/dev/null)" = 1.41 ]
}
# The service's processes: rootless, two (the one started, and the one it re-executes inside
# the user namespace, which outlives the first when only that one is stopped).
service_pids() { pgrep -u "$uid" -f "^[^ ]*podman system service --time=0 $docker_host\$"; }
running_pid() { service_pids | head -n 1 | grep .; }
stop() {
  local pids pid
  pids=$(service_pids | tr '\n' ' ')
  [ -n "$pids" ] || return 0
  say "stopping podman system service (pids $pids)"
  # shellcheck disable=SC2086 # a list of pids
  kill -TERM $pids 2>/dev/null || true
  for pid in $pids; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

exec 9>"$lock"
flock -w "$((timeout + 60))" 9 || die "another run holds $lock"

if [ "${1:-}" = --stop ]; then
  stop
  exit 0
fi

if answers; then
  say "reusing podman system service at $docker_host"
else
  if pid=$(running_pid); then
    say "waiting for the podman service that is starting (pid $pid)"
    wait_until "$timeout" "$pid" answers || stop
  fi
  if ! answers; then
    rm -f "$socket"
    say "starting podman system service ($($rootless && echo "rootless, as $(id -un "$uid")" ||
      echo rootful); log: $log)"
    started=$EPOCHREALTIME
    # Its own session, descriptors on the log or /dev/null, the lock closed: the service outlives
    # this script and whatever ran it.
    # Started in a directory of its own: conmon writes files into the service's working
    # directory (an empty `oom` when a container is OOM-killed, seen here).
    if $rootless; then
      cd "$home"
      as_user setsid podman system service --time=0 "$docker_host" >>"$log" 2>&1 </dev/null 9>&- &
    else
      cd /run/minibinder-podman
      setsid podman system service --time=0 "$docker_host" >>"$log" 2>&1 </dev/null 9>&- &
    fi
    if ! wait_until "$timeout" $! answers; then
      say "podman system service did not answer within $timeout s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    say "podman system service answers after $(elapsed "$started") s"
  fi
fi

load_images "$docker_host" "$@"
echo "$docker_host"
