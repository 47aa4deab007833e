#!/usr/bin/env bash
# Install (if needed) and start PostgreSQL from Debian's packages; create the test role and db.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q .; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q && break
  sleep 1
done
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trustbits') THEN
    CREATE ROLE trustbits LOGIN PASSWORD 'trustbits' CREATEDB;
  END IF;
END$$;
SQL
runuser -u postgres -- psql -q -tAc "SELECT 1 FROM pg_database WHERE datname = 'trustbits_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -O trustbits trustbits_test
echo "PostgreSQL $version is up on localhost:5432"
