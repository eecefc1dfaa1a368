#!/usr/bin/env bash
# Every benchmark, one after another (about 7 minutes on 2 cores); each prints its table and
# writes bench/results/<name>.json. Extra arguments are not passed on: run a script alone for that.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY bench/ledger.py
$PY bench/web.py
$PY bench/pipeline.py
