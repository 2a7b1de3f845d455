# labkit's Milvus 1.1 node and Mishards-role router on labkit's base image.
#   docker run ... labkit/lab python -m labkit.node --config /var/lib/milvus/conf/server_config.yaml
#   docker run ... labkit/lab python -m labkit.router   (Mishards environment variables)
FROM labkit/debian:bookworm
# g++ and python3-dev: annoy builds its extension from source
RUN apt-get update -q && apt-get install -y -q python3 python3-venv python3-dev g++ libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# the CA bundle the building machine's pip trusts (TLS-inspecting proxies)
COPY pip-ca.crt /etc/labkit/pip-ca.crt
ENV PIP_CERT=/etc/labkit/pip-ca.crt
ARG LAB_DEPS
ARG PYMILVUS
RUN python3 -m venv /opt/labkit && /opt/labkit/bin/pip install -q --no-cache-dir $LAB_DEPS \
    && /opt/labkit/bin/pip install -q --no-cache-dir --no-deps $PYMILVUS
COPY src /src
RUN /opt/labkit/bin/pip install -q --no-cache-dir --no-deps /src && rm -rf /src
ENV PATH=/opt/labkit/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /var/lib/milvus
CMD ["python", "-m", "labkit.node", "--config", "/var/lib/milvus/conf/server_config.yaml"]
