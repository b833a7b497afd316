import JetStream

/// `ha.bus` of a hot-hot node (docs/node.md, "The bus"): the NATS servers its processes tell each
/// other on what they wrote to the shared node database, so that the process a write concerns acts
/// at once rather than at its next poll.
public struct BusSettings: Codable, Sendable, Equatable {
    /// NATS server URLs (`nats://host:port`, `tls://...`, `nats://user:pass@host:port`).
    public var servers: [String] = []
    /// The subject prefix of the node's events (`<subject>.events`); every process of the node
    /// uses the same. Nil: `hawser.<ha.election.election>`.
    public var subject: String?

    public init(servers: [String] = [], subject: String? = nil) {
        self.servers = servers
        self.subject = subject
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case servers, subject }

    /// The subject the events go on, given the node's election name.
    func eventsSubject(election: String) -> String { (subject ?? "hawser.\(election)") + ".events" }

    /// Every invalid value, one sentence each.
    func problems() -> [String] {
        var out = [String]()
        if servers.isEmpty { out.append("ha.bus.servers must name at least one NATS server (nats://host:port)") }
        for (i, url) in servers.enumerated() where (try? ServerAddress(url)) == nil {
            out.append("ha.bus.servers[\(i)] \"\(url)\" must be a NATS server URL: nats://host:port, tls://host:port or host:port")
        }
        if let subject, !Self.isSubject(subject) {
            out.append("ha.bus.subject \"\(subject)\" must be 1-200 characters: tokens of A-Z, a-z, 0-9, '_', '-' separated by single dots")
        }
        return out
    }

    /// A NATS subject without wildcards, in the characters every server and client takes.
    static func isSubject(_ text: String) -> Bool {
        (1...200).contains(text.utf8.count) && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { token in
            !token.isEmpty && token.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }
        }
    }
}
