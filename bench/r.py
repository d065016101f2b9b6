"""R environments: click to ready for an install.R repository vs. the same repository without R
(what the R layer costs), with the R layer already in Docker's cache (the usual case: every R
repository on a base shares it) and built from nothing; and click to ready after a notebook-only
commit to the R repository.

The packages come from a CRAN-like repository this script builds and serves (tests' own
`CranRepository`), on the gateway of a Docker network it makes.

Usage: python -m bench.r   (as `make bench-r`)
"""

from __future__ import annotations

import os
import secrets
import statistics

from minibinder.docker_client import Docker
from minibinder.settings_load import load_config
from tests.support.cran_repository import CranRepository

from .common import IMAGE_PREFIX, NOTEBOOK, Bench, launch
from .environments import timed_build

ROUNDS = 3


def main() -> None:
    bench = Bench()
    try:
        with CranRepository(bench.folder / "cran") as cran:
            serve = bench.serve(r_package_repository=cran.url, max_sessions=20)
            plain_times, r_times = [], []
            for round_ in range(ROUNDS):  # interleaved: drift hits both alike
                salt = f"# bench {secrets.token_hex(4)}\n"  # a new commit: a new build
                bench.git.create(f"bench/plain{round_}", {"README.md": salt, "a.ipynb": NOTEBOOK})
                bench.git.create(
                    f"bench/r{round_}",
                    {"install.R": salt + 'install.packages("tinypkg")\n', "a.ipynb": NOTEBOOK},
                )
                pair = [
                    ("plain", f"gh/bench/plain{round_}/HEAD"),
                    ("r", f"gh/bench/r{round_}/HEAD"),
                ]
                for name, spec in pair if round_ % 2 == 0 else pair[::-1]:
                    seconds, _ = launch(serve, spec)
                    (plain_times if name == "plain" else r_times).append(seconds)
                bench.close_sessions()
            repo = bench.git.create(
                "bench/r-rebuild",
                {"install.R": 'install.packages("tinypkg")\n', "a.ipynb": NOTEBOOK},
            )
            launch(serve, "gh/bench/r-rebuild/HEAD")
            bench.close_sessions()
            repo.commit({"b.ipynb": NOTEBOOK}, "a notebook-only commit")
            rebuild, _ = launch(serve, "gh/bench/r-rebuild/HEAD")
            bench.close_sessions()
            # The R layer from nothing: every step built again (no layer cache), with and
            # without R, through the same builder.
            config = load_config(
                overrides={
                    "data_dir": str(bench.folder / "cold"),
                    "image_prefix": IMAGE_PREFIX,
                    "allowed_clone_schemes": ["https", "git"],
                    "github_url": bench.git.base_url,
                    "extra_ca_file": os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
                    "internal_hosts": ["127.0.0.1"],
                    "r_package_repository": cran.url,
                }
            )
            docker = Docker.connect()
            cold_plain, _ = timed_build("gh/bench/plain0/HEAD", config, docker, fresh=True)
            cold_r, _ = timed_build("gh/bench/r0/HEAD", config, docker, fresh=True)
        plain, r = statistics.median(plain_times), statistics.median(r_times)
        rows = [
            (f"click to ready, no R (median of {ROUNDS})", f"{plain:6.1f} s", ""),
            (
                f"click to ready, install.R, R layer cached (median of {ROUNDS})",
                f"{r:6.1f} s",
                f"ratio {r / plain:.2f}x",
            ),
            ("build from nothing, no R", f"{cold_plain:6.1f} s", ""),
            (
                "build from nothing, install.R (the R layer too)",
                f"{cold_r:6.1f} s",
                f"the R layer once per host and base: +{cold_r - cold_plain:.0f} s",
            ),
            (
                "click to ready after a notebook-only commit (R)",
                f"{rebuild:6.1f} s",
                "target <= 15 s",
            ),
        ]
        width = max(len(label) for label, _, _ in rows)
        for label, value, note in rows:
            print(f"{label:<{width}} : {value}  {note}".rstrip())
    finally:
        bench.close()


if __name__ == "__main__":
    main()
