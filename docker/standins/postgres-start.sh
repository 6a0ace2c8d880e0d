#!/bin/sh
# Stand-in for the postgres image: same env vars (POSTGRES_USER/PASSWORD/DB), same data dir.
set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin)
D=/var/lib/postgresql/data
mkdir -p $D && chown postgres:postgres $D && chmod 700 $D
if [ ! -s $D/PG_VERSION ]; then
  echo "$POSTGRES_PASSWORD" > /tmp/pw && chown postgres /tmp/pw
  su postgres -c "$BIN/initdb -D $D -U $POSTGRES_USER --pwfile=/tmp/pw -A scram-sha-256"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> $D/pg_hba.conf
  su postgres -c "$BIN/pg_ctl -D $D -o '-c listen_addresses=127.0.0.1' -w start"
  su postgres -c "PGPASSWORD=$POSTGRES_PASSWORD psql -h 127.0.0.1 -U $POSTGRES_USER -d postgres -c 'CREATE DATABASE $POSTGRES_DB'"
  su postgres -c "$BIN/pg_ctl -D $D -w stop"
fi
exec su postgres -c "$BIN/postgres -D $D -c listen_addresses='*'"
