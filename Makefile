# keyless: run `make help` for the targets.

GO       ?= go
BIN      := bin
# The version lives in VERSION only; the binary (ldflags), the image labels
# and web-component/package.json (checked by a test) follow it.
VERSION  := $(shell cat VERSION)
REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.revision=$(REVISION)
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
FUZZTIME ?= 30s
# Fuzz targets, as package:Name, found in the test files.
FUZZ_TARGETS = $(shell grep -rl --include='*_test.go' '^func Fuzz' sidecar wasm internal 2>/dev/null | \
	xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed -E 's|/[^/]*_test.go:func |:|')

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 16

.PHONY: deps
deps: ## install test and demo dependencies (apt redis-server chromium, npm ci, Go modules)
	bash .ci/deps

.PHONY: build
build: ## build bin/keyless
	$(GO) build -ldflags='$(LDFLAGS)' -o $(BIN)/keyless ./sidecar/cmd/keyless

.PHONY: image
image: wasm ## build the container image keyless:VERSION with podman (Containerfile, FROM scratch)
	GO=$(GO) bash deploy/image/build.sh

.PHONY: release
release: ## cross-compile dist/keyless-VERSION-OS-ARCH[.exe] for RELEASE_PLATFORMS, with SHA256SUMS
	GO=$(GO) bash .ci/release $(VERSION) $(REVISION) $(RELEASE_PLATFORMS)

.PHONY: helm
helm: ## build bin/helm from the separate tools/helm module (the chart tests run it)
	@[ -x $(BIN)/helm ] && [ $(BIN)/helm -nt tools/helm/go.mod ] || $(GO) build -C tools/helm -o $(CURDIR)/$(BIN)/helm helm.sh/helm/v4/cmd/helm

# Ory Hydra v2.3.0 for the /device sign-in test (login.oidc), built from
# its own module so its dependency graph never touches keyless's go.mod;
# with SQLite, for its in-memory database (DSN=memory).
HYDRA := .cache/bin/hydra

.PHONY: hydra
hydra: $(HYDRA) ## build Ory Hydra (tools/hydra) into .cache/bin for the login.oidc test
$(HYDRA): tools/hydra/go.mod tools/hydra/go.sum
	@mkdir -p $(dir $(HYDRA))
	$(GO) build -C tools/hydra -tags sqlite,sqlite_omit_load_extension -o $(CURDIR)/$(HYDRA) github.com/ory/hydra/v2

# oauth2-proxy v7.15.6 for `make bench-peers`, built from its own module
# (tools/oauth2-proxy) so its dependency graph never touches keyless's go.mod.
OAUTH2_PROXY := .cache/bin/oauth2-proxy

.PHONY: oauth2-proxy
oauth2-proxy: $(OAUTH2_PROXY) ## build oauth2-proxy (tools/oauth2-proxy) into .cache/bin for bench-peers
$(OAUTH2_PROXY): tools/oauth2-proxy/go.mod tools/oauth2-proxy/go.sum
	@mkdir -p $(dir $(OAUTH2_PROXY))
	$(GO) build -C tools/oauth2-proxy -o $(CURDIR)/$(OAUTH2_PROXY) github.com/oauth2-proxy/oauth2-proxy/v7

