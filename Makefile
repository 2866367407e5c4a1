# pagesend — make targets. `make test` is what CI runs (.ci/run).
GO      ?= go
FUZZTIME ?= 10s
PKGS    := ./...

.PHONY: test vet unit fuzz redis-server tidy readme fmt

## test: everything CI needs — vet, then every test with the race detector
## (fuzz targets run on their seed corpora as ordinary tests).
test: redis-server vet unit

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

## redis-server: make sure the binary the test harness starts is installed.
redis-server:
	@scripts/ensure-redis.sh

## fuzz: run every fuzz target for FUZZTIME each (go test allows one at a time).
fuzz:
	@set -e; for t in $$($(GO) test -list '^Fuzz' ./graphapi | grep '^Fuzz'); do \
		echo "== $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./graphapi; \
	done

## readme: regenerate README's error-class table from graphapi's rules.
readme:
	$(GO) run ./internal/tools/readmegen README.md

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy
