#!/usr/bin/env bash
# The browser tests drive Chromium's headless shell through Playwright (no browser download):
# Debian's chromium-headless-shell, built from the same source as its chromium package. It is what
# Playwright itself runs for headless pages, and it renders them on about a third less CPU than the
# full browser in headless mode.
set -euo pipefail
command -v chromium-headless-shell >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium-headless-shell for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null
  exit 0
fi
echo "Chromium's headless shell is missing: the browser tests need it. Install it with: sudo apt-get install chromium-headless-shell" >&2
exit 1