.PHONY: wasm
wasm: ## build the browser client (GOOS=js GOARCH=wasm) into web-component/
	@if [ -d wasm ] && ls wasm/*.go >/dev/null 2>&1; then \
		GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o web-component/keyless.wasm ./wasm && \
		cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" web-component/wasm_exec.js; \
	else echo "wasm: no browser client yet"; fi

# The browser module's budget, gzip -9 bytes: 1.0 MB, what a phone on a
# slow connection downloads while the user reads the button.
WASM_BUDGET := 1048576

.PHONY: wasm-size
wasm-size: wasm ## print the browser module's raw and gzip size; fail above the 1.0 MB gzip budget
	@raw=$$(stat -c %s web-component/keyless.wasm); gz=$$(gzip -9 -c web-component/keyless.wasm | wc -c); \
	echo "keyless.wasm: $$raw bytes raw, $$gz bytes gzip (budget $(WASM_BUDGET))"; \
	[ $$gz -le $(WASM_BUDGET) ] || { echo "wasm-size: over the $(WASM_BUDGET)-byte gzip budget: see what links with GOOS=js GOARCH=wasm go list -deps ./wasm" >&2; exit 1; }

EDGE_DIST := sidecar/edge/dist

.PHONY: edge
edge: ## build the Cloudflare Worker (GOOS=js GOARCH=wasm) into sidecar/edge/dist
	@mkdir -p $(EDGE_DIST)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o $(EDGE_DIST)/keyless-edge.wasm ./sidecar/edge/worker
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(EDGE_DIST)/wasm_exec.js
	cp sidecar/edge/worker/worker.mjs $(EDGE_DIST)/worker.mjs

.PHONY: edge-size
edge-size: edge ## print the Worker's raw and gzip size against Cloudflare's limits
	@raw=$$(cat $(EDGE_DIST)/keyless-edge.wasm $(EDGE_DIST)/wasm_exec.js $(EDGE_DIST)/worker.mjs | wc -c); \
	gz=$$(cat $(EDGE_DIST)/keyless-edge.wasm $(EDGE_DIST)/wasm_exec.js $(EDGE_DIST)/worker.mjs | gzip -9 | wc -c); \
	echo "keyless edge Worker: $$raw bytes raw (limit 67108864), $$gz bytes gzip (Free 3145728, Paid 10485760; keyless budget 2097152)"; \
	[ $$gz -le 2097152 ] || { echo "edge-size: over the 2 MB gzip budget" >&2; exit 1; }

.PHONY: cross
cross: ## compile every package for linux, js/wasm and wasip1 where it must build
	$(GO) build ./...
	GOOS=js GOARCH=wasm $(GO) build ./sidecar/dpop/... ./wasm/... ./sidecar/edge/...
	GOOS=wasip1 GOARCH=wasm $(GO) build ./sidecar/dpop/... ./wasm/client ./wasm/internal/...

.PHONY: lint
lint: ## go mod tidy check, go vet and staticcheck
	@$(GO) mod tidy -diff >/dev/null || { echo "lint: go.mod/go.sum are not tidy; run 'go mod tidy'" >&2; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./sidecar/dpop/... ./wasm/... ./sidecar/edge/...
	$(GO) tool staticcheck ./...

.PHONY: test
test: deps cross lint build wasm helm ## install deps, build for every target, lint, the wasm size budget, a short fuzz pass, then every test
	$(MAKE) --no-print-directory wasm-size
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s
	$(GO) test -count=1 ./...
	node --test --test-concurrency=1 sidecar/edge/test/*.test.mjs web-component/test/*.test.mjs

.PHONY: screenshots
screenshots: build wasm ## refresh docs/screenshots from the Chromium tests
	KEYLESS_SCREENSHOTS=1 node --test --test-concurrency=1 web-component/test/*.test.mjs

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash .ci/fuzz $(FUZZ_TARGETS)

.PHONY: bench
bench: build wasm ## benchmarks: DPoP core, stores, token endpoint, vending, proxy vs pooled bare ReverseProxy (CPU and allocations per request, Redis vs embedded), browser client, edge Worker vs a JS forwarder
	$(GO) test -run '^$$' -bench . -benchmem ./sidecar/dpop/... ./sidecar/store/... ./sidecar/authserver ./sidecar/lease ./sidecar/policy
	$(GO) run ./sidecar/proxy/bench -redis
	@$(MAKE) --no-print-directory wasm-size
	node web-component/test/bench.mjs
	node sidecar/edge/test/revocation-bench.mjs 30
	KEYLESS_EDGE_LOG_LEVEL=warn node sidecar/edge/bench.mjs 400 3

.PHONY: bench-peers
bench-peers: $(OAUTH2_PROXY) ## the proxy beside oauth2-proxy (bearer JWTs) and a pooled bare ReverseProxy: paired throughput ratios, CPU per request (about 1 min)
	$(GO) run ./sidecar/proxy/bench -peers -oauth2-proxy $(OAUTH2_PROXY)

.PHONY: demo
demo: build wasm ## run the Where2Eat demo (demo/README.md): app on http://127.0.0.1:8789, Ctrl-C stops
	GO=$(GO) bash demo/run.sh

.PHONY: demo-test
demo-test: build wasm ## the Where2Eat tests: Go (recommender, app server, keyless.yaml) and the Chromium end-to-end test
	$(GO) test -count=1 ./demo/...
	node --test --test-concurrency=1 web-component/test/demo.test.mjs

.PHONY: demo-clean
demo-clean: ## forget the demo's state: leases, keys, throwaway certificates (.keyless-demo)
	rm -rf .keyless-demo

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) build dist web-component/keyless.wasm web-component/wasm_exec.js $(EDGE_DIST)
