# Tollgate in a container.
#
#   docker build -t tollgate --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 9191:9191 -p 18000:18000 -p 9902:9902 -v tollgate-data:/var/lib/tollgate tollgate
#
# The default command runs every role in one process (`tollgate run`) with the embedded etcd
# in the /var/lib/tollgate volume, the configuration /etc/tollgate/tollgate.yaml
# (cmd/tollgate/container.yaml: the gRPC and admin ports on every interface of the
# container, the embedded etcd on loopback) and the coffeebar example. It trusts no token
# issuer until you mount a configuration with `issuers:` over /etc/tollgate/tollgate.yaml —
# the development issuer (--dev) is never on in the image. Run the roles apart against an
# etcd cluster with `docker run tollgate authz --config /etc/tollgate/tollgate.yaml` (and
# `xds`), as examples/compose does.
#
# Base images are pinned by digest (update them with the digest of the tag you review).
FROM golang:1.27-trixie@sha256:9baa6b4187bbb98d240372a8a235ac0bb6b5ddd52bba1431dc2f7c0705862728 AS build
# The toolchain the Makefile builds with, whatever Go the image carries.
ENV GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X github.com/tollgate-gw/tollgate/internal/buildinfo.version=${VERSION}" -o /out/tollgate ./cmd/tollgate \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="Tollgate" \
      org.opencontainers.image.description="API gateway for Envoy: xDS control plane and ext_authz enforcer from OpenAPI definitions" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tollgate-gw/tollgate"
COPY --from=build /out/tollgate /usr/local/bin/tollgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/tollgate
COPY examples /examples
COPY cmd/tollgate/container.yaml /etc/tollgate/tollgate.yaml
# distroless's nonroot user; never root.
USER 65532:65532
VOLUME /var/lib/tollgate
EXPOSE 9191 18000 9902
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "--config", "/etc/tollgate/tollgate.yaml", "-f", "/examples/coffeebar/coffeebar.yaml"]
