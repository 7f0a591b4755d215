# voicequeue — `make help` lists the targets.
GO       ?= go
REDIS_URL ?= redis://127.0.0.1:6379/0
export REDIS_URL

.DEFAULT_GOAL := help
.PHONY: help build run test bench fuzz lint tidy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build every binary into ./bin
	$(GO) build -o bin/ ./cmd/...

run: ## the embedded demo: miniredis, simulator, worker and gateway in one process
	$(GO) run ./cmd/worker --dev

test: ## the whole suite with -race (unit on miniredis, integration on the real Redis at REDIS_URL)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

bench: ## end-to-end benchmarks of issue 7 on the real Redis at REDIS_URL (its DB 15), < 5 min
	$(GO) run ./cmd/vqbench

.PHONY: bench-caps
bench-caps: ## 4 worker processes at 100 calls/s and 20 ports against cmd/voicesim, then one killed
	$(GO) run ./cmd/vqbench --only caps

.PHONY: chaos
chaos: ## 2,000 jobs, 3 workers, SIGKILLs, a Redis restart and a 10 s provider outage on its own redis-server (~2.5 min)
	$(GO) run ./cmd/vqchaos

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	./scripts/fuzz.sh $(or $(FUZZTIME),30s)

lint: ## gofmt, go vet, and the Helm chart rendered and decoded against the Kubernetes types
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	cd deploy/chartcheck && $(GO) vet ./... && $(GO) test -count=1 ./...

.PHONY: helm-lint
helm-lint: ## install helm from the Go module proxy (slow: it compiles helm) and run the chart check with helm lint
	command -v helm >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/helm" ] || $(GO) install helm.sh/helm/v3/cmd/helm@v3.22.0
	cd deploy/chartcheck && PATH="$$PATH:$$($(GO) env GOPATH)/bin" $(GO) test -count=1 ./...

tidy: ## go mod tidy
	$(GO) mod tidy
