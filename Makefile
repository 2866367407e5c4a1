# pagesend — make targets. `make test` is what CI runs (.ci/run).
GO      ?= go
FUZZTIME ?= 10s
PKGS    := ./...

.PHONY: test vet unit fuzz redis-server tidy readme fmt check-deploy

## test: everything CI needs — vet, then every test with the race detector
## (fuzz targets run on their seed corpora as ordinary tests).
test: check-deploy redis-server vet unit

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

## check-deploy: Prometheus rules, their unit tests and the config, with promtool
## when it is installed (go test ./internal/deploycheck checks the rest).
check-deploy:
	@if command -v promtool >/dev/null 2>&1; then \
		promtool check rules deploy/prometheus/alerts.yml && \
		promtool check config deploy/prometheus/prometheus.yml && \
		promtool test rules deploy/prometheus/alerts_test.yml; \
	else \
		echo "promtool not installed; skipping (apt-get install prometheus)"; \
	fi

## redis-server: make sure the binary the test harness starts is installed.
redis-server:
	@scripts/ensure-redis.sh

## fuzz: run every fuzz target for FUZZTIME each (go test allows one at a time).
FUZZPKGS := ./graphapi ./internal/job ./internal/redisopt
fuzz:
	@set -e; for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
			echo "== $$t ($$p)"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p; \
		done; \
	done

## readme: regenerate README's error-class table from graphapi's rules.
readme:
	$(GO) run ./internal/tools/readmegen README.md

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

## e2e: browser check of the monitoring UI — runs `pagesend demo`, opens
## asynqmon at /monitor/ on its ops server in headless Chromium (Debian's,
## driven by playwright-core from e2e/package-lock.json) and checks the
## queues table and the dead-lettered (archived) task; screenshots go to
## e2e/screenshots/. Installs chromium with apt-get when run as root.
.PHONY: e2e
e2e:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
		else \
			echo "make e2e: chromium is not installed, and installing it needs root:" >&2; \
			echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2; \
			exit 1; \
		fi; }
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "make e2e: node and npm are needed (Node.js 20 or later)" >&2; exit 1; }
	cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	$(GO) build -o bin/pagesend ./cmd/pagesend
	node e2e/monitor.mjs

## bench: the load harness (cmd/pagesend-bench) — throughput against bare
## asynq, fleet rate precision across worker processes, hot/cold Page
## isolation, enqueue→send latency, worker RSS and Redis bytes per job — on
## private redis-servers and the fake Graph API on loopback. Prints a table
## and writes bench/results.json (and bench/results.md). BENCHFLAGS passes
## flags through, e.g. BENCHFLAGS='-only a -cpuprofile bench/a.prof'.
.PHONY: bench
bench: redis-server
	$(GO) build -o bin/pagesend ./cmd/pagesend
	$(GO) build -o bin/pagesend-bench ./cmd/pagesend-bench
	bin/pagesend-bench -pagesend bin/pagesend -out bench/results.json $(BENCHFLAGS)

## faults: the fault suite (faults/, build tag `faults`): real `pagesend
## worker` processes against private redis-servers and the fake Graph API —
## SIGKILL mid-load (suppression off and on, ordered conversations), kill
## -9 and restart of Redis (AOF), Graph faults and a throttling storm,
## SIGTERM under load, a Sentinel failover, one shard of three down — then
## every fuzz target for FAULTS_FUZZTIME and govulncheck; prints one table
## and fails if a job is lost or a check fails. About 5 minutes on 2 cores.
FAULTS_FUZZTIME ?= 20s
.PHONY: faults
faults: redis-server
	@GO='$(GO)' MAKE='$(MAKE)' FUZZTIME='$(FAULTS_FUZZTIME)' bash faults/run.sh
