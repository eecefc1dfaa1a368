#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "Chromium is missing: the browser tests need it. Install it with: sudo apt-get install chromium" >&2
exit 1
