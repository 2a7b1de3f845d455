# Redis from Debian on labkit's base image; the config file is mounted by the lab.
FROM labkit/debian:bookworm
RUN apt-get update -q && apt-get install -y -q redis-server && rm -rf /var/lib/apt/lists/*
CMD ["redis-server", "/usr/local/etc/redis/redis.conf"]
