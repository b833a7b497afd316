#!/usr/bin/env bash
# Regenerates the committed Swift code for proto/*.proto. Needs `protoc` (Debian: protobuf-compiler);
# builds protoc-gen-swift from the swift-protobuf version this package resolved.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
swift package resolve
swift build -c release --product protoc-gen-swift --package-path .build/checkouts/swift-protobuf \
    --scratch-path .build-protoc
plugin=".build-protoc/release/protoc-gen-swift"
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public \
    --swift_out=Sources/HawserWire --proto_path=proto proto/hawser_notary.proto
echo "generated Sources/HawserWire/hawser_notary.pb.swift"
