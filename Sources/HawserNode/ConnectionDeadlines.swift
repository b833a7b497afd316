import NIOCore

/// The read deadlines of one HTTP/1.1 server connection, as a value driven by events (sans-I/O:
/// time is an input, actions are returned). It promises that a connection is never held open by
/// its peer without bound: a request head must arrive within `head` of its first byte (of the
/// accept, for the first request), a body within `body` of the server waiting for it (time the
/// server does not ask for more bytes, busy with other work, does not count), the next request's first
/// byte within `idle` of the last answer, and after the answer to a `Connection: close` request
/// (or to a request that could not be parsed) the peer has `linger` to close before the server
/// does. While a request is being answered no read deadline runs: the answer may take as long as
/// its route allows (a long poll, an event stream). Apart from them, answers the peer does not
/// read (the connection's write buffer full) must move again within `idle`: a client that
/// pipelined requests and read no answer held its connection for ever (found from outside).
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
        case head, body, idle, linger, write
    }

    enum Action: Equatable {
        case none
        /// Make sure a timer fires at or before this deadline, then call `timerFired`.
        case arm(NIODeadline)
        /// Drop input from now on and keep reading it, so that the peer's close is seen; arm the deadline.
        case linger(NIODeadline)
        /// Answer 400 `malformed_request` (the input could not be parsed), then linger as above.
        case answerMalformed(lingerUntil: NIODeadline)
        /// Close the connection now.
        case close(Expiry)
    }

    /// What to do with a parse error, besides the action it returns.
    enum ParseErrorRoute: Equatable {
        /// A request's body is being read: its reader hears of the error and answers it.
        case handOver
        /// Nobody reads the input now: the error goes no further (the action says what follows).
        case drop
    }

    let limits: Limits
    private(set) var phase: Phase
    private(set) var deadline: NIODeadline?
    /// Request heads read and not yet answered (pipelined requests may queue).
    private(set) var unanswered = 0
    /// A request asked the server to close after answering it (or the input broke within a
    /// request); later requests are not served.
    private var closeRequested = false
    /// The input broke outside a request's body: after the answers owed, the server answers 400.
    private var owesMalformedAnswer = false
    /// Since when the server has asked for bytes that have not come; nil while it asks for none.
    private var readSince: NIODeadline?
    /// How long the server has waited for the body's bytes so far.
    private var bodyWaited = TimeAmount.zero
    /// While the peer reads none of the answers written (the connection is not writable): when
    /// the connection is closed unless it becomes writable first.
    private(set) var writeDeadline: NIODeadline?

    /// Whether the answer being written is the last on this connection (RFC 9112 section 9.6:
    /// it then says `Connection: close`).
    var answeringLast: Bool { closeRequested && !owesMalformedAnswer && unanswered == 1 }

    /// A new connection: its first request head is due within `head`.
    init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        phase = .readingHead
        deadline = now + limits.head
    }

    var initialAction: Action { deadline.map(Action.arm) ?? .none }

    /// The server asks for more bytes. A body's deadline runs only while it does: a server
    /// that stops reading (its request handlers are busy) held a body back and then closed the
    /// connection at the body deadline, the client having sent everything (found from outside).
    mutating func readRequested(now: NIODeadline) -> Action {
        guard readSince == nil else { return .none }
        readSince = now
        guard phase == .readingBody else { return .none }
        return arm(now + (limits.body - bodyWaited))
    }

    /// Bytes arrived from the peer (before they are parsed).
    mutating func bytesReceived(now: NIODeadline) -> Action {
        defer { readSince = nil }
        switch phase {
        case .awaitingRequest, .answering:
            // Once a request is fully read, any byte begins the next (pipelined) one.
            guard !closeRequested else { return .none }
            phase = .readingHead
            return arm(now + limits.head)
        case .readingBody:
            if let readSince { bodyWaited = bodyWaited + (now - readSince) }
            deadline = nil  // until the server asks for more
            return .none
        case .readingHead, .lingering:
            return .none
        }
    }

    /// A request head was parsed; `closeAfter` when it asks the server to close after answering.
    mutating func headReceived(now: NIODeadline, closeAfter: Bool) -> Action {
        guard !closeRequested, phase != .lingering else { return .none }
        unanswered += 1
        closeRequested = closeAfter
        phase = .readingBody
        bodyWaited = .zero
        guard readSince != nil else {
            deadline = nil
            return .none
        }
        return arm(now + limits.body)
    }

    /// An answer's head is being written. Begun while its request's body still arrives (an early
    /// error: 413 `body_too_large`), the answer is the connection's last: the rest of the body is
    /// not read on (an oversized body was taken at full speed until the body deadline), the
    /// answer says `Connection: close`, and the connection lingers after it. A 413 is the last
    /// also when the body happened to be all in already: whether it was depended on how fast the
    /// peer sent it (a node kept one connection and the notary closed another, found from outside).
    mutating func answerStarting(status: Int) {
        if phase == .readingBody || status == 413, unanswered == 1 { closeRequested = true }
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
        if owesMalformedAnswer { return answerMalformed(now: now) }
        if closeRequested { return startLingering(now: now) }
        guard phase == .answering else { return .none }  // the next request is being read: its deadline runs
        phase = .awaitingRequest
        return arm(now + limits.idle)
    }

    /// The input could not be parsed, so the connection ends. Within a body whose request is
    /// not answered yet, the request's reader answers the error; within a body already answered,
    /// nothing more is said; elsewhere (a head) the server answers 400 itself, after the answers
    /// it owes. Then the connection lingers.
    mutating func parseFailed(now: NIODeadline) -> (route: ParseErrorRoute, action: Action) {
        guard phase != .lingering else { return (.drop, .none) }
        // Bytes sent after a whole request that asked to close (pipelined with it: the parser
        // refuses anything after such a request): dropped, as lingering drops them; its answer
        // is the last, and says so. They were answered 400 besides (found from outside).
        if closeRequested, phase == .answering, !owesMalformedAnswer { return (.drop, .none) }
        closeRequested = true
        if phase == .readingBody {
            guard unanswered > 0 else { return (.drop, startLingering(now: now)) }
            phase = .answering
            deadline = nil
            return (.handOver, .none)
        }
        owesMalformedAnswer = true
        guard unanswered == 0 else {
            phase = .answering
            deadline = nil
            return (.drop, .none)
        }
        return (.drop, answerMalformed(now: now))
    }

    /// The connection stopped (or started again) taking the answers written: the peer reads none.
    mutating func writabilityChanged(writable: Bool, now: NIODeadline) -> Action {
        guard !writable else {
            writeDeadline = nil
            return .none
        }
        guard writeDeadline == nil else { return .none }
        writeDeadline = now + limits.idle
        return .arm(now + limits.idle)
    }

    /// The peer closed its side while the connection lingers: close now.
    mutating func inputClosed() -> Action {
        phase == .lingering ? .close(.linger) : .none
    }

    /// The armed timer fired.
    mutating func timerFired(now: NIODeadline) -> Action {
        if let writeDeadline, now >= writeDeadline { return .close(.write) }
        guard let deadline else { return writeDeadline.map(Action.arm) ?? .none }
        guard now >= deadline else { return .arm(min(deadline, writeDeadline ?? deadline)) }
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
        .linger(lingerDeadline(now: now))
    }

    private mutating func answerMalformed(now: NIODeadline) -> Action {
        owesMalformedAnswer = false
        return .answerMalformed(lingerUntil: lingerDeadline(now: now))
    }

    private mutating func lingerDeadline(now: NIODeadline) -> NIODeadline {
        phase = .lingering
        deadline = now + limits.linger
        return now + limits.linger
    }
}
