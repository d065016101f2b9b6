# shellcheck shell=bash
# Sourced by ensure-rootless-docker.sh and ensure-podman.sh (bash): what both need to run a
# container engine besides the host's rootful Docker. Expects `name` (the caller's short name,
# for messages) to be set.

# `docker` below means the host's root daemon (the images' source), whatever the caller uses.
unset DOCKER_HOST DOCKER_CONTEXT

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "${name:?}: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# install_missing COMMAND=PACKAGE ...: Debian's packages for the commands that are not there.
install_missing() {
  local pair packages=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || packages+=("${pair#*=}")
  done
  [ ${#packages[@]} -gt 0 ] || return 0
  say "installing ${packages[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

# slirp4netns opens /dev/net/tun as the user: udev makes it 0666 on a Debian host (its
# 50-udev-default.rules), a container or a machine without udev leaves it 0600 (rootlesskit:
# "open: Permission denied" from `ip tuntap add`).
ensure_tun() {
  if [ ! -e /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200
  fi
  if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    say "making /dev/net/tun usable by users (0666, as udev does on Debian)"
    chmod 0666 /dev/net/tun
  fi
}

# ensure_user NAME: an unprivileged user with 65536 subordinate uids and gids of its own and a
# runtime directory /run/user/UID (what pam_systemd would make at login). Sets uid, gid, home,
# runtime_dir.
ensure_user() {
  local user=$1 file start
  if ! id -u "$user" >/dev/null 2>&1; then
    say "creating user $user"
    useradd --create-home --home-dir "/home/$user" --shell /usr/sbin/nologin --user-group "$user"
  fi
  uid=$(id -u "$user")
  gid=$(id -g "$user")
  home=$(getent passwd "$user" | cut -d: -f6)
  for file in /etc/subuid /etc/subgid; do
    touch "$file"
    grep -q "^$user:" "$file" && continue
    # The next free range after every range already given out.
    start=$(awk -F: 'BEGIN { end = 100000 } NF >= 3 && $2 + $3 > end { end = $2 + $3 }
      END { print end }' "$file")
    if [ "$file" = /etc/subuid ]; then
      usermod --add-subuids "$start-$((start + 65535))" "$user"
    else
      usermod --add-subgids "$start-$((start + 65535))" "$user"
    fi
  done
  runtime_dir=/run/user/$uid
  install -d -m 0700 -o "$user" -g "$gid" "$runtime_dir"
}

# as_user COMMAND...: runs COMMAND as the user ensure_user set up, in a clean environment.
# setpriv execs (runuser would stay behind as a root parent of a daemon started this way).
as_user() {
  setpriv --reuid="$uid" --regid="$gid" --init-groups -- env -i \
    HOME="$home" USER="$(id -un "$uid")" LOGNAME="$(id -un "$uid")" \
    XDG_RUNTIME_DIR="$runtime_dir" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$@"
}

# load_images DOCKER_HOST IMAGE...: copies each IMAGE from the root daemon through the engine's
# Docker API (`docker save | docker load`), unless the engine has it with the same image ID
# already (save/load keeps the ID: it is the digest of the image's config).
load_images() {
  local host=$1 image wanted have started
  shift
  [ $# -gt 0 ] || return 0
  # Never start the root daemon from here: a test that stopped it on purpose (test_docker_restart)
  # waits for it to stay down.
  docker info >/dev/null 2>&1 || die "the root Docker daemon does not answer (scripts/ensure-docker.sh starts it)"
  for image in "$@"; do
    wanted=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
      die "the root daemon has no image $image"
    have=$(DOCKER_HOST=$host docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [ "$have" = "$wanted" ]; then
      say "$image is loaded already"
      continue
    fi
    say "loading $image from the root daemon ..."
    started=$EPOCHREALTIME
    docker save "$image" | DOCKER_HOST=$host docker load >&2
    echo >&2 # Podman's answer ends without a newline
    say "loaded $image in $(elapsed "$started") s"
    # The copy it replaces (the root daemon's image was rebuilt) goes, unless something still
    # uses or names it (then `image rm` refuses, which is fine).
    if [ -n "$have" ]; then
      DOCKER_HOST=$host docker image rm "$have" >/dev/null 2>&1 || true
    fi
  done
}

# wait_until SECONDS PID COMMAND...: true once COMMAND succeeds; false after SECONDS, or as
# soon as PID (the daemon just started) has exited.
wait_until() {
  local seconds=$1 pid=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  "$@"
}
