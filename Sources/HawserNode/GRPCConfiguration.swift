/// The `grpc` section of the notary's configuration: the gRPC listener (docs/notary-protocol.md,
/// "gRPC"; docs/configuration.md). Absent: the notary serves HTTP only.
public struct GRPCConfiguration: Codable, Sendable, Equatable {
    /// The address the gRPC service binds (plaintext HTTP/2): an IPv4 or IPv6 address, not a name.
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 9090
    /// Largest request message accepted (the call fails with gRPC status RESOURCE_EXHAUSTED).
    public var maxMessageBytes = 4 * 1024 * 1024
    /// The bytes of request messages the listener takes arriving at once, over every call of every
    /// connection (`GRPCMessageHold`); a message that does not fit resets its call.
    public var maxMessageBytesInFlight = 16 * 1024 * 1024
    /// Most connections open at once (`ListenerCap`).
    public var maxConnections = 4_096
    /// Most calls open at once, over every connection (`ListenerCap`).
    public var maxCalls = 4_096
    /// Most HTTP/2 streams (calls) open at once on one connection.
    public var maxConcurrentStreams = 256
    /// Most requests of one `NotariseStream` call being decided at once; the stream is not read
    /// further (HTTP/2 flow control holds the client back) until one of them is answered.
    public var maxInFlightPerStream = 4096
    /// Most requests of every `NotariseStream` together being decided or waiting for their
    /// result to be written; at the limit no stream is read further until one result is written.
    public var maxInFlight = 65_536
    /// A connection with no call open for this long is closed (gracefully, with GOAWAY); a call
    /// the server cannot write to for this long (its client reads none of its answers) is reset.
    public var idleTimeoutMillis = 300_000

    static let idleRange = 100...86_400_000

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, maxMessageBytes, maxMessageBytesInFlight, maxConnections, maxCalls, maxConcurrentStreams, maxInFlightPerStream, maxInFlight, idleTimeoutMillis
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GRPCConfiguration()
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? d.host
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? d.port
        maxMessageBytes = try c.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? d.maxMessageBytes
        maxMessageBytesInFlight = try c.decodeIfPresent(Int.self, forKey: .maxMessageBytesInFlight) ?? d.maxMessageBytesInFlight
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        maxCalls = try c.decodeIfPresent(Int.self, forKey: .maxCalls) ?? d.maxCalls
        maxConcurrentStreams = try c.decodeIfPresent(Int.self, forKey: .maxConcurrentStreams) ?? d.maxConcurrentStreams
        maxInFlightPerStream = try c.decodeIfPresent(Int.self, forKey: .maxInFlightPerStream) ?? d.maxInFlightPerStream
        maxInFlight = try c.decodeIfPresent(Int.self, forKey: .maxInFlight) ?? d.maxInFlight
        idleTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMillis) ?? d.idleTimeoutMillis
    }

    /// Every invalid value, one sentence each.
    func problems(httpPort: Int) -> [String] {
        var out = [String]()
        if !ListenCheck.isIPAddress(host) { out.append("grpc.host must be an IP address, such as 127.0.0.1, 0.0.0.0 or ::1 (not `\(host.prefix(100))`)") }
        if !(0...65_535).contains(port) { out.append("grpc.port must be 0...65535 (0 picks a free port)") }
        if port != 0 && port == httpPort { out.append("grpc.port must differ from listen.port (\(port)): each needs a port of its own") }
        if !(1024...(64 << 20)).contains(maxMessageBytes) { out.append("grpc.maxMessageBytes must be 1024...67108864") }
        if maxMessageBytesInFlight < maxMessageBytes {
            out.append("grpc.maxMessageBytesInFlight must be at least grpc.maxMessageBytes: a message of the largest size must fit")
        }
        out += ListenerCap.problems(maxConnections, option: "grpc.maxConnections")
        out += ListenerCap.problems(maxCalls, option: "grpc.maxCalls")
        if !(1...65_535).contains(maxConcurrentStreams) { out.append("grpc.maxConcurrentStreams must be 1...65535") }
        if !(1...1_000_000).contains(maxInFlightPerStream) { out.append("grpc.maxInFlightPerStream must be 1...1000000") }
        if !(1...10_000_000).contains(maxInFlight) { out.append("grpc.maxInFlight must be 1...10000000") }
        if !Self.idleRange.contains(idleTimeoutMillis) {
            out.append("grpc.idleTimeoutMillis must be \(Self.idleRange.lowerBound)...\(Self.idleRange.upperBound) (milliseconds)")
        }
        return out
    }
}
