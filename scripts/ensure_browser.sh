#!/usr/bin/env bash
# Make sure Debian's chromium and chromedriver are installed for the web-page tests
# (tests/ui): Selenium drives this system browser and never downloads one.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  echo "browser: $(/usr/bin/chromedriver --version | cut -d' ' -f1-2) present"
  exit 0
fi
echo "browser: installing chromium and chromium-driver with apt-get"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
echo "browser: $(/usr/bin/chromedriver --version | cut -d' ' -f1-2) installed"
