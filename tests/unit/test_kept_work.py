"""Kept work (#24), the pure parts and the shelf: whose work it is, what is kept within the
limit, where a clashing file goes, the shelf's files (0600) and expiry, the save and restore
over a fake Docker, `minibinder work`, the hourly job and the disk watermark."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from types import SimpleNamespace

import pytest

from minibinder.cli.work_command import delete_work, work_rows
from minibinder.errors import ConfigError
from minibinder.identity import hash_code
from minibinder.jobs import expire_kept_work, trim_kept_work_for_disk
from minibinder.launch import launch_event, restored_message
from minibinder.sessions.keeping import (
    ADDED,
    CHANGED,
    ancestors,
    changed_paths,
    choose_kept,
    conflicts,
    describe_size,
    mine_name,
    owner_of,
    work_key,
)
from minibinder.sessions.kept_work import (
    KeptForNewerCommit,
    KeptWork,
    Shelf,
    is_older,
    restore_work,
    save_work,
)
from minibinder.settings_load import load_config
from minibinder.web.browsers import cross_site, work_form_token

HOUR = 3600.0
CODE = hash_code("sesame", iterations=1000)


@pytest.mark.parametrize(
    "mode, user, browser, owner",
    [
        ("off", "alice", "b-1", ""),
        ("browser", "alice", "b-1", "browser:b-1"),
        ("browser", "alice", "", ""),  # no cookie: nothing is kept, nobody's work is restored
        ("user", "alice", "b-1", "user:alice"),
        ("user", "", "b-1", ""),  # no signed-in name: never the browser instead
    ],
)
def test_work_belongs_to_the_browser_or_the_signed_in_user_only(mode, user, browser, owner):
    assert owner_of(mode, user, browser) == owner


def test_the_key_names_neither_the_person_nor_the_repository():
    key = work_key("user:alice", "https://github.com/lab/secret")
    assert len(key) == 32 and "alice" not in key and "secret" not in key
    assert key != work_key("user:bob", "https://github.com/lab/secret")
    assert key != work_key("user:alice", "https://github.com/lab/other")


def test_changed_paths_are_the_homes_added_and_changed_files_less_jupyters_own():
    changes = [
        {"Path": "/home/jovyan/notes.ipynb", "Kind": ADDED},
        {"Path": "/home/jovyan/README.md", "Kind": CHANGED},
        {"Path": "/home/jovyan/gone.txt", "Kind": 2},  # deleted
        {"Path": "/home/jovyan/.ipynb_checkpoints/notes-checkpoint.ipynb", "Kind": ADDED},
        {"Path": "/home/jovyan/.local/share/jupyter/runtime/kernel-1.json", "Kind": ADDED},
        {"Path": "/home/jovyan/pkg/__pycache__/mod.cpython-311.pyc", "Kind": ADDED},
        {"Path": "/home/jovyan/.cache/pip/x", "Kind": ADDED},
        {"Path": "/tmp/scratch", "Kind": ADDED},
        {"Path": "/home/jovyanother/x", "Kind": ADDED},
    ]
    assert changed_paths(changes) == {"notes.ipynb": ADDED, "README.md": CHANGED}


def test_the_smallest_files_are_kept_first_and_the_largest_listed():
    chosen = choose_kept({"a.csv": 40, "b.ipynb": 10, "huge.bin": 500, "c.py": 30}, limit=85)
    assert chosen.kept == ["b.ipynb", "c.py", "a.csv"] and chosen.kept_bytes == 80
    assert chosen.skipped == [("huge.bin", 500)]
    assert ancestors(["data/raw/x.csv", "y"]) == {"data", "data/raw"}


@pytest.mark.parametrize(
    "path, mine",
    [
        ("notes.ipynb", "notes.mine.ipynb"),
        ("a/b/README.md", "a/b/README.mine.md"),
        ("Makefile", "Makefile.mine"),
        (".env", ".env.mine"),
        ("archive.tar.gz", "archive.tar.mine.gz"),
    ],
)
def test_the_users_copy_goes_beside_the_repositorys(path, mine):
    assert mine_name(path) == mine


def test_only_a_file_both_changed_differently_is_a_conflict():
    kept = {
        "same.md": "base",
        "both.md": "base",
        "added.py": None,
        "gone.md": "base",
        "agreed.md": "base",
    }
    users = {"same.md": "u1", "both.md": "u2", "added.py": "u3", "gone.md": "u4", "agreed.md": "u5"}
    now = {"same.md": "base", "both.md": "new", "added.py": "upstream-added", "agreed.md": "u5"}
    assert conflicts(kept, users, now) == {"both.md", "added.py"}


def test_sizes_read_as_people_say_them():
    assert [describe_size(n) for n in (12, 2048, 3 * 2**20, 5 * 2**30)] == [
        "12 bytes",
        "2.0 kB",
        "3.0 MB",
        "5.0 GB",
    ]


def _work(key: str, owner: str = "browser:b-1", saved_at: float = 0.0, size: int = 0) -> KeptWork:
    return KeptWork(
        key,
        owner,
        "https://example.org/r",
        saved_at,
        "img:1",
        "a" * 40,
        {"notes.ipynb": {"size": size}},
        [],
        size,
    )


def _shelve(shelf: Shelf, work: KeptWork, content: bytes = b"x") -> KeptWork:
    archive = shelf.root.parent / f"{work.key}.tar"
    shelf.root.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(content)
    return shelf.put(work, archive)


def test_the_shelf_keeps_files_0600_in_a_folder_0700_and_replaces_whole(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    first = _shelve(shelf, _work("k1", saved_at=10), b"first")
    again = _shelve(shelf, _work("k1", saved_at=20), b"second!")
    assert first.size == 5 and again.size == 7
    assert stat.S_IMODE(shelf.root.stat().st_mode) == 0o700
    for kept in shelf.folder("k1").iterdir():
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600, kept
    assert shelf.get("k1") == again and [w.key for w in shelf.all()] == ["k1"]
    assert [entry.name for entry in shelf.root.iterdir()] == ["k1"]  # no staging left over


def test_work_older_than_keep_work_hours_is_not_restored_and_goes(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    _shelve(shelf, _work("old", saved_at=0))
    _shelve(shelf, _work("new", saved_at=20 * HOUR))
    assert shelf.current("new", now=25 * HOUR, hours=24) is not None
    assert shelf.current("old", now=25 * HOUR, hours=24) is None
    assert not shelf.folder("old").exists()


def test_the_hourly_job_removes_expired_work_then_the_oldest_above_the_total(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    for key, saved in (("expired", 0), ("older", 10 * HOUR), ("newer", 20 * HOUR)):
        _shelve(shelf, _work(key, saved_at=saved), b"x" * 100)
    config = SimpleNamespace(keep_work_hours=24.0, keep_work_total=150)
    services = SimpleNamespace(config=config, sessions=SimpleNamespace(shelf=shelf))
    assert expire_kept_work(services, now=25 * HOUR) == ["expired", "older"]
    assert [work.key for work in shelf.all()] == ["newer"]


def test_kept_work_counts_in_the_disk_watermark_oldest_first(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    for key, saved in (("b", 2.0), ("a", 1.0), ("c", 3.0)):
        _shelve(shelf, _work(key, saved_at=saved))
    config = SimpleNamespace(image_gc_high=85, image_gc_low=70)
    services = SimpleNamespace(config=config, sessions=SimpleNamespace(shelf=shelf))
    readings = iter([(90, 100), (80, 100), (60, 100)])  # used, total after each removal
    gone = trim_kept_work_for_disk(services, usage=lambda: next(readings))
    assert gone == ["a", "b"] and [work.key for work in shelf.all()] == ["c"]
    assert trim_kept_work_for_disk(services, usage=lambda: (84, 100)) == []


def test_minibinder_work_lists_and_deletes_by_key_owner_or_all(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    _shelve(shelf, _work("k1", owner="user:alice", saved_at=0, size=2048))
    _shelve(shelf, _work("k2", owner="user:bob", saved_at=HOUR))
    _shelve(shelf, _work("k3", owner="user:bob", saved_at=2 * HOUR))
    rows = work_rows(shelf.all(), SimpleNamespace(keep_work_hours=24.0), now=12 * HOUR)
    assert rows[0][:3] == ["KEY", "OWNER", "REPOSITORY"]
    assert rows[1][:3] == ["k1", "user:alice", "https://example.org/r"]
    assert rows[1][4] == "12.0 h" and rows[3][4] == "14.0 h"
    assert delete_work(shelf, ("k1", "nope"), "", False) == ["k1"]
    assert delete_work(shelf, (), "user:bob", False) == ["k2", "k3"]
    _shelve(shelf, _work("k4"))
    assert delete_work(shelf, (), "", True) == ["k4"] and shelf.all() == []


class FakeDocker:
    """A container's home and its image's, as Docker's tar streams give them."""

    def __init__(self, home: dict[str, bytes], image_home: dict[str, bytes], changes: list):
        self.home, self.image_home, self._changes = home, image_home, changes
        self.put: list[tuple[str, str, bytes]] = []

    def changes(self, container_id: str) -> list:
        return self._changes

    def archive(self, container_id: str, path: str):
        data = _home_tar(self.home)
        return [data[i : i + 700] for i in range(0, len(data), 700)]  # in chunks, as Docker

    def image_archive(self, image: str, path: str):
        return [_home_tar(self.image_home)]

    def put_archive(self, container_id: str, path: str, data) -> None:
        self.put.append((container_id, path, data if isinstance(data, bytes) else data.read()))


