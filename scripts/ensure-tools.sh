#!/usr/bin/env bash
# Debian packages the tests drive for real, as COMMAND=PACKAGE pairs: each missing command is
# installed (as root, with apt-get), or the script says exactly what to install and fails.
#   scripts/ensure-tools.sh nginx=nginx-light podman=podman debootstrap=debootstrap
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"
missing=()
for pair in "$@"; do
  command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's ${missing[*]} for the tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "Missing for the tests: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
