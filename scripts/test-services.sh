#!/usr/bin/env bash
# Creates what the test suite needs in the local services (idempotent):
# - MariaDB: database toq_test (tests load TOQ's DDL into it as root) and the read-only user
#   toq_reader that toqdash reads through (SELECT only: the mirror never writes TOQ).
# - PostgreSQL: nothing to create: pytest-django creates test_toqdash itself.
set -euo pipefail
MYSQL=${MYSQL:-mysql}
$MYSQL -uroot -h127.0.0.1 -P3306 <<'SQL' || { echo "test-services: MariaDB at 127.0.0.1:3306 is not reachable as root" >&2; exit 1; }
CREATE DATABASE IF NOT EXISTS toq_test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'toq_reader'@'%' IDENTIFIED BY 'toq_reader_pw';
CREATE USER IF NOT EXISTS 'toq_reader'@'localhost' IDENTIFIED BY 'toq_reader_pw';
GRANT SELECT ON `toq\_%`.* TO 'toq_reader'@'%';
GRANT SELECT ON `toq\_%`.* TO 'toq_reader'@'localhost';
FLUSH PRIVILEGES;
SQL
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null \
  || { echo "test-services: PostgreSQL at 127.0.0.1:5432 is not reachable as postgres" >&2; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null \
  || { echo "test-services: Redis at 127.0.0.1:6379 is not reachable" >&2; exit 1; }
echo "test-services: MariaDB toq_test + toq_reader, PostgreSQL and Redis ready"