def _home_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folders = {"jovyan"} | {f"jovyan/{p}" for p in ancestors(files)}
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.uid = tarfile.DIRTYPE, 1000
            archive.addfile(info)
        for path, content in files.items():
            info = tarfile.TarInfo(f"jovyan/{path}")
            info.size, info.uid, info.mode = len(content), 1000, 0o644
            if path.endswith(".py"):
                info.uid, info.mode = 0, 0o4755  # what a session could not make, yet never back
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getmembers()


def _names(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {
            member.name: archive.extractfile(member).read() for member in archive if member.isreg()
        }


def test_save_keeps_the_changed_files_within_the_limit_and_restore_puts_them_back(tmp_path):
    home = {
        "README.md": b"mine\n",
        "data/out.csv": b"a,b\n",
        "notes.ipynb": b"{}",
        "big.bin": b"\0" * 5000,
        "analysis.py": b"print(1)\n",
        "tool.py": b"x",
    }
    docker = FakeDocker(
        home,
        {"README.md": b"theirs\n", "analysis.py": b"print(1)\n"},
        [
            {"Path": "/home/jovyan/README.md", "Kind": CHANGED},
            {"Path": "/home/jovyan/data", "Kind": ADDED},
            {"Path": "/home/jovyan/data/out.csv", "Kind": ADDED},
            {"Path": "/home/jovyan/notes.ipynb", "Kind": ADDED},
            {"Path": "/home/jovyan/big.bin", "Kind": ADDED},
            {"Path": "/home/jovyan/tool.py", "Kind": ADDED},
        ],
    )
    shelf = Shelf(tmp_path / "kept-work")
    saved = save_work(
        docker,
        shelf,
        container_id="c1",
        image="img:1",
        owner="browser:b-1",
        key="k",
        repo_url="https://example.org/r",
        resolved_ref="a" * 40,
        limit=1000,
        now=100.0,
    )
    assert saved is not None
    assert sorted(saved.files) == ["README.md", "data/out.csv", "notes.ipynb", "tool.py"]
    assert saved.skipped == [("big.bin", 5000)] and saved.saved_at == 100.0
    assert saved.files["data/out.csv"]["base"] is None  # added: no version in the image

    # Same image: everything goes back as it was.
    restored = restore_work(docker, shelf, "k", "c2", "img:1")
    assert restored is not None and restored.files == 4 and restored.conflicts == []
    assert _names(docker.put[-1][2])["README.md"] == b"mine\n"
    for member in _members(docker.put[-1][2]):
        assert member.uid == 1000 and member.mode & 0o7000 == 0, member.name
    assert docker.put[-1][:2] == ("c2", "/home/jovyan")

    # A newer image changed the README too: the user's copy goes beside it.
    newer = FakeDocker({"README.md": b"upstream's new\n"}, {}, [])
    restored = restore_work(newer, shelf, "k", "c3", "img:2")
    assert restored is not None and restored.conflicts == [("README.md", "README.mine.md")]
    put_back = _names(newer.put[-1][2])
    assert put_back["README.mine.md"] == b"mine\n" and "README.md" not in put_back
    assert "Your work from" in restored_message(restored) and "README.mine.md" in (
        restored_message(restored)
    )
    assert restored.as_event_data()["skipped"] == [{"path": "big.bin", "size": 5000}]


class GrowingDocker(FakeDocker):
    """A session still writing while its work is saved: the second read finds bigger files."""

    def __init__(self, before: dict[str, bytes], after: dict[str, bytes], changes: list):
        super().__init__(before, {}, changes)
        self.after, self.reads = after, 0

    def archive(self, container_id: str, path: str):
        self.reads += 1
        return [_home_tar(self.home if self.reads == 1 else self.after)]


def test_a_file_that_grows_while_it_is_saved_is_left_out(tmp_path):
    changes = [
        {"Path": "/home/jovyan/small.txt", "Kind": ADDED},
        {"Path": "/home/jovyan/notes.ipynb", "Kind": ADDED},
    ]
    docker = GrowingDocker(
        {"small.txt": b"x", "notes.ipynb": b"{}"},
        {"small.txt": b"x" * 5000, "notes.ipynb": b"{}"},
        changes,
    )
    shelf = Shelf(tmp_path / "kept-work")
    saved = save_work(
        docker,
        shelf,
        container_id="c",
        image="i",
        owner="o",
        key="k",
        repo_url="u",
        resolved_ref="r",
        limit=1000,
    )
    assert saved is not None and sorted(saved.files) == ["notes.ipynb"]
    assert saved.size <= 1000 + 10240  # the archive's own blocks; never the grown file


def test_work_goes_back_to_the_same_or_a_newer_commit_only(tmp_path):
    docker = FakeDocker(
        {"notes.ipynb": b"{}"}, {}, [{"Path": "/home/jovyan/notes.ipynb", "Kind": ADDED}]
    )
    shelf = Shelf(tmp_path / "kept-work")
    saved = save_work(
        docker,
        shelf,
        container_id="c1",
        image="img:1",
        owner="o",
        key="k",
        repo_url="u",
        resolved_ref="a" * 40,
        limit=1000,
        commit_time=2000.0,
    )
    assert saved is not None and shelf.get("k").commit_time == 2000.0
    with pytest.raises(KeptForNewerCommit):
        restore_work(docker, shelf, "k", "c2", "img:0", commit_time=1999.0)
    assert docker.put == [] and shelf.get("k") is not None  # nothing put back, still kept
    for launched in (2000.0, 2001.0, None):  # the same, a newer, or an unknown commit
        assert restore_work(docker, shelf, "k", "c3", "img:1", commit_time=launched)
    assert is_older(1.0, 2.0) and not is_older(2.0, 2.0) and not is_older(None, 2.0)
    assert not is_older(1.0, None)  # work kept before commit times were recorded goes back


def test_a_session_that_changed_nothing_keeps_what_was_kept_before(tmp_path):
    shelf = Shelf(tmp_path / "kept-work")
    _shelve(shelf, _work("k"))
    docker = FakeDocker({"README.md": b"x"}, {}, [])
    assert (
        save_work(
            docker,
            shelf,
            container_id="c",
            image="i",
            owner="o",
            key="k",
            repo_url="u",
            resolved_ref="r",
            limit=100,
        )
        is None
    )
    assert shelf.get("k") is not None


def test_the_launch_log_counts_restored_files_without_names():
    row = {
        "time": 0.0,
        "provider": "gh",
        "spec": "o/r/HEAD",
        "resolved_ref": "a" * 40,
        "status": "success",
        "build_seconds": None,
        "launch_seconds": 1.0,
        "restored": 3,
    }
    exported = json.loads(launch_event(row, "https://binder.example.org"))
    assert exported["restored_files"] == 3
    assert "restored_files" not in json.loads(launch_event({**row, "restored": 0}, "o"))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"keep_work": "user"}, 'keep_work = "user" needs access = "header"'),
        ({"keep_work": "user", "access": "code", "access_code_hash": CODE}, "needs access"),
        ({"keep_work": "browser", "keep_work_limit": "2G", "keep_work_total": "1G"},
         "keep_work_limit"),
        ({"keep_work": "browser", "keep_work_hours": 0}, "keep_work_hours"),
        ({"keep_work": "sometimes"}, "keep_work"),
        ({"keep_work": "browser", "placement": "swarm", "registry": "r.lab:5000"},
         'needs placement = "local"'),
        ({"keep_work": "browser", "bind": "0.0.0.0:8585"}, "needs session_domain"),
        ({"keep_work": "browser", "public_url": "https://binder.lab.example/"},
         "needs session_domain"),
    ],
)  # fmt: skip
def test_kept_work_settings_that_cannot_hold_refuse_to_start(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=settings)


