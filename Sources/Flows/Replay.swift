/// The sans-I/O replay core of one flow execution. The flow asks for effects one at a time; while
/// the journal holds entries the cursor answers from it, checking that the flow asks for the same
/// thing it asked the first time; past the end it tells the caller to execute and record.
public struct Replay: Sendable {
    public enum Step: Sendable, Equatable {
        /// The effect completed before: use this recorded result.
        case replay([UInt8])
        /// New ground: run the effect, then `record` its entry with this sequence number.
        case execute(sequence: Int)
    }

    public private(set) var journal: [JournalEntry]
    public private(set) var position = 0
    /// The sequence number handed out by `.execute` and not yet recorded.
    private var pending: Int?

    public init(journal: [JournalEntry]) {
        self.journal = journal
    }

    public var isReplaying: Bool { position < journal.count }

    public mutating func next(kind: String, descriptor: String) throws(NonDeterminismError) -> Step {
        if let pending {
            throw NonDeterminismError(sequence: pending, expected: nil, actual: "\(kind)(\(descriptor))",
                                      detail: "a flow asked for an effect while another was in progress; effects must be awaited one at a time")
        }
        if position < journal.count {
            let entry = journal[position]
            guard entry.kind == kind, entry.descriptor == descriptor else {
                throw NonDeterminismError(sequence: position, expected: "\(entry.kind)(\(entry.descriptor))",
                                          actual: "\(kind)(\(descriptor))", detail: nil)
            }
            position += 1
            return .replay(entry.result)
        }
        pending = journal.count
        return .execute(sequence: journal.count)
    }

    /// Records the result of the effect `.execute` asked for.
    public mutating func record(_ entry: JournalEntry) {
        precondition(entry.sequence == pending && entry.sequence == journal.count, "recorded an entry out of turn")
        journal.append(entry)
        position = journal.count
        pending = nil
    }

    /// The effect `.execute` asked for failed: nothing is recorded and the flow may ask again.
    public mutating func abandon() {
        pending = nil
    }

    /// Temporal-style patch marker. A flow that reaches the patch for the first time records a
    /// marker and takes the new path (true). A replaying flow whose journal has the marker here
    /// takes the new path too; one whose journal has some other effect here ran the old code, so
    /// it takes the old path (false) and the marker is not consumed.
    public mutating func patched(_ id: String) -> PatchStep {
        if position < journal.count {
            let entry = journal[position]
            if entry.kind == EffectKind.patch && entry.descriptor == id {
                position += 1
                return .taken(true)
            }
            return .taken(false)
        }
        if pending != nil { return .taken(false) }
        pending = journal.count
        return .recordMarker(sequence: journal.count)
    }

    public enum PatchStep: Sendable, Equatable {
        case taken(Bool)
        /// New ground: record a marker entry with this sequence number, then take the new path.
        case recordMarker(sequence: Int)
    }

    /// Called when the flow returns: every journaled effect must have been asked for again.
    public func finish() throws(NonDeterminismError) {
        if position < journal.count {
            let entry = journal[position]
            throw NonDeterminismError(sequence: position, expected: "\(entry.kind)(\(entry.descriptor))", actual: nil,
                                      detail: "the flow returned before reaching every effect its journal holds")
        }
    }
}

/// The flow's code no longer asks for the effects its journal recorded: it was changed without a
/// patch marker, or it reads something (clock, randomness, dictionary order) outside the context.
public struct NonDeterminismError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sequence: Int
    public var expected: String?
    public var actual: String?
    public var detail: String?

    public init(sequence: Int, expected: String?, actual: String?, detail: String? = nil) {
        self.sequence = sequence
        self.expected = expected
        self.actual = actual
        self.detail = detail
    }

    public var description: String {
        var text = "non-determinism at effect \(sequence): "
        switch (expected, actual) {
        case let (e?, a?): text += "the journal holds \(e) but the flow asked for \(a)"
        case let (e?, nil): text += "the journal holds \(e) but the flow did not ask for it"
        case let (nil, a?): text += "the flow asked for \(a)"
        case (nil, nil): text += "unexpected state"
        }
        if let detail { text += " (\(detail))" }
        return text
    }
}
