#!/bin/sh
# First start: initialise /var/lib/mysql. Every start: database, user and passwords from the
# environment through an init file (idempotent SQL), readable by root only.
set -eu
: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is required}"
DB="${MYSQL_DATABASE:-milvus}"
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=root --datadir=/var/lib/mysql --auth-root-authentication-method=normal \
        --skip-test-db >/dev/null
fi
umask 077
INIT=/run/mysqld/init.sql
{
    echo "CREATE DATABASE IF NOT EXISTS \`$DB\`;"
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
    echo "ALTER USER 'root'@'%' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
    echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
    if [ -n "${MYSQL_USER:-}" ]; then
        echo "CREATE USER IF NOT EXISTS '$MYSQL_USER'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:-}';"
        echo "ALTER USER '$MYSQL_USER'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:-}';"
        echo "GRANT ALL PRIVILEGES ON \`$DB\`.* TO '$MYSQL_USER'@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
} > "$INIT"
exec mariadbd --user=root --datadir=/var/lib/mysql --init-file="$INIT" --skip-name-resolve "$@"
