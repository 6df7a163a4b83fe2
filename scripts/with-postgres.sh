#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server (Debian's postgresql package) on a free
# loopback port, and LARK_TEST_POSTGRES_URL pointing at it; the server and its files are removed
# afterwards, whatever the command's outcome. Used by `make test`:
#
#   scripts/with-postgres.sh swift test --skip-build
#
# PostgreSQL refuses to run as root, so when run as root the cluster belongs to the `postgres`
# user the package creates.
set -euo pipefail

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
  echo "with-postgres: PostgreSQL is not installed (make setup installs Debian's postgresql)" >&2
  exit 1
fi

DIR=$(mktemp -d /tmp/lark-pg.XXXXXX)
RUN=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$DIR"
  RUN=(runuser -u postgres --)
fi

# A free port below the ephemeral range (the tests' own servers use 12000-31999).
PORT=$(python3 -c 'import socket
for port in range(33000, 34000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); s.close(); print(port); break
    except OSError:
        pass')

stop() {
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop EXIT

"${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -U lark --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
# fsync off: a test database need not survive a power cut, and it makes the tests faster.
"${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$DIR/server.log" >&2; exit 1; }

export LARK_TEST_POSTGRES_URL="postgres://lark@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
"$@"
