"""What the tests stand up to run against: a git server (git daemon and HTTP(S)), a conda channel,
a CRAN-like repository, nginx, TLS certificates, `minibinder serve` as a process, test backends
that pass for sessions, a Jupyter client, a browser, an event-stream reader, network probes, and
container engines besides the host's rootful Docker (rootless Docker, Podman)."""
