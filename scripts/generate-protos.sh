#!/usr/bin/env bash
# Regenerates the committed Swift code for proto/*.proto: the messages (NAME.pb.swift) and the
# gRPC services (NAME.grpc.swift) of the notary (hawser_notary) and of peer-to-peer delivery
# (hawser_p2p), and the messages of a hot-hot node's bus (hawser_bus, no service). Needs `protoc` (Debian: protobuf-compiler);
# builds protoc-gen-swift and protoc-gen-grpc-swift-2 from the grpc-swift-protobuf version this
# package resolved (and the swift-protobuf it resolved with it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
swift package resolve
# A debug build of the plugins is enough to generate code, and several minutes quicker.
for product in protoc-gen-swift protoc-gen-grpc-swift-2; do
    swift build --product "$product" --package-path .build/checkouts/grpc-swift-protobuf --scratch-path .build-protoc
done
plugins=".build-protoc/debug"
for proto in hawser_notary hawser_p2p; do
    protoc --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" --swift_opt=Visibility=Public \
        --swift_out=Sources/HawserWire --proto_path=proto "proto/$proto.proto"
    protoc --plugin=protoc-gen-grpc-swift="$plugins/protoc-gen-grpc-swift-2" --grpc-swift_opt=Visibility=Public \
        --grpc-swift_out=Sources/HawserWire --proto_path=proto "proto/$proto.proto"
    echo "generated Sources/HawserWire/$proto.pb.swift and $proto.grpc.swift"
done
protoc --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" --swift_opt=Visibility=Public \
    --swift_out=Sources/HawserWire --proto_path=proto proto/hawser_bus.proto
echo "generated Sources/HawserWire/hawser_bus.pb.swift"
