# syntax=docker/dockerfile:1
#
# pagesend: one static binary on distroless (no shell, no package manager),
# running as the nonroot user (65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t pagesend .
#   docker run --rm pagesend version

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly

# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download && go mod verify

COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pagesend ./cmd/pagesend

# distroless/static ships CA certificates (for graph.facebook.com and
# rediss://), tzdata and /etc/passwd with the nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pagesend /pagesend
USER 65532:65532
# Ops server: /metrics, /healthz, /readyz (PAGESEND_OPS_ADDR).
EXPOSE 9321
ENTRYPOINT ["/pagesend"]
CMD ["worker"]
