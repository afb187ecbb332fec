#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the ledger and web tests.
#
# Source it (so the export reaches the caller) before pytest; it is safe under `set -euo pipefail`:
#
#     source .ci/postgres.sh && python -m pytest -q
#
# It finds Debian's PostgreSQL (/usr/lib/postgresql/*/bin, or pg_ctl on PATH), installing the
# `postgresql` package with apt-get when it is missing and apt-get is there. It initdb's a cluster
# in a temporary folder owned by an unprivileged user (the `postgres` system user when run as
# root, else the current user), starts it on a unix socket in that folder (no TCP port), creates
# the database `coupler_test` and exports
#
#     COUPLER_TEST_PG_URL=postgresql+psycopg2://<user>@/coupler_test?host=<socket dir>
#
# The server is stopped and the folder removed when the calling shell exits (trap on EXIT).
# When no PostgreSQL can be found or started, it prints a warning, leaves the variable unset
# and returns 0: the PostgreSQL variants of the tests are then skipped, never failed.

_coupler_pg_main() {
    local bindir="" candidate
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && bindir="$candidate"
    done
    if [ -z "$bindir" ] && command -v pg_ctl >/dev/null 2>&1; then
        bindir="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    fi
    if [ -z "$bindir" ] && command -v apt-get >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            $sudo apt-get install -y -qq postgresql; } >/dev/null 2>&1 || true
        for candidate in /usr/lib/postgresql/*/bin; do
            [ -x "$candidate/initdb" ] && bindir="$candidate"
        done
    fi
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        echo "warning: no PostgreSQL found; PostgreSQL tests will be skipped" >&2
        return 0
    fi

    # initdb refuses to run as root: run the server as an unprivileged user.
    local run=() owner
    owner="$(id -un)"
    if [ "$(id -u)" -eq 0 ]; then
        owner=postgres
        id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home "$owner" 2>/dev/null
        if command -v runuser >/dev/null 2>&1; then
            run=(runuser -u "$owner" --)
        else
            run=(su "$owner" -s /bin/sh -c)  # _pg quotes the command into one string
        fi
    fi

    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/coupler-pg.XXXXXX")"
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$owner" "$dir"
    _pg() {
        if [ "${#run[@]}" -gt 0 ] && [ "${run[0]}" = su ]; then
            "${run[@]}" "$(printf '%q ' "$@")"
        else
            "${run[@]}" "$@"
        fi
    }
    if ! _pg "$bindir/initdb" -D "$dir/data" -U "$owner" -A trust --no-sync >"$dir/initdb.log" 2>&1; then
        echo "warning: initdb failed (see $dir/initdb.log); PostgreSQL tests will be skipped" >&2
        return 0
    fi
    # Unix socket only (listen_addresses=''), in the temporary folder.
    if ! _pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $dir -c fsync=off -c max_connections=200" start >/dev/null; then
        echo "warning: PostgreSQL did not start (see $dir/server.log); tests will be skipped" >&2
        return 0
    fi
    if ! _pg "$bindir/createdb" -h "$dir" -U "$owner" coupler_test; then
        echo "warning: createdb failed; PostgreSQL tests will be skipped" >&2
        _pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1
        return 0
    fi
    export COUPLER_TEST_PG_URL="postgresql+psycopg2://$owner@/coupler_test?host=$dir"
    export COUPLER_TEST_PG_DIR="$dir"
    # Stop the server and remove its folder when the calling shell exits.
    # shellcheck disable=SC2064
    local prefix=""
    [ "${#run[@]}" -gt 0 ] && prefix="$(printf '%q ' "${run[@]}")"
    trap "$prefix$bindir/pg_ctl -D $dir/data -m fast stop >/dev/null 2>&1; rm -rf $dir" EXIT
    echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $dir: COUPLER_TEST_PG_URL set" >&2
}

_coupler_pg_main
unset -f _coupler_pg_main
# When executed instead of sourced, print the URL so a caller can capture it.
if [ "${BASH_SOURCE[0]}" = "$0" ] && [ -n "${COUPLER_TEST_PG_URL:-}" ]; then
    trap - EXIT
    echo "$COUPLER_TEST_PG_URL"
fi
