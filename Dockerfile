# plughost in a container: built on Debian 12 with the project's own
# packages, installed under /usr/local, run as an unprivileged user. The
# container is documented, not run by the tests (see README, "Running as a
# service").
#
#   docker build -t plughost .
#   docker run --rm -p 8080:8080 -v plughost-data:/var/lib/plughost plughost
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
      --no-install-recommends build-essential cmake pkg-config libuv1-dev \
      libcjson-dev libsqlite3-dev libpq-dev libhttp-parser-dev libssl-dev \
      libpcre2-dev libsodium-dev libcurl4-openssl-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DPH_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_SYSCONFDIR=/etc \
    && cmake --build /build -j"$(nproc)" \
    && DESTDIR=/out cmake --install /build

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
      --no-install-recommends libuv1 libcjson1 libsqlite3-0 libpq5 \
      libhttp-parser2.9 libssl3 libpcre2-8-0 libsodium23 libcurl4 \
      ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/plughost plughost \
    && mkdir -p /var/lib/plughost /var/cache/plughost \
    && chown plughost:plughost /var/lib/plughost /var/cache/plughost
COPY --from=build /out/ /
# Listen on every interface inside the container; the host's own Host and
# Origin checks still apply (allowed_hosts in the config).
RUN sed -i 's#"listen": "127.0.0.1:8080"#"listen": "0.0.0.0:8080"#' \
      /etc/plughost/plughost.json
USER plughost
WORKDIR /var/lib/plughost
ENV TMPDIR=/var/cache/plughost
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1"]
ENTRYPOINT ["/usr/local/bin/plughost", "--config", "/etc/plughost/plughost.json"]
