#!/usr/bin/env bash
# Make sure the PostgreSQL (and, when asked, Redis) the test suite uses are running on
# 127.0.0.1: start the local ones if they are installed but stopped, fail clearly otherwise.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null; then
  echo "PostgreSQL client tools are missing. Install PostgreSQL (apt-get install postgresql) and start it on $PGHOST:$PGPORT." >&2
  exit 1
fi
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      echo "Starting the local PostgreSQL $version cluster..."
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  fi
fi
if ! pg_up; then
  echo "No PostgreSQL is reachable on $PGHOST:$PGPORT. The test suite runs on PostgreSQL:" >&2
  echo "install it (apt-get install postgresql), start it, or point DATABASE_URL at one." >&2
  exit 1
fi

if [ "${1:-}" = "--with-redis" ]; then
  redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
  if ! redis_up && command -v redis-server >/dev/null; then
    echo "Starting the local Redis..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/dreampixel-redis.log
    for _ in $(seq 1 20); do redis_up && break; sleep 0.25; done
  fi
  if ! redis_up; then
    echo "No Redis is reachable on 127.0.0.1:6379. Some tests drive the Redis broker and cache:" >&2
    echo "install it (apt-get install redis-server) and start it." >&2
    exit 1
  fi
fi
