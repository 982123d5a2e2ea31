# Tollgate in a container: `docker build -t tollgate .` then `docker run -p 9191:9191
# -p 18000:18000 -p 9902:9902 tollgate` (everything, embedded etcd, the coffeebar example), or
# `docker run -p 9191:9191 tollgate authz --etcd etcd:2379 --config /etc/tollgate/tollgate.yaml`.
# The image's config (cmd/tollgate/container.yaml) listens on all the container's interfaces.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/tollgate ./cmd/tollgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /usr/local/bin/tollgate
COPY examples /examples
COPY cmd/tollgate/container.yaml /etc/tollgate/tollgate.yaml
EXPOSE 9191 18000 9902
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "--config", "/etc/tollgate/tollgate.yaml", "-f", "/examples/coffeebar/coffeebar.yaml"]
