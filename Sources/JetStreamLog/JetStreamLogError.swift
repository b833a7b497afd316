/// Failures of the JetStream log that an operator must act on; retrying cannot fix them.
public enum JetStreamLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Retention already removed the entries after `position` that a replica still needs.
    case positionRemoved(position: UInt64, firstAvailable: UInt64, stream: String)
    /// The replica has applied more entries than the stream holds: the stream lost entries (it
    /// was deleted and recreated, or its servers lost their stores).
    case aheadOfStream(position: UInt64, streamEnd: UInt64, stream: String)
    /// The stream asks for more copies than a server that is not clustered can keep.
    case replicasNeedACluster(replicas: Int, stream: String)
    /// The stream exists with other settings than this replica's `log` section names.
    case streamSettingsDiffer(stream: String, [String])

    public var description: String {
        switch self {
        case .positionRemoved(let position, let first, let stream):
            "the replica needs log entry \(position + 1) of stream \(stream), but retention has removed every entry before \(first): restore this replica from a snapshot of another replica (docs/cluster.md, `hawser notary restore`)"
        case .aheadOfStream(let position, let end, let stream):
            // Never advise deleting the store: with the stream gone it is the only record of what
            // was signed, and a replica started without it signs again what was already spent.
            "the replica has applied log position \(position) but stream \(stream) ends at \(end): the stream lost entries (deleted and recreated, or its servers' stores lost). "
                + "Keep this replica's notary.sqlite: it records what the notary signed, and a replica started without it would sign spends of states already spent. "
                + "If a majority of the replicas agrees and serves, restore this one from one of them (`hawser notary restore --force`); "
                + "otherwise keep the notary stopped and preserve every store (docs/cluster.md, \"When a replica stops with log_diverged\")"
        case .replicasNeedACluster(let replicas, let stream):
            "stream \(stream) is to keep \(replicas) copies (log.replicas), but the NATS server is not clustered "
                + "(JetStream: replicas > 1 not supported in non-clustered mode): give log.servers of a cluster of at least \(replicas) servers, or set log.replicas 1"
        case .streamSettingsDiffer(let stream, let differences):
            "stream \(stream) exists with other settings than this replica's log section (\(differences.joined(separator: "; "))): "
                + "every replica must have the same, and a replica does not change a stream the others use. Correct this "
                + "replica's hawser.json, or change the stream with NATS's own tools and then every replica's (docs/cluster.md)"
        }
    }
}
