import HawserCore

/// How far a replica has applied the log, as two hash chains. `position` is the last position
/// consumed; `entryHash` is the SHA-256 of the last entry applied (a stale entry, see
/// `LogChain.Verdict.stale`, is consumed but not applied). Each entry names the hash of the one
/// applied before it, so the hash stands for the whole log up to there. `stateHash` chains every entry's hash with the outcomes the replica
/// decided for it. Two replicas with equal heads applied the same entries and decided them alike.
public struct ChainHead: Sendable, Hashable, CustomStringConvertible {
    public var position: UInt64
    public var entryHash: SecureHash
    public var stateHash: SecureHash

    public init(position: UInt64, entryHash: SecureHash, stateHash: SecureHash) {
        self.position = position
        self.entryHash = entryHash
        self.stateHash = stateHash
    }

    /// Before the first entry.
    public static let genesis = ChainHead(position: 0, entryHash: .zero, stateHash: .zero)

    public var description: String { "\(position) (entry \(entryHash.hex.prefix(16)), state \(stateHash.hex.prefix(16)))" }
}

/// An entry that does not continue the log a replica has verified so far: the bus lost, reordered
/// or replaced entries, or something other than a sequencer wrote to it. The replica applies
/// nothing from here on and signs nothing more; the fields are the evidence an operator needs.
public struct LogBreak: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The entry names another position than the one the log handed it out at.
        case gap
        /// The entry names another predecessor than the entry this replica applied before it.
        case fork
        /// The entry is not a chained log entry at all (undecodable, or written before chaining).
        case unchained
        /// The log ends before the position this replica has applied: it lost entries.
        case truncated
    }
    public var kind: Kind
    /// Where the log handed the entry out (for `truncated`: where the log ends).
    public var position: UInt64
    /// The position the entry names (0 if it names none; for `truncated`: the position applied).
    public var claimedPosition: UInt64
    /// The hash of the entry this replica applied at `position - 1`.
    public var expectedPrevious: SecureHash
    /// The predecessor the entry names, if it names one.
    public var claimedPrevious: SecureHash?
    /// The sequencer the entry names.
    public var sequencer: String
    public var entryHash: SecureHash
    /// For `truncated`: the position past the end is one a majority of the replicas reported
    /// having applied, not one this replica applied.
    public var reportedByMajority = false

    /// The entry at `head`'s position, which this replica applied before it started, does not
    /// authenticate under its notary key: it runs with another key than the one that wrote the
    /// log. Checked at start, because a replica that has nothing more to apply would otherwise
    /// serve (refusing every request signed for the notary's key) and append entries that stop
    /// every process with the right key.
    public static func unauthenticApplied(_ entry: LogEntry, head: ChainHead) -> LogBreak {
        LogBreak(kind: .unchained, position: entry.position, claimedPosition: 0, expectedPrevious: head.entryHash,
                 claimedPrevious: nil, sequencer: "", entryHash: .sha256(entry.payload))
    }

    /// The log ends at `end`, before `head`, which this replica has applied.
    public static func truncated(end: UInt64, head: ChainHead) -> LogBreak {
        LogBreak(kind: .truncated, position: end, claimedPosition: head.position, expectedPrevious: head.entryHash,
                 claimedPrevious: nil, sequencer: "", entryHash: head.entryHash)
    }

    /// The log ends at `end`, before `reached`, which a majority of the replicas report having
    /// applied (this replica need not have: it was down or behind while they did).
    public static func truncated(end: UInt64, reachedByMajority reached: ChainHead) -> LogBreak {
        var evidence = truncated(end: end, head: reached)
        evidence.reportedByMajority = true
        return evidence
    }

    public var description: String {
        switch kind {
        case .gap:
            "log entry at position \(position) says it belongs at position \(claimedPosition) (sequencer `\(sequencer)`): entries were lost or reordered"
        case .fork:
            "log entry at position \(position) follows entry \(claimedPrevious?.hex ?? "?"), but the entry this replica applied at \(position - 1) is \(expectedPrevious.hex) (sequencer `\(sequencer)`): the log forked"
        case .unchained:
            "log entry at position \(position) is not a chained Hawser log entry that this replica's notary key verifies (written with another key: every replica must use the same key file; or undecodable; or written by a Hawser before the verified log)"
        case .truncated where reportedByMajority:
            "the log ends at position \(position), but a majority of the replicas report having applied the entry \(expectedPrevious.hex) at position \(claimedPosition): the log lost entries they may have signed"
        case .truncated:
            "the log ends at position \(position), but this replica has applied the entry \(expectedPrevious.hex) at position \(claimedPosition): the log lost entries"
        }
    }
}

/// The chain rules, as pure functions.
public enum LogChain {
    public enum Verdict: Sendable, Equatable {
        /// The entry continues the chain: apply it.
        case next
        /// The entry names an earlier position than where the log put it: it lost a race for
        /// that position (a server that does not enforce conditional appends under concurrency,
        /// like nats-server 2.9, stored it anyway). Every replica skips it alike; its appender
        /// sends its requests again.
        case stale
        case broken(LogBreak)
    }

    /// Whether `entry` (decoded as `batch`) continues `head`. Positions count every entry the
    /// log handed out; hashes name the entries applied.
    public static func check(_ entry: LogEntry, _ batch: ReplicaCodec.Batch?, entryHash: SecureHash,
                             after head: ChainHead) -> Verdict {
        var evidence = LogBreak(kind: .unchained, position: entry.position, claimedPosition: batch?.position ?? 0,
                                expectedPrevious: head.entryHash, claimedPrevious: batch?.previous,
                                sequencer: batch?.sequencer ?? "", entryHash: entryHash)
        guard let batch, batch.position > 0, let previous = batch.previous else { return .broken(evidence) }
        if entry.position != head.position + 1 || batch.position > entry.position {
            evidence.kind = .gap
            return .broken(evidence)
        }
        if batch.position < entry.position { return .stale }
        if previous != head.entryHash {
            evidence.kind = .fork
            return .broken(evidence)
        }
        return .next
    }

    /// The state hash after an entry with `entryHash` whose requests got `outcomes`, in order.
    public static func nextState(_ state: SecureHash, entryHash: SecureHash,
                                 outcomes: some Sequence<NotarisationOutcome>) -> SecureHash {
        var writer = CanonicalWriter()
        writer.hash(state)
        writer.hash(entryHash)
        for outcome in outcomes { writer.outcome(outcome) }
        return SecureHash.sha256(writer.bytes)
    }
}
