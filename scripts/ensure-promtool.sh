#!/usr/bin/env bash
# The alert rules (monitoring/) are tested with promtool, which Debian's prometheus package ships.
# Installing the package starts nothing.
set -euo pipefail
command -v promtool >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's prometheus package for promtool (the alert rules' tests)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  exit 0
fi
echo "promtool is missing: the alert rules' tests need it. Install it with: sudo apt-get install prometheus" >&2
exit 1
