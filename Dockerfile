# syntax=docker/dockerfile:1
#
# One static, non-root image with every binary of cmd/ in /usr/local/bin: gateway, worker,
# voicesim, enqueue, vqbench. The Helm chart (deploy/helm/voicequeue) picks the binary with the
# container command; the image has no shell.
#
#   docker build -t voicequeue:dev .
#   docker run --rm voicequeue:dev /usr/local/bin/gateway --help
#   docker run --rm -p 8080:8080 voicequeue:dev /usr/local/bin/worker --dev --http-addr :8080   (the demo)

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo), reproducible (-trimpath), time zones embedded for the calling windows.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/ ./cmd/...

# distroless/static: CA certificates and /etc/passwd with the nonroot user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# gateway API, gateway admin, worker admin, simulator
EXPOSE 8080 9090 9091 8090
CMD ["/usr/local/bin/worker", "--help"]
