#!/usr/bin/env bash
# Make sure a redis-server answers on loopback for the test suite: use the one running,
# else start one (installing it with apt-get when the binary is missing).
set -euo pipefail
HOST=127.0.0.1
PORT="${AVSERVE_TEST_REDIS_PORT:-6379}"

answers() {
  # Speak RESP over bash's /dev/tcp so that redis-cli need not be installed.
  exec 3<>"/dev/tcp/${HOST}/${PORT}" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply=""
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [[ "$reply" == +PONG* ]]
}

if answers; then
  echo "redis: answering on ${HOST}:${PORT}"
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis: redis-server not found, installing it with apt-get"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
echo "redis: starting redis-server on ${HOST}:${PORT}"
redis-server --daemonize yes --bind "${HOST}" --port "${PORT}" --save "" --appendonly no \
  --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/avserve-redis-${PORT}.log"
for _ in $(seq 1 50); do
  if answers; then echo "redis: up"; exit 0; fi
  sleep 0.1
done
echo "redis: failed to start on ${HOST}:${PORT}" >&2
exit 1
