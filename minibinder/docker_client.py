"""The only module that imports `docker` (with its Swarm half, `docker_services`): Docker errors
become minibinder errors here."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount, Ulimit

from .cgroups import cgroup_usage
from .engines import EngineFacts, facts_of, short_image_name
from .errors import BuildError, DockerUnavailable, LaunchError

_UNREACHABLE = (requests.exceptions.ConnectionError, docker.errors.DockerException)
# How long one measurement of every volume's size (`docker system df`, which walks them all)
# serves: a culler round and the banners' polls in between share it.
VOLUME_SIZES_SECONDS = 5.0


@contextlib.contextmanager
def _daemon(doing: str = "") -> Iterator[None]:
    """Turn "the daemon is not there" into DockerUnavailable. Handle Docker's API errors inside
    the block first: they are DockerExceptions too."""
    try:
        yield
    except _UNREACHABLE as error:
        when = f"stopped answering during {doing}" if doing else "does not answer"
        raise DockerUnavailable(f"the Docker daemon {when} ({_short(error)})") from None


@dataclass(frozen=True)
class BuildRequest:
    """One `docker build`: the tag, the context (a tar stream, or a folder and its
    Dockerfile), and its limits."""

    tag: str
    memory: int  # bytes, memory and swap together
    labels: dict[str, str] = field(default_factory=dict)
    fileobj: IO[bytes] | None = None
    path: str | None = None
    dockerfile: str | None = None
    buildargs: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    network: str = ""  # the network RUN steps use; empty: Docker's default bridge


class Docker:
    """A thin wrapper over docker-py with the handful of calls minibinder makes."""

    def __init__(self, client: docker.DockerClient):
        self._client = client
        self._quota: bool | None = None  # whether the storage driver enforces disk limits
        self._facts: EngineFacts | None = None
        self._volume_sizes: dict[str, int] = {}  # volume name → bytes, as last measured
        self._volume_sizes_at = float("-inf")
        self._volume_sizes_lock = threading.Lock()

    @property
    def low_level_api(self) -> Any:
        """docker-py's APIClient, for `docker_services` (the Swarm calls) only."""
        return self._client.api

    @classmethod
    def connect(cls, timeout: int = 60) -> Docker:
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except _UNREACHABLE as error:
            raise DockerUnavailable(
                f"the Docker daemon does not answer ({_short(error)}); start it, "
                "e.g. with scripts/ensure-docker.sh"
            ) from None
        return cls(client)

    @classmethod
    def lazy(cls, timeout: int = 60) -> Docker:
        """A client that does not talk to the daemon until used (the daemon may be down now).

        API 1.41 (Docker 20.10) is pinned so that no version negotiation happens at start.
        """
        return cls(docker.DockerClient.from_env(version="1.41", timeout=timeout))

    def pull(self, name: str) -> str:
        """Pull an image; "" when it came, else why not (no registry reachable, no such image)."""
        last = name.rsplit("/", 1)[-1]
        repository, tag = (
            (name.rpartition(":")[0], last.rpartition(":")[2]) if ":" in last else (name, "latest")
        )
        try:
            with _daemon():
                self._client.api.pull(repository, tag=tag)
        except (docker.errors.APIError, DockerUnavailable) as error:
            return _short(error)
        return "" if self.image_labels(name) is not None else "the engine has no such image"

    def import_image(self, stream: IO[bytes], tag: str, changes: list[str]) -> None:
        """Import a root filesystem (a tar stream) as the image `tag`."""
        repository, _, version = tag.rpartition(":")
        with _daemon("import a root filesystem"):
            self._client.api.import_image_from_stream(
                stream, repository=repository, tag=version, changes=changes
            )

    def image_labels(self, name: str) -> dict[str, str] | None:
        """The labels of an image, or None when no image has that name."""
        with _daemon():
            try:
                image = self._client.api.inspect_image(name)
            except docker.errors.NotFound:
                return None
        return (image.get("Config") or {}).get("Labels") or {}

    def image_id(self, name: str) -> str | None:
        """The id of an image (sha256:...), or None when no image has that name."""
        with _daemon():
            try:
                return self._client.api.inspect_image(name)["Id"]
            except docker.errors.NotFound:
                return None

    def image_file(self, name: str, path: str, limit: int = 1 << 20) -> bytes | None:
        """One regular file of an image (read from a container that is made, never started),
        or None when the image has no such file."""
        with _daemon():
            created = self._client.api.create_container(name, command=["true"])
            try:
                chunks, _ = self._client.api.get_archive(created["Id"], path)
                data = b"".join(chunks)
            except docker.errors.NotFound:
                return None
            finally:  # with the volumes the image declares, made for it
                self._client.api.remove_container(created["Id"], force=True, v=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            member = archive.next()
            if member is None or not member.isfile() or member.size > limit:
                return None
            extracted = archive.extractfile(member)
            return extracted.read() if extracted else None

    def build(self, request: BuildRequest) -> Iterator[dict[str, Any]]:
        """Stream the decoded build output chunks of the classic builder."""
        with _daemon("the build"):
            yield from self._build_chunks(
                fileobj=request.fileobj,
                custom_context=request.fileobj is not None,
                path=request.path,
                dockerfile=request.dockerfile,
                tag=request.tag,
                labels=request.labels,
                buildargs=request.buildargs,
                container_limits={"memory": request.memory, "memswap": request.memory},
                nocache=request.no_cache,
                **({"network_mode": request.network} if request.network else {}),
            )

    def _build_chunks(self, **options: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from self._client.api.build(
                rm=True, forcerm=True, pull=False, decode=True, **options
            )
        except docker.errors.APIError as error:
            raise BuildError(f"Docker refused the build: {_short(error)}") from None

    def ensure_network(
        self, name: str, labels: dict[str, str], bridge: str = "", isolated: bool = True
    ) -> str:
        """A bridge network (containers on it cannot talk to each other when `isolated`), made
        if missing; return the name of its bridge interface on the host."""
        options = {"com.docker.network.bridge.enable_icc": "false" if isolated else "true"}
        if bridge:
            options["com.docker.network.bridge.name"] = bridge
        api = self._client.api
        with _daemon():
            try:
                info = api.inspect_network(name)  # one call when it exists: every launch asks
            except docker.errors.NotFound:
                try:
                    api.create_network(name, driver="bridge", labels=labels, options=options)
                except docker.errors.APIError as error:
                    if "already exists" not in str(error):
                        message = f"cannot create network {name}: {_short(error)}"
                        raise DockerUnavailable(message) from None
                info = api.inspect_network(name)
        return info.get("Options", {}).get("com.docker.network.bridge.name") or (
            "br-" + info["Id"][:12]
        )

    def remove_network(self, name: str) -> None:
        """Remove a network; one that is gone (or still in use) is left to the next sweep."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError, *_UNREACHABLE):
            self._client.api.remove_network(name)

    def networks(self, label: str) -> list[dict[str, Any]]:
        """Networks carrying `label` (name, Id, Created, Labels)."""
        with _daemon():
            return self._client.api.networks(filters={"label": label})

    def info(self) -> dict[str, Any]:
        """`docker info` (empty when the daemon does not answer)."""
        try:
            return self._client.api.info()
        except (docker.errors.APIError, *_UNREACHABLE):
            return {}

    def disk_quota_supported(self) -> bool:
        """Whether this daemon's storage driver can cap a container's writable layer
        (`--storage-opt size=`): overlay2 on XFS (with project quotas), btrfs, zfs. Asked once."""
        if self._quota is None:
            info = self.info()
            if not info:
                return False
            self._quota = storage_quota_possible(info)
        return self._quota

    def start_container(
        self,
        *,
        image: str,
        name: str,
        command: list[str],
        environment: dict[str, str],
        labels: dict[str, str],
        network: str,
        user: str,
        mem_limit: int,
        mem_reservation: int,
        nano_cpus: int,
        pids_limit: int,
        disk_limit: int = 0,
        publish: int = 0,
        before_start: Callable[[str], None] | None = None,
        ulimits: dict[str, int] | None = None,
    ) -> str:
        """Create and start a hardened container; return its id. `before_start(id)` runs on
        the created container before it starts (kept work is put back then). `publish`: a
        container port published on the engine host's loopback only, on a port the engine
        picks (0: nothing is published). `disk_limit` caps its writable layer where the storage
        driver can (0: not asked). `ulimits`: name -> number, soft and hard alike (None: the
        engine's).

        Every volume the image declares (a Dockerfile's `VOLUME`) is mounted as an anonymous
        volume carrying the container's `labels`: `written_bytes` counts it, `remove_container`
        removes it with the container, `remove_unused_volumes` whatever a removal missed."""
        api = self._client.api
        quota = {"storage_opt": {"size": str(disk_limit)}} if disk_limit else {}
        with _daemon():
            try:
                mounts = [
                    Mount(target=path, source=None, type="volume", labels=labels)
                    for path in self._declared_volumes(image)
                ]
                host_config = api.create_host_config(
                    **quota,
                    mounts=mounts,
                    mem_limit=mem_limit,
                    memswap_limit=mem_limit,
                    mem_reservation=mem_reservation,
                    nano_cpus=nano_cpus,
                    pids_limit=pids_limit,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    network_mode=network,
                    init=True,
                    # Back after a crash, and after an engine restart (stopped then by SIGKILL,
                    # a failure: the reconciler updates the route); a server that exits by
                    # itself with 0 (File → Shut Down) stays down, and its session ends.
                    restart_policy={"Name": "on-failure"},
                    shm_size=64 * 2**20,
                    port_bindings={publish: ("127.0.0.1", None)} if publish else None,
                    ulimits=[
                        Ulimit(name=limit, soft=value, hard=value)
                        for limit, value in sorted((ulimits or {}).items())
                    ]
                    or None,
                )
                created = api.create_container(
                    image=image,
                    name=name,
                    command=command,
                    environment=environment,
                    labels=labels,
                    user=user,
                    host_config=host_config,
                    detach=True,
                    ports=[publish] if publish else None,
                    stop_signal="SIGKILL",
                )
                if before_start is not None:
                    try:
                        before_start(created["Id"])
                    except BaseException:
                        api.remove_container(created["Id"], force=True, v=True)
                        raise
                try:
                    api.start(created["Id"])
                except docker.errors.APIError:
                    # Made but not started (Podman's runc refusing its rlimits): nobody knows
                    # its id yet, so it goes here or never.
                    with contextlib.suppress(docker.errors.APIError):
                        api.remove_container(created["Id"], force=True, v=True)
                    raise
            except docker.errors.ImageNotFound:
                raise LaunchError(f"image {image} is gone; build it again") from None
            except docker.errors.APIError as error:
                if quota and "storage-opt" in str(error).lower():
                    # XFS without project quotas: the culler's watch is the limit then.
                    self._quota = False
                    return self.start_container(
                        image=image,
                        name=name,
                        command=command,
                        environment=environment,
                        labels=labels,
                        network=network,
                        user=user,
                        mem_limit=mem_limit,
                        mem_reservation=mem_reservation,
                        nano_cpus=nano_cpus,
                        pids_limit=pids_limit,
                        publish=publish,
                        before_start=before_start,
                        ulimits=ulimits,
                    )
                message = f"Docker could not start the session: {_short(error)}"
                if "setting rlimit" in str(error):  # rootful Podman asks for nofile=1048576
                    message += (
                        "; give session_ulimits = { nofile = N, nproc = M } within the "
                        "engine's hard limits (`ulimit -Hn`, `ulimit -Hu` where it runs)"
                    )
                raise LaunchError(message) from None
        return created["Id"]

    def _declared_volumes(self, image: str) -> list[str]:
        """The paths an image declares as volumes."""
        config = self._client.api.inspect_image(image).get("Config") or {}
        return sorted(config.get("Volumes") or {})

    def container_address(self, container_id: str, network: str) -> str:
        info = self._client.api.inspect_container(container_id)
        networks = info["NetworkSettings"]["Networks"]
        return networks[network]["IPAddress"]

    def published_port(self, container_id: str, port: int) -> int | None:
        """The engine host's port `port` of the container is published on (loopback), if any."""
        info = self._client.api.inspect_container(container_id)
        bindings = (info["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp") or []
        for binding in bindings:
            if str(binding.get("HostPort", "")).isdigit():
                return int(binding["HostPort"])
        return None

    def engine_facts(self) -> EngineFacts | None:
        """What kind of engine answers (asked once; None while it does not answer)."""
        if self._facts is None:
            try:
                info, version = self._client.api.info(), self._client.api.version()
            except (docker.errors.APIError, *_UNREACHABLE):
                return None
            self._facts = facts_of(info, version, os.environ.get("DOCKER_HOST", ""))
        return self._facts

    def container_state(self, container_id: str) -> dict[str, Any] | None:
        """Docker's State of a container (Running, OOMKilled, ExitCode…), None if gone."""
        try:
            return self._client.api.inspect_container(container_id)["State"]
        except docker.errors.NotFound:
            return None

    def written_bytes(self, container_id: str) -> int | None:
        """Bytes a container has written: to its own (writable) layer and to its volumes.
        None when unknown (the container is gone, or the daemon did not say)."""
        try:
            found = self._client.api.containers(all=True, size=True, filters={"id": container_id})
        except (docker.errors.APIError, *_UNREACHABLE):
            return None
        if not found:
            return None
        layer = found[0].get("SizeRw")
        volumes = [
            mount.get("Name", "")
            for mount in found[0].get("Mounts") or []
            if mount.get("Type") == "volume"
        ]
        if not volumes:
            return layer
        sizes = self.volume_sizes()
        if any(name not in sizes for name in volumes):
            return None  # not measured yet: unknown, rather than only the layer
        return (layer or 0) + sum(sizes[name] for name in volumes)

    def volume_sizes(self, now: float | None = None) -> dict[str, int]:
        """Every volume's size in bytes, measured by the daemon (`docker system df`) at most
        once in VOLUME_SIZES_SECONDS; the last measurement when the daemon cannot answer now
        (it runs one such measurement at a time)."""
        now = time.monotonic() if now is None else now
        with self._volume_sizes_lock:
            if now - self._volume_sizes_at < VOLUME_SIZES_SECONDS:
                return self._volume_sizes
            try:
                usage = self._client.api.df()
            except (docker.errors.APIError, *_UNREACHABLE):
                return self._volume_sizes
            self._volume_sizes = {
                volume["Name"]: size
                for volume in usage.get("Volumes") or []
                if (size := (volume.get("UsageData") or {}).get("Size", -1)) >= 0
            }
            self._volume_sizes_at = now
            return self._volume_sizes

    def container_logs(self, container_id: str, tail: int = 20) -> str:
        try:
            return self._client.api.logs(container_id, tail=tail).decode(errors="replace")
        except docker.errors.APIError:
            return ""

    def remove_container(self, container_id: str) -> None:
        """Stop and remove a container with its anonymous volumes; gone already is fine."""
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self._client.api.remove_container(container_id, force=True, v=True)
            except docker.errors.APIError as error:
                if "already in progress" not in str(error):
                    raise

    def remove_unused_volumes(self, labels: list[str]) -> int:
        """Remove the volumes carrying every one of `labels` that no container uses (a
        container removed without its volumes left them); return how many went."""
        api, removed = self._client.api, 0
        with _daemon():
            found = api.volumes(filters={"label": labels, "dangling": True}).get("Volumes") or []
            for volume in found:
                # Gone meanwhile, or taken by a container since it was listed: left alone.
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    api.remove_volume(volume["Name"])
                    removed += 1
        return removed

    def containers(self, label: str) -> list[dict[str, Any]]:
        """All containers (running or not) carrying `label`."""
        with _daemon():
            return self._client.api.containers(all=True, filters={"label": label})

    def usage(self, container_id: str) -> tuple[float | None, int | None]:
        """(CPU-seconds used in all, memory in use now) from the container's cgroup: its files
        when this host shows them, else Docker's stats API (slow: it samples twice)."""
        found = cgroup_usage(container_id)
        if found is not None:
            return found
        facts = self.engine_facts()
        if facts is not None and not facts.cgroups:
            # An engine without cgroups (rootless Docker on cgroup v1) reports the whole host's
            # CPU and memory for every container: no number is better than a wrong one.
            return None, None
        try:
            stats = self._client.api.stats(container_id, stream=False, one_shot=True)
        except (docker.errors.APIError, *_UNREACHABLE):
            return None, None
        total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        memory = (stats.get("memory_stats") or {}).get("usage")
        return (total / 1e9 if total else None), memory

    def container_events(self, label: str) -> Iterator[tuple[str, str, int]]:
        """(event, container id, exit code) of `oom` (the kernel's OOM killer acted inside) and
        `die` events of containers carrying `label`, as they come."""
        filters = {"event": ["oom", "die"], "label": label, "type": "container"}
        for event in self._client.api.events(decode=True, filters=filters):
            actor = event.get("Actor", {})
            code = str(actor.get("Attributes", {}).get("exitCode", "-1"))
            container_id = event.get("id") or actor.get("ID", "")
            yield (
                event.get("status") or event.get("Action", ""),
                container_id,
                int(code if code.lstrip("-").isdigit() else -1),
            )

    def archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` inside a container."""
        try:
            chunks, _ = self._client.api.get_archive(container_id, path, chunk_size=1 << 16)
        except docker.errors.APIError as error:
            raise LaunchError(f"cannot read {path} of the session: {_short(error)}") from None
        yield from chunks

    def changes(self, container_id: str) -> list[dict[str, Any]]:
        """What a container changed in its image's files (`docker diff`); [] when it is gone."""
        with _daemon():
            try:
                return self._client.api.diff(container_id) or []
            except docker.errors.NotFound:
                return []

    def image_archive(self, image: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` as the image has it (from a container made, never started)."""
        with _daemon():
            created = self._client.api.create_container(image, command=["true"])
        try:
            chunks, _ = self._client.api.get_archive(created["Id"], path, chunk_size=1 << 16)
            yield from chunks
        except docker.errors.NotFound:
            return
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self._client.api.remove_container(created["Id"], force=True, v=True)

    def put_archive(self, container_id: str, path: str, data: bytes | IO[bytes]) -> None:
        """Unpack a tar (bytes, or a file streamed as it is sent) into a container at `path`;
        files get the owners the tar names."""
        with _daemon():
            try:
                self._client.api.put_archive(container_id, path, data)
            except docker.errors.APIError as error:
                raise LaunchError(f"cannot write to the session: {_short(error)}") from None

    def run_in(self, container_id: str, command: list[str], user: str) -> Iterator[bytes]:
        """Run `command` in a running container; stream its standard output."""
        api = self._client.api
        try:
            created = api.exec_create(container_id, command, user=user, stdout=True, stderr=False)
            output = api.exec_start(created["Id"], stream=True, demux=True)
        except docker.errors.APIError as error:
            raise LaunchError(f"cannot run {command[0]} in the session: {_short(error)}") from None
        for stdout, _ in output:
            if stdout:
                yield stdout

    def images(self, label: str) -> list[dict[str, Any]]:
        """The images carrying `label`, their RepoTags as minibinder named them (Podman's
        registry prefixes taken off)."""
        with _daemon():
            found = self._client.api.images(filters={"label": label})
        for image in found:
            image["RepoTags"] = [short_image_name(tag) for tag in image.get("RepoTags") or []]
        return found

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except _UNREACHABLE:
            return False

    def kill_container(self, container_id: str) -> None:
        """Kill a container; one that is already gone counts as killed."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.kill(container_id)

    def remove_image(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.remove_image(name, force=True)


def storage_quota_possible(info: dict[str, Any]) -> bool:
    """From `docker info`: a storage driver that can cap a container's writable layer."""
    driver = info.get("Driver", "")
    status = dict(tuple(pair) for pair in info.get("DriverStatus") or [] if len(pair) == 2)
    if driver == "overlay2":
        return status.get("Backing Filesystem", "") == "xfs"
    return driver in ("btrfs", "zfs")


def _short(error: Exception) -> str:
    text = getattr(error, "explanation", None) or str(error)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(error).__name__
