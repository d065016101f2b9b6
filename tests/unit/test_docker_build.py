"""Reading Docker's build stream: steps, the running step's container, the log tail, errors."""

from minibinder.builds.docker_build import LOG_TAIL_LINES, BuildProgress


def test_steps_and_containers_are_followed():
    progress = BuildProgress()
    assert progress.feed({"stream": "Step 1/3 : FROM base\n"}) == "Step 1/3 : FROM base\n"
    assert progress.step == "step 1/3 (FROM base)"
    progress.feed({"stream": " ---> Running in 0123456789ab\n"})
    assert progress.container == "0123456789ab"
    progress.feed({"stream": "Step 2/3 : RUN pip install x\n"})
    assert progress.step == "step 2/3 (RUN pip install x)" and progress.container == ""


def test_status_chunks_become_lines_and_other_chunks_are_ignored():
    progress = BuildProgress()
    assert progress.feed({"status": "Downloading"}) == "Downloading\n"
    assert progress.feed({"aux": {"ID": "sha256:x"}}) is None


def test_an_error_is_kept_and_the_failure_names_the_step_and_the_tail():
    progress = BuildProgress()
    progress.feed({"stream": "Step 4/9 : RUN make\n"})
    for number in range(LOG_TAIL_LINES + 5):
        progress.feed({"stream": f"line {number}\n"})
    assert progress.feed({"error": "The command returned a non-zero code: 2 "}) is None
    assert progress.error == "The command returned a non-zero code: 2"
    message = progress.failure_message(progress.error)
    assert message.startswith("Build failed at step 4/9 (RUN make): The command returned")
    assert "line 4\n" not in message and f"line {LOG_TAIL_LINES + 4}" in message


class FakeDocker:
    """The stream of a build that succeeds, from canned chunks."""

    def __init__(self, chunks):
        self.chunks = chunks

    def build(self, request):
        yield from self.chunks

    def image_labels(self, tag):
        return {}

    def kill_container(self, container):
        pass


def test_a_log_past_its_limit_is_cut_and_the_build_goes_on():
    from minibinder.builds.docker_build import run_build
    from minibinder.docker_client import BuildRequest

    chunks = [{"stream": "x" * 1000 + "\n"} for _ in range(50)]
    events = list(run_build(FakeDocker(chunks), BuildRequest("img", 2**30), 60, log_limit=10_000))
    text = "".join(event.message for event in events)
    assert text.count("x" * 1000) == 10  # 10 chunks of 1001 bytes pass the limit
    assert "passed 0 MiB (build_log_limit)" in text or "build_log_limit" in text
    assert events[-1].message.startswith("Built img")


def test_old_build_logs_are_swept_and_running_ones_kept(tmp_path):
    import fcntl
    import os

    from minibinder.builds.sharing import sweep_build_logs

    for key in ("old", "recent", "running"):
        (tmp_path / f"{key}.log").write_text("{}\n")
        (tmp_path / f"{key}.lock").write_text("")
    for key in ("old", "running"):
        os.utime(tmp_path / f"{key}.log", (1000, 1000))
    held = os.open(tmp_path / "running.lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        assert sweep_build_logs(tmp_path, 86400) == ["old"]
    finally:
        os.close(held)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "recent.lock",
        "recent.log",
        "running.lock",
        "running.log",
    ]
