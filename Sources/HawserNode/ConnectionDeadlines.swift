import NIOCore

/// The read deadlines of one HTTP/1.1 server connection, as a value driven by events (sans-I/O:
/// time is an input, actions are returned). It promises that a connection is never held open by
/// its peer without bound: a request head must arrive within `head` of its first byte (of the
/// accept, for the first request), a body within `body` of its head, the next request's first
/// byte within `idle` of the last answer, and after the answer to a `Connection: close` request
/// (or to a request that could not be parsed) the peer has `linger` to close before the server
/// does. While a request is being answered no read deadline runs: the answer may take as long as
/// its route allows (a long poll, an event stream).
struct ConnectionDeadlines {
    struct Limits: Sendable, Equatable {
        var head: TimeAmount
        var body: TimeAmount
        var idle: TimeAmount
        var linger: TimeAmount
    }

    enum Phase: Equatable {
        /// No byte of the next request has arrived.
        case awaitingRequest
        /// The next request's first bytes arrived; its head is incomplete.
        case readingHead
        /// The head arrived; the body has not ended.
        case readingBody
        /// The request is read; its answer is being made.
        case answering
        /// The connection is closing: input is read and dropped until the peer closes.
        case lingering
    }

    /// Which deadline closed the connection (for the log).
    enum Expiry: String, Equatable {
        case head, body, idle, linger
    }

    enum Action: Equatable {
        case none
        /// Make sure a timer fires at or before this deadline, then call `timerFired`.
        case arm(NIODeadline)
        /// Drop input from now on and keep reading it, so that the peer's close is seen; arm the deadline.
        case linger(NIODeadline)
        /// Close the connection now.
        case close(Expiry)
    }

    let limits: Limits
    private(set) var phase: Phase
    private(set) var deadline: NIODeadline?
    /// Request heads read and not yet answered (pipelined requests may queue).
    private var unanswered = 0
    /// A request asked the server to close after answering it; later requests are not served.
    private var closeRequested = false

    /// A new connection: its first request head is due within `head`.
    init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        phase = .readingHead
        deadline = now + limits.head
    }

    var initialAction: Action { deadline.map(Action.arm) ?? .none }

    /// Bytes arrived from the peer (before they are parsed).
    mutating func bytesReceived(now: NIODeadline) -> Action {
        switch phase {
        case .awaitingRequest, .answering:
            // Once a request is fully read, any byte begins the next (pipelined) one.
            guard !closeRequested else { return .none }
            phase = .readingHead
            return arm(now + limits.head)
        case .readingHead, .readingBody, .lingering:
            return .none
        }
    }

    /// A request head was parsed; `closeAfter` when it asks the server to close after answering.
    mutating func headReceived(now: NIODeadline, closeAfter: Bool) -> Action {
        guard !closeRequested, phase != .lingering else { return .none }
        unanswered += 1
        closeRequested = closeAfter
        phase = .readingBody
        return arm(now + limits.body)
    }

    /// The request's body ended.
    mutating func endReceived(now: NIODeadline) -> Action {
        guard phase == .readingBody else { return .none }
        if unanswered == 0 {  // answered before its body ended (an early error)
            phase = .awaitingRequest
            return arm(now + limits.idle)
        }
        phase = .answering
        deadline = nil
        return .none
    }

    /// An answer was written completely.
    mutating func answerSent(now: NIODeadline) -> Action {
        guard phase != .lingering, unanswered > 0 else { return .none }
        unanswered -= 1
        guard unanswered == 0 else { return .none }
        if closeRequested { return startLingering(now: now) }
        guard phase == .answering else { return .none }  // the next request is being read: its deadline runs
        phase = .awaitingRequest
        return arm(now + limits.idle)
    }

    /// The input could not be parsed: the server answers 400 and closes, after the answers it owes.
    mutating func parseFailed(now: NIODeadline) -> Action {
        guard phase != .lingering else { return .none }
        closeRequested = true
        if unanswered == 0 { return startLingering(now: now) }
        phase = .answering
        deadline = nil
        return .none
    }

    /// The peer closed its side while the connection lingers: close now.
    mutating func inputClosed() -> Action {
        phase == .lingering ? .close(.linger) : .none
    }

    /// The armed timer fired.
    mutating func timerFired(now: NIODeadline) -> Action {
        guard let deadline else { return .none }
        guard now >= deadline else { return .arm(deadline) }
        switch phase {
        case .awaitingRequest: return .close(.idle)
        case .readingHead: return .close(.head)
        case .readingBody: return .close(.body)
        case .lingering: return .close(.linger)
        case .answering: return .none  // no deadline while answering; not reached
        }
    }

    private mutating func arm(_ deadline: NIODeadline) -> Action {
        self.deadline = deadline
        return .arm(deadline)
    }

    private mutating func startLingering(now: NIODeadline) -> Action {
        phase = .lingering
        let deadline = now + limits.linger
        self.deadline = deadline
        return .linger(deadline)
    }
}
