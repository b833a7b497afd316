/// Where an observer of a flow's events stands, written as the SSE `id` of each event: the
/// journal sequence of the last progress step seen, and the status seen since (with the flow's
/// attempts then). A client that reconnects sends the last id it saw (`Last-Event-ID`), and the
/// stream goes on after it: the progress steps after that sequence, each once (a replay after a
/// failover gives a step the same sequence), and the flow's status only if it is not the one seen.
///
/// The text: `<sequence>` after a progress step (`-1` before any), `<sequence>:<status>:<attempts>`
/// after a status, e.g. `7`, `7:hospitalised:2`, `-1:completed:0`; numbers of 1 to 18 digits.
public struct FlowEventCursor: Sendable, Hashable, CustomStringConvertible {
    /// The journal sequence of the last progress step seen, -1 for none.
    public var progress: Int
    /// The status seen since that step, with the flow's attempts then; nil if none.
    public var status: FlowStatus?
    public var attempts: Int

    public init(progress: Int = -1, status: FlowStatus? = nil, attempts: Int = 0) {
        self.progress = progress
        self.status = status
        self.attempts = attempts
    }

    /// Before any event.
    public static let start = FlowEventCursor()

    /// Parses the text form; nil if it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 3, let progress = parts[0] == "-1" ? -1 : Int(digits: parts[0]) else { return nil }
        self.init(progress: progress)
        if parts.count == 3 {
            guard let status = FlowStatus(rawValue: String(parts[1])), let attempts = Int(digits: parts[2]) else { return nil }
            self.status = status
            self.attempts = attempts
        }
    }

    public var description: String {
        status.map { "\(progress):\($0.rawValue):\(attempts)" } ?? String(progress)
    }

    /// Whether an observer here has not seen `event`: a later progress step, or another status.
    public func isNew(_ event: FlowEvent) -> Bool {
        if let sequence = event.sequence { return sequence > progress }
        return event.status != status || event.attempts ?? 0 != attempts
    }

    /// The cursor once `event` has been seen.
    public func advanced(past event: FlowEvent) -> FlowEventCursor {
        if let sequence = event.sequence { return FlowEventCursor(progress: max(progress, sequence)) }
        return FlowEventCursor(progress: progress, status: event.status, attempts: event.attempts ?? 0)
    }
}
