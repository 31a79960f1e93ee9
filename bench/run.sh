#!/usr/bin/env bash
# The benchmark in one command: the set-up step, then `python -m bench` with the options given
# (bash bench/run.sh --help lists them). Results: bench/.work/results.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
BENCH_COMMAND="bash bench/run.sh${*:+ $*}"
export BENCH_COMMAND
exec .venv/bin/python -m bench "$@"
