# MariaDB from Debian on labkit's base image. Takes the mysql:5.7 image's environment
# (MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD) and passes arguments to mariadbd.
FROM labkit/debian:bookworm
RUN apt-get update -q && apt-get install -y -q mariadb-server && rm -rf /var/lib/apt/lists/* \
    && rm -rf /var/lib/mysql/* && mkdir -p /run/mysqld
COPY mariadb-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]
