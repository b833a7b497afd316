/// Failures of the JetStream log that an operator must act on; retrying cannot fix them.
public enum JetStreamLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Retention already removed the entries after `position` that a replica still needs.
    case positionRemoved(position: UInt64, firstAvailable: UInt64, stream: String)
    /// The replica has applied more entries than the stream holds: the stream was deleted and
    /// recreated, so this replica's database belongs to another log.
    case aheadOfStream(position: UInt64, streamEnd: UInt64, stream: String)

    public var description: String {
        switch self {
        case .positionRemoved(let position, let first, let stream):
            "the replica needs log entry \(position + 1) of stream \(stream), but retention has removed every entry before \(first): restore this replica from a snapshot of another replica (docs/cluster.md, `hawser notary restore`)"
        case .aheadOfStream(let position, let end, let stream):
            "the replica has applied log position \(position) but stream \(stream) ends at \(end): the stream was replaced; delete this replica's notary.sqlite (or restore a snapshot) and start again"
        }
    }
}
