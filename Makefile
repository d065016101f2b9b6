# Two entry points, each doing its own set-up on a fresh machine: `make serve`, `make test`.
VENV ?= .venv
PYTHON ?= python3
# Root filesystem the base image starts from. The default is made locally with debootstrap
# (no registry needed); on a host that can pull, `make serve ROOTFS=debian:bookworm-slim`.
ROOTFS ?= minibinder-rootfs:bookworm
# The host's CA bundle is trusted inside builds, so TLS-intercepting proxies keep working.
export MINIBINDER_EXTRA_CA_FILE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)

BIN := $(VENV)/bin

.PHONY: serve test unit lint docker base-image test-base-images venv test-tools bench-launch bench-proxy bench-workshop bench-build bench-environments bench-r bench-base-image bench-kept-work bench-swarm bench-engines

serve: venv docker base-image
	$(BIN)/minibinder serve

# The pure tier first (seconds, no set-up), then the real thing; the slowest tests are named.
# Some suites run beside the rest (scripts/integration-tests.sh): those on engines of their own,
# then three that share nothing with the rest but the host's Docker, under their own image prefix.
BESIDE_SUITES := $(addprefix tests/integration/,test_swarm.py test_podman.py test_rootless.py \
	test_pipx.py test_kept_work.py test_r.py test_build.py)
test: unit docker base-image test-base-images test-tools
	scripts/integration-tests.sh $(BIN)/pytest $(BESIDE_SUITES)

# The pure tier alone, in seconds: no Docker, no processes, no sockets.
unit: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check minibinder tests bench
	$(BIN)/ruff format --check minibinder tests bench
	$(BIN)/mypy minibinder

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

docker:
	scripts/ensure-docker.sh

test-tools:
	scripts/ensure-test-tools.sh

base-image: venv docker
	$(BIN)/minibinder base-image --from "$(ROOTFS)"

# A second Python for the tests, made the same offline way: Debian trixie's 3.13.
TEST_BASE_IMAGES := 3.11=minibinder-base:py3.11,3.13=minibinder-base:py3.13
test-base-images: venv docker
	MINIBINDER_BASE_IMAGES=$(TEST_BASE_IMAGES) $(BIN)/minibinder base-image \
		--from minibinder-rootfs:trixie --python 3.13

# Benchmarks (see bench/README.md); each prints its ratios side by side.
bench-launch bench-workshop bench-build bench-environments bench-r bench-base-image bench-kept-work bench-swarm bench-engines: venv docker base-image
	$(BIN)/python -m bench.$(subst -,_,$(subst bench-,,$@))

bench-proxy: venv
	$(BIN)/python -m bench.proxy
