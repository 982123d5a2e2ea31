# Tollgate. `make run` and `make test` are the two commands a newcomer needs.
GO      ?= go
BIN     := bin/tollgate
# The API examples (examples/compose holds the Compose quick start, examples/backend their
# backend; helm, kubernetes, grafana and status hold no API).
EXAMPLES := $(filter-out examples/compose/% examples/kubernetes/%,$(wildcard examples/*/*.yaml))
# staticcheck, pinned; `go run` fetches it from the Go module proxy and caches the build.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Go 1.27.3 builds and tests Tollgate: govulncheck finds twelve vulnerabilities of Go
# 1.26.8's standard library that Tollgate's code reaches (net/http, crypto/tls,
# html/template). Any Go >= 1.21 fetches this toolchain from the Go module proxy (76 MB,
# once, about 10 s); go.mod still says 1.26 for those who build without make.
export GOTOOLCHAIN := go1.27.3
# govulncheck against the Go vulnerability database of the pinned golang.org/x/vulndb
# snapshot, built locally (vuln.go.dev may be out of reach; the Go module proxy is not).
# Raise VULNDB to take newer reports.
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB      := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR  := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tollgate/vulndb-$(VULNDB)
# What make release stamps into the binaries and writes into dist/.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64
CYCLONEDX := github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

.PHONY: build run test race bench fuzz golden clean deps realdocs vulncheck release screenshot

# Tests and benchmarks run against a real redis-server (and redis-cli, to form a Cluster);
# install them when they are missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || { \
		echo "installing redis-server (Debian package)"; \
		$(SUDO) apt-get update -q >/dev/null && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package; the status page is tested in it)"; \
		$(SUDO) apt-get update -q >/dev/null && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/tollgate

# Everything in one process on the embedded etcd (./data), with the example APIs and the
# development token issuer, so `tollgate token` and `tollgate check` work right away; the
# example backend (examples/backend) answers on the ports the examples name (8081-8088), so
# an Envoy pointed at Tollgate has something to route to. Ctrl-C stops both.
run: build
	@$(GO) build -o bin/backend ./examples/backend
	@./bin/backend & backend=$$!; trap 'kill $$backend 2>/dev/null' EXIT INT TERM; \
	./$(BIN) run --dev -f examples/coffeebar/coffeebar.yaml -f examples/coffeebar/orders-per-user.yaml -f examples/petstore/petstore.yaml -f examples/online-store/online-store.yaml

test: deps
	bash .ci/tracked-files
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(MAKE) --no-print-directory vulncheck
	$(GO) test -count=1 -timeout 20m ./...
	# The Compose quick start, in a module of its own (compose-go stays out of ours).
	cd test/compose && $(GO) vet ./... && $(GO) test -count=1 ./...
	# The Helm chart, rendered with Helm's SDK into the Kubernetes and Istio API types (in a
	# module of its own too).
	cd test/helm && $(GO) vet ./... && $(GO) test -count=1 ./...
	# The status page in headless Chromium (chromedp, in a module of its own).
	cd test/browser && $(GO) vet ./... && $(GO) test -count=1 ./...

# The README's picture of the status page (examples/status/status.png), taken by the
# browser test.
screenshot: deps
	cd test/browser && TOLLGATE_SCREENSHOT=$(CURDIR)/examples/status/status.png $(GO) test -count=1 -run TestStatusPageInABrowser ./...

# Known vulnerabilities in what Tollgate's code calls (standard library included).
vulncheck:
	@test -f $(VULNDB_DIR)/index/db.json || { echo "building the Go vulnerability database ($(VULNDB))"; \
		src=$$(cd / && $(GO) mod download -json golang.org/x/vulndb@$(VULNDB) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		rm -rf $(VULNDB_DIR).tmp && (cd / && $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB) -vulns $$src/data/osv -out $(VULNDB_DIR).tmp) && \
		mv $(VULNDB_DIR).tmp $(VULNDB_DIR); }
	$(GO) run $(GOVULNCHECK) -db file://$(VULNDB_DIR) ./...

# Static binaries for every platform in PLATFORMS with the version stamped in, their SHA-256
# checksums and a CycloneDX SBOM of what the binary contains, in dist/.
release:
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=true \
			-ldflags "-s -w -X github.com/tollgate-gw/tollgate/internal/buildinfo.version=$(VERSION)" \
			-o dist/tollgate-$(VERSION)-$$os-$$arch ./cmd/tollgate; done
	$(GO) run $(CYCLONEDX) app -json -licenses -main cmd/tollgate -output dist/tollgate-$(VERSION).cdx.json
	cd dist && sha256sum tollgate-* > SHA256SUMS && cat SHA256SUMS

# The whole suite under the race detector (needs cgo, so a C compiler; about 3 minutes).
race: deps
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

# Benchmarks print their numbers; they are not pass/fail tests.
bench: deps
	@command -v h2load >/dev/null 2>&1 || { echo "installing nghttp2-client (Debian package, for h2load)"; \
		$(SUDO) apt-get update -q >/dev/null && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nghttp2-client >/dev/null; }
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./extauthz/ ./policies/... ./internal/apimodel/... ./internal/jsonbody/
	$(GO) run ./test/bench/authz
	$(GO) run ./test/bench/tail
	$(GO) run ./test/bench/validation
	$(GO) run ./test/bench/accesslog
	$(GO) run ./test/bench/tracing
	$(GO) run ./test/bench/xds
	$(GO) run ./test/bench/fleet
	$(GO) run ./test/bench/revocation
	$(GO) run ./test/bench/ratelimit
	$(GO) run ./test/bench/startup
	$(GO) run ./test/bench/definitions

# Real public API descriptions from the npm registry (GitHub's, the APIs.guru directory,
# ...) through validate and apply; prints a table. Needs npm; takes about half an hour.
realdocs: build
	bash test/realdocs/run.sh

# Native Go fuzzing, each target for FUZZTIME (the wire decoders' results were reported
# after 10 minutes each: `make fuzz FUZZTIME=10m`). New inputs are minimised for at most
# 3 s, so a large interesting input does not stall a run.
FUZZTIME ?= 60s
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s
fuzz:
	$(FUZZ) -fuzz FuzzDecodeRequest ./xds/
	$(FUZZ) -fuzz FuzzDecodeCheckRequest ./extauthz/
	$(FUZZ) -fuzz FuzzVerify ./policies/jwt/
	$(FUZZ) -fuzz FuzzCheck ./extauthz/
	$(FUZZ) -fuzz FuzzDecodeYAML ./internal/apimodel/openapi/
	$(FUZZ) -fuzz FuzzValidate ./internal/jsonbody/
	$(FUZZ) -fuzz FuzzRunsMatchAsRegexp ./internal/jsonbody/
	$(FUZZ) -fuzz FuzzReadMessage ./internal/analytics/

# Rewrite the control plane's golden output (xds/build/testdata) after a deliberate change;
# review the diff: it is what Envoys will receive.
golden:
	go test ./xds/build -run TestGolden -update

clean:
	rm -rf bin data dist
