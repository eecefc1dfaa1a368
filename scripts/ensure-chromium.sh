#!/usr/bin/env bash
# The browser tests drive Chromium's headless shell through Playwright (no browser download):
# Debian's chromium-headless-shell, built from the same source as its chromium package. It is what
# Playwright itself runs for headless pages, and it renders them on about a third less CPU than the
# full browser in headless mode. `make contract` asks for the full browser instead
# (`scripts/ensure-chromium.sh chromium`), which Stripe's hosted Checkout page has been run in.
set -euo pipefail
PACKAGE=${1:-chromium-headless-shell}
command -v "$PACKAGE" >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's $PACKAGE for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE" >/dev/null
  exit 0
fi
echo "$PACKAGE is missing: the browser tests need it. Install it with: sudo apt-get install $PACKAGE" >&2
exit 1