def test_keep_work_on_a_public_bind_loads_with_sessions_on_their_own_origins():
    config = load_config(
        overrides={
            "keep_work": "browser",
            "bind": "0.0.0.0:8585",
            "session_domain": "sessions.lab.example",
        }
    )
    assert config.keep_work == "browser"


def test_keep_work_user_loads_behind_a_sign_in_proxy():
    config = load_config(
        overrides={"keep_work": "user", "access": "header", "trusted_proxies": ["127.0.0.1"]}
    )
    assert config.keep_work == "user"


def test_the_delete_form_is_tied_to_its_owner_and_this_site():
    token = work_form_token("secret", "browser:b-1")
    assert token != work_form_token("secret", "browser:b-2")
    assert token != work_form_token("other secret", "browser:b-1")
    ours = "https://binder.example.org/"
    assert not cross_site({"Origin": "https://binder.example.org"}, ours)
    assert not cross_site({"Sec-Fetch-Site": "same-origin"}, ours)
    assert not cross_site({}, ours)  # curl: the token alone decides
    assert cross_site({"Origin": "https://evil.example"}, ours)
    assert cross_site({"Origin": "http://binder.example.org"}, ours)
    assert cross_site({"Sec-Fetch-Site": "cross-site"}, ours)
    assert cross_site({"Sec-Fetch-Site": "same-site", "Origin": ours.rstrip("/")}, ours)


