#!/usr/bin/env bash
# Make sure the PostgreSQL of TEST_DATABASE_URL (and, when asked, the Redis on 127.0.0.1:6379) the
# test suite uses are running and let the suite in. On a machine without them, as root, install
# Debian's packages and start them; otherwise say exactly what to do.
#   TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/NAME scripts/ensure-services.sh --with-redis
set -euo pipefail

URL=${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/dreampixel}
PYTHON=${PYTHON:-.venv/bin/python}
as_root_with_apt() { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; }
apt_install() {
  echo "Installing Debian's $* for the tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# host port user password of the URL, one a line (psycopg's own parser: what the suite will use).
mapfile -t PARTS < <("$PYTHON" - "$URL" <<'EOF'
import sys
from psycopg.conninfo import conninfo_to_dict
parts = conninfo_to_dict(sys.argv[1])
print(parts.get("host") or "127.0.0.1", parts.get("port") or "5432", parts.get("user") or "postgres", parts.get("password") or "", sep="\n")
EOF
)
PGHOST=${PARTS[0]} PGPORT=${PARTS[1]} PGUSER=${PARTS[2]} PGPASSWORD=${PARTS[3]}
local_server() { [ "$PGHOST" = "127.0.0.1" ] || [ "$PGHOST" = "localhost" ] || [ "$PGHOST" = "::1" ]; }

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
installed_now=no
if ! command -v pg_isready >/dev/null; then
  if local_server && as_root_with_apt; then
    apt_install postgresql
    installed_now=yes
  else
    echo "PostgreSQL is missing: the test suite runs on it. Install it (sudo apt-get install postgresql)," >&2
    echo "start it on $PGHOST:$PGPORT, or point TEST_DATABASE_URL at one." >&2
    exit 1
  fi
fi
started_now=no
if ! pg_up && local_server && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    echo "Starting the local PostgreSQL $version cluster..."
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  started_now=yes
fi
if ! pg_up; then
  echo "No PostgreSQL is reachable on $PGHOST:$PGPORT. The test suite runs on PostgreSQL:" >&2
  echo "install it (sudo apt-get install postgresql), start it, or point TEST_DATABASE_URL at one." >&2
  exit 1
fi
if [ "$installed_now" = yes ] && [ "$started_now" = yes ] && [ "$PGUSER" = postgres ] && [ -n "$PGPASSWORD" ]; then
  # A new Debian cluster asks for a password over TCP and the postgres role has none: give it the
  # one the URL names (this machine's own, new, test server).
  runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD '${PGPASSWORD//\'/\'\'}'"
fi

# The suite connects as USER and creates its test database: check that it can, before it starts.
if ! error=$("$PYTHON" - "$URL" 2>&1 <<'EOF'
import sys
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
parts = conninfo_to_dict(sys.argv[1])
parts["dbname"] = "postgres"
with psycopg.connect(make_conninfo(**parts), connect_timeout=5) as conn:
    row = conn.execute("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        sys.exit(f"role {parts.get('user')} may not create databases")
EOF
); then
  echo "PostgreSQL on $PGHOST:$PGPORT refused the test suite: ${error##*$'\n'}" >&2
  echo "Set TEST_DATABASE_URL=postgres://USER:PASSWORD@$PGHOST:$PGPORT/dreampixel for a role that may create" >&2
  echo "databases (e.g. sudo -u postgres psql -c \"ALTER ROLE postgres PASSWORD 'postgres'\" for the default)." >&2
  exit 1
fi

if [ "${1:-}" = "--with-redis" ]; then
  redis_up() { "$PYTHON" -c "import redis; redis.Redis(host='127.0.0.1', port=6379, socket_timeout=2).ping()" 2>/dev/null; }
  if ! redis_up && ! command -v redis-server >/dev/null && as_root_with_apt; then
    apt_install redis-server
  fi
  if ! redis_up && command -v redis-server >/dev/null; then
    echo "Starting the local Redis..."
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/dreampixel-redis.log
    for _ in $(seq 1 20); do redis_up && break; sleep 0.25; done
  fi
  if ! redis_up; then
    echo "No Redis is reachable on 127.0.0.1:6379. Some tests drive the Redis broker and cache:" >&2
    echo "install it (sudo apt-get install redis-server) and start it." >&2
    exit 1
  fi
fi
