#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests and benchmarks: initdb in a temp
# directory, a free loopback port, trust authentication for the superuser
# "postgres", and the Q3C extension in every new database when Q3C is
# installed.  Works as root (the server runs as the postgres user, or
# nobody) and as a normal user.
#
#   scripts/pg-local.sh start [STATE]   start a cluster (or find the one
#                                       running) and print its URL on stdout
#   scripts/pg-local.sh url   [STATE]   print the URL of the running cluster
#   scripts/pg-local.sh stop  [STATE]   stop it and delete all its files
#
# STATE is a directory that remembers the cluster (default
# ${TMPDIR:-/tmp}/rapid-pg-$(id -u)); give each concurrent user its own.
# PG_BINDIR selects the PostgreSQL binaries (default: the newest
# /usr/lib/postgresql/*/bin, else initdb on PATH).
set -euo pipefail

action=${1:-}
state=${2:-${TMPDIR:-/tmp}/rapid-pg-$(id -u)}
statefile=$state/cluster

die() { echo "pg-local: $*" >&2; exit 1; }

find_bindir() {
  local d
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  d=$(command -v initdb 2>/dev/null || true)
  [ -n "$d" ] && { dirname "$d"; return; }
  die "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH; scripts/install-deps.sh installs it)"
}

# The server may not run as root: as root, run it as postgres (or nobody).
runas=""
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then runas=postgres; else runas=nobody; fi
fi
as_server() {
  if [ -n "$runas" ]; then
    if command -v runuser >/dev/null; then runuser -u "$runas" -- "$@"
    else su -s /bin/sh "$runas" -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

load_state() { # sets DATA PORT URL TMPD BIN, or returns 1
  [ -f "$statefile" ] || return 1
  # shellcheck disable=SC1090
  . "$statefile"
  [ -n "${TMPD:-}" ] && [ -n "${PORT:-}" ]
}

running() {
  load_state && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres \
    -U postgres -t 2 >/dev/null 2>&1
}

port_free() { # nothing listening there
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cleanup_cluster() {
  if load_state; then
    [ -d "$TMPD/data" ] && (cd "$TMPD" && as_server "$BIN/pg_ctl" -D "$TMPD/data" \
      -m immediate -w -t 20 stop >/dev/null 2>&1) || true
    rm -rf "$TMPD"
  fi
  rm -f "$statefile"
}

start() {
  local bin tmp port try ok=0 share
  if running; then echo "$URL"; return; fi
  cleanup_cluster # a stale record: its server is gone
  bin=$(find_bindir)
  mkdir -p "$state"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/rapid-pg.XXXXXX")
  chmod 755 "$tmp"
  [ -n "$runas" ] && chown "$runas" "$tmp"
  cd "$tmp" # the server user may not be able to enter the caller's directory
  if ! as_server "$bin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 \
      --locale=C --no-sync >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2; rm -rf "$tmp"; die "initdb failed"
  fi
  for try in $(seq 1 20); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    port_free "$port" || continue
    if as_server "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
        -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c max_connections=50" \
        start >/dev/null 2>&1; then
      ok=1; break
    fi
    grep -q "could not bind\|already in use" "$tmp/server.log" 2>/dev/null \
      || { cat "$tmp/server.log" >&2 || true; rm -rf "$tmp"; die "the server did not start"; }
  done
  [ $ok -eq 1 ] || { rm -rf "$tmp"; die "no free loopback port found"; }
  URL="postgresql://postgres@127.0.0.1:$port/postgres"
  share=$("$bin/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql)
  if [ -f "$share/extension/q3c.control" ]; then
    # In template1, so that every database made for a test has it.
    for db in template1 postgres; do
      "$bin/psql" -q -X -h 127.0.0.1 -p "$port" -U postgres -d "$db" \
        -c "CREATE EXTENSION IF NOT EXISTS q3c" >/dev/null
    done
  fi
  printf 'TMPD=%q\nDATA=%q\nPORT=%q\nURL=%q\nBIN=%q\n' "$tmp" "$tmp/data" \
    "$port" "$URL" "$bin" >"$statefile"
  echo "$URL" >"$tmp/url"
  echo "$URL"
}

case "$action" in
  start) start ;;
  url) running || die "no cluster running for $state"; echo "$URL" ;;
  stop) cleanup_cluster; rmdir "$state" 2>/dev/null || true ;;
  *) echo "usage: scripts/pg-local.sh start|url|stop [STATE_DIR]" >&2; exit 2 ;;
esac
