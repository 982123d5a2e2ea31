# Tollgate in a container: `docker build -t tollgate .` then
# `docker run -p 9191:9191 tollgate authz --etcd etcd:2379 --config /etc/tollgate/tollgate.yaml`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/tollgate ./cmd/tollgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /usr/local/bin/tollgate
COPY examples /examples
EXPOSE 9191 18000 9902
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "-f", "/examples/coffeebar/coffeebar.yaml"]
