#!/usr/bin/env bash
# The integration tiers of `make test`: PYTEST SUITE... where the SUITEs run beside the main
# suite, in a second pytest: most of their time is spent waiting (on engines of their own, or on
# builds), and the machine has room for two. They share nothing with the main suite but the host's
# Docker, under their own image prefix (tests/conftest.py). What both leave in the host's
# netfilter and build networks is swept once, after both (tests/support/host_sweep.py). Their
# report follows the main one's. The tests that restart the host's Docker run last, alone. The
# exit status is the first failing tier's.
set -uo pipefail
pytest=$1
shift
python=$(dirname "$pytest")/python
side_log=$(mktemp)
host_before=$(mktemp)
trap 'rm -f "$side_log" "$host_before"' EXIT

"$python" -m tests.support.host_sweep save "$host_before" || exit 1
export MBTESTS_SWEEP_AFTER=1

MBTESTS_BESIDE=1 "$pytest" -p no:cacheprovider --durations=10 "$@" >"$side_log" 2>&1 &
side=$!

ignored=()
for suite in "$@"; do ignored+=("--ignore=$suite"); done
"$pytest" --durations=25 --ignore=tests/unit "${ignored[@]}" -m "not restarts_docker"
main_status=$?

wait "$side"
side_status=$?
echo "=============== beside it: $* ==============="
cat "$side_log"

"$python" -m tests.support.host_sweep sweep "$host_before"
sweep_status=$?
unset MBTESTS_SWEEP_AFTER

"$pytest" -p no:cacheprovider tests/integration tests/security -m restarts_docker
last_status=$?

for status in "$main_status" "$side_status" "$sweep_status" "$last_status"; do
    if [ "$status" -ne 0 ]; then exit "$status"; fi
done
