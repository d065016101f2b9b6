"""Kept work (#24): what saving a home of 50 MB in 500 files adds to the end of a session, and
what putting it back adds to click-to-ready, each side by side with the same step without work.

One browser (its own cookie) launches a built repository, writes 500 files of 100 kB under
`data/` and the operator stops the session (the work is saved). Then, interleaved per round:
a launch with `?clean=1` (nothing put back) and its stop (nothing to save), and a launch that
restores the 500 files and its stop (they are saved again). The save and restore times inside
minibinder come from its own histograms (`/metrics`), the rest is wall-clock time.

Usage: python -m bench.kept_work [--runs N] [--files 500] [--megabytes 50]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.cookiejar
import re
import statistics
import time
import urllib.parse
import urllib.request

import docker

from tests.support.sse import events

from .common import NOTEBOOK, Bench, summary

ADMIN_TOKEN = "bench-admin-token-" + "k" * 16


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def launch(self, spec: str, query: str = "") -> tuple[float, dict]:
        """Click to ready, as the launch page does it: the page, then its event stream."""
        started = time.perf_counter()
        with self.opener.open(f"{self.base}/v2/{spec}{query}", timeout=60) as page:
            page.read()
        received = events(f"{self.base}/build/{spec}{query}", opener=self.opener)
        elapsed = time.perf_counter() - started
        if received[-1]["phase"] != "ready":
            raise RuntimeError(received[-1].get("message"))
        return elapsed, received[-1]


def stop(serve, ready: dict) -> float:
    """The operator's Stop button (the session's work is saved before its container goes)."""
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    csrf = hmac.new(ADMIN_TOKEN.encode(), b"minibinder-admin-form", hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{serve.admin_url}/admin/sessions/{session_id}/stop",
        data=urllib.parse.urlencode({"csrf": csrf[:32]}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
    return time.perf_counter() - started


def write_work(ready: dict, files: int, megabytes: int) -> None:
    """`files` files of random bytes, `megabytes` in all, under the session's data/."""
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    [container] = docker.from_env().containers.list(
        filters={"label": f"minibinder.session={session_id}"}
    )
    size = megabytes * 10**6 // files
    script = (
        "import os\nos.makedirs('/home/jovyan/data', exist_ok=True)\n"
        f"for n in range({files}):\n"
        f"    open(f'/home/jovyan/data/part{{n:04}}.bin', 'wb').write(os.urandom({size}))\n"
    )
    result = container.exec_run(["python3", "-c", script], user="1000")
    if result.exit_code != 0:
        raise RuntimeError(result.output.decode())


def histogram_sum(serve, name: str) -> float:
    with urllib.request.urlopen(f"{serve.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = re.search(rf"^{name}_sum(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    bench = Bench()
    try:
        bench.git.create("bench/kept", {"index.ipynb": NOTEBOOK})
        spec = "gh/bench/kept/HEAD"
        serve = bench.serve(
            keep_work="browser",
            keep_work_limit="200M",
            idle_timeout=3600,
            cull_interval=3600,
            admin_token=ADMIN_TOKEN,
        )
        student = Browser(serve.url)
        _, ready = student.launch(spec)  # builds the image once; not measured
        write_work(ready, args.files, args.megabytes)
        stop(serve, ready)
        clean_launch, restore_launch, plain_stop, saving_stop = [], [], [], []
        saves, restores = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            seconds, ready = student.launch(spec, "?clean=1")
            assert "kept_work" not in ready
            clean_launch.append(seconds)
            plain_stop.append(stop(serve, ready))

            before = histogram_sum(serve, "minibinder_kept_work_restore_seconds")
            seconds, ready = student.launch(spec)
            assert ready["kept_work"]["files"] == args.files, ready.get("kept_work")
            restore_launch.append(seconds)
            restores.append(histogram_sum(serve, "minibinder_kept_work_restore_seconds") - before)
            before = histogram_sum(serve, "minibinder_kept_work_save_seconds")
            saving_stop.append(stop(serve, ready))
            saves.append(histogram_sum(serve, "minibinder_kept_work_save_seconds") - before)
        print(f"home: {args.files} files, {args.megabytes} MB (random bytes)")
        print(f"launch, start clean          : {summary(clean_launch)}")
        print(f"launch, work restored        : {summary(restore_launch)}")
        print(f"  of which the restore       : {summary(restores)}")
        print(f"stop, nothing to keep        : {summary(plain_stop)}")
        print(f"stop, work saved             : {summary(saving_stop)}")
        print(f"  of which the save          : {summary(saves)}")
        added = statistics.median(restore_launch) - statistics.median(clean_launch)
        print(
            f"restore adds {added:.2f} s to click-to-ready (medians; target <= 2 s); "
            f"ratio {statistics.median(restore_launch) / statistics.median(clean_launch):.2f}x"
        )
        print(
            f"saving adds {statistics.median(saving_stop) - statistics.median(plain_stop):.2f} s "
            "to the end of a session (medians)"
        )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
