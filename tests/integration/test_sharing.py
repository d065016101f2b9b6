"""One build per image across processes, build slots, and reading build logs back."""

from minibinder.builds.sharing import (
    build_log_text,
    recent_builds,
    release_slot,
    run_shared,
    take_slot,
)
from minibinder.events import Event


def test_build_slots_are_shared_across_holders(tmp_path):
    first, second = take_slot(tmp_path, 2), take_slot(tmp_path, 2)
    assert first is not None and second is not None
    assert take_slot(tmp_path, 2) is None  # both slots taken: the next build waits
    release_slot(first)
    third = take_slot(tmp_path, 2)
    assert third is not None
    release_slot(second)
    release_slot(third)


def test_the_log_a_build_leaves_is_read_back(tmp_path):
    def work():
        yield Event("building", "Step 1/1 : RUN true\n")
        yield Event("built", "Built\n", {"imageName": "x:1"})

    assert [e.phase for e in run_shared("key-1", tmp_path, work)] == ["building", "built"]
    (tmp_path / "broken.log").write_text("not json\n")
    rows = {row.key: row.outcome for row in recent_builds(tmp_path)}
    assert rows == {"key-1": "built", "broken": ""}
    assert build_log_text(tmp_path, "key-1") == "Step 1/1 : RUN true\nBuilt\n"
    assert build_log_text(tmp_path, "missing") is None
    assert build_log_text(tmp_path, "../key-1") is None


def test_work_folders_of_dead_builds_are_swept(tmp_path):
    from minibinder.builds.sharing import sweep_work_folders, work_folder

    stale = tmp_path / "build-stale"  # a worker killed mid-build left it, unlocked
    stale.mkdir()
    (stale / "repo").mkdir()
    with work_folder(tmp_path) as running:
        assert sweep_work_folders(tmp_path) == ["build-stale"]
        assert running.is_dir()  # a build holds it
    assert not running.exists()
    assert sweep_work_folders(tmp_path) == []