def test_the_cull_warning_says_how_long_the_work_is_kept():
    from minibinder.sessions.helpers import SessionHelpers
    from minibinder.store import SessionRecord

    config = load_config(overrides={"keep_work": "browser", "keep_work_hours": 12})
    helpers = SessionHelpers(SimpleNamespace(config=config), lambda cookie: cookie)
    fields = dict(
        token="t",
        container_id="c",
        target="",
        image="i",
        provider="gh",
        spec="o/r",
        repo_url="u",
        resolved_ref="r",
        state="running",
        created=0.0,
        last_activity=0.0,
    )
    kept = SessionRecord(id="s1", keeper="browser:b-1", **fields)
    assert "will be kept for 12 hours" in helpers.keeping_text(kept)
    assert "200.0 MB" in helpers.keeping_text(kept)
    nobody = SessionRecord(id="s2", **fields)
    assert helpers.keeping_text(nobody) == "Download your work to keep it."


def test_the_work_command_lists_and_deletes_and_says_what_it_did_not_find(tmp_path):
    from click.testing import CliRunner

    from minibinder.cli import main

    settings = tmp_path / "minibinder.toml"
    settings.write_text(f'data_dir = "{tmp_path / "data"}"\nkeep_work = "browser"\n')
    shelf = Shelf(tmp_path / "data" / "kept-work")
    _shelve(shelf, _work("k1", saved_at=1e9))

    def run(*args: str):
        return CliRunner().invoke(main, ["--config", str(settings), "work", *args], env={})

    listed = run()
    assert listed.exit_code == 0 and "k1" in listed.output and "browser:b-1" in listed.output
    assert run("k1").exit_code == 2  # keys without --delete: a usage error, nothing deleted
    assert run("--delete").exit_code == 2
    missing = run("--delete", "k1", "k9")
    assert missing.exit_code == 1 and "deleted 1" in missing.output
    assert "no kept work with the key(s) k9" in missing.output
    assert shelf.all() == []
