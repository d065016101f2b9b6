"""Reading Docker's build stream: steps, the running step's container, the log tail, errors."""

from minibinder.build.builder import LOG_TAIL_LINES, BuildProgress


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
