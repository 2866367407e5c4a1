#!/usr/bin/env bash
# Makes sure a redis-server binary (>= 6.2, which asynq 0.25+ needs) is on
# PATH for the test harness. The harness starts its own private servers on
# free ports; nothing here starts or touches a shared one.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's redis-server package" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Don't let the package start its own service on 6379 where an init
  # system exists; our tests never use it.
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 && exit 0
fi

cat >&2 <<'MSG'
redis-server is not installed, and this script cannot install it (it needs
root and apt-get). Install it, then run `make test` again:

    sudo apt-get install redis-server      # Debian, Ubuntu
    brew install redis                     # macOS

The tests start their own private redis-server processes on free ports;
they never use one already running on 6379.
MSG
exit 1
