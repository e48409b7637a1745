#!/bin/sh
# Reads the secrets compose mounts as files into the variables capex and libpq read, then
# becomes the command (exec: SIGTERM from `docker stop` reaches capex itself).
#
#   CAPEX_SECRET_KEY_FILE  -> CAPEX_SECRET_KEY (the same on every host: it keys the stored
#                             token hashes, so a token made on one host works on all)
#   PGPASSWORD_FILE        -> PGPASSWORD (libpq's own variable: psycopg and pg_dump use it
#                             when CAPEX_DATABASE_URL names no password)
set -eu
if [ -n "${CAPEX_SECRET_KEY_FILE:-}" ]; then
    CAPEX_SECRET_KEY=$(cat "$CAPEX_SECRET_KEY_FILE")
    export CAPEX_SECRET_KEY
fi
if [ -n "${PGPASSWORD_FILE:-}" ]; then
    PGPASSWORD=$(cat "$PGPASSWORD_FILE")
    export PGPASSWORD
fi
exec "$@"
