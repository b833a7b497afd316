/// Which server a `NodeClient` or a `NotaryClient` asks next, and how long it must wait first,
/// without I/O: its addresses in turn, or the active process a standby named. A hot-warm standby
/// (node or notary) answers 503 `standby` with the active one's address (docs/node.md, "Clients
/// that follow the active node"; docs/configuration.md, "High availability"); the next attempt goes
/// there, even to an address not in the list, instead of to the next address of the list. The
/// address that answered stays current, so later calls go straight to it.
///
/// A `Retry-After` holds for the server that sent it: that server is not asked again before it has
/// passed. Following a standby to the process it names is not asking the standby again, so it waits
/// for the client's back-off only; and when the named process cannot be reached (it died, and the
/// standby does not know yet), the standby's answer is out of date and its `Retry-After` void.
struct FailoverTargets: Sendable, Equatable {
    let addresses: [String]
    /// The address of the list asked last (or that named `followed`).
    private(set) var index = 0
    /// An active node a standby named that is not in the list.
    private(set) var followed: String?
    /// The standby whose answer sent the client to `current`.
    private(set) var namedBy: String?
    /// Until when each node that answered with a `Retry-After` is not to be asked again.
    private(set) var notBefore: [String: ContinuousClock.Instant] = [:]

    init(_ addresses: [String]) {
        precondition(!addresses.isEmpty, "a client needs at least one URL")
        self.addresses = addresses
    }

    /// The base URL to ask now.
    var current: String { followed ?? addresses[index] }

    /// The attempt at `current` failed at `now`: with an answer (`answered`) that may name the
    /// active node's base URL and ask for a `retryAfter`, or without one (the node could not be
    /// reached or did not answer in time).
    mutating func failed(active: String?, retryAfter: Duration?, answered: Bool, now: ContinuousClock.Instant) {
        let asked = current
        notBefore[asked] = retryAfter.map { now + $0 }
        if !answered, let standby = namedBy { notBefore[standby] = nil }
        namedBy = nil
        if let active, active != asked {
            if let known = addresses.firstIndex(of: active) {
                index = known
                followed = nil
            } else {
                followed = active
            }
            namedBy = asked
            return
        }
        // The active node named earlier failed too (or nothing was named): on along the list.
        followed = nil
        index = (index + 1) % addresses.count
    }

    /// What remains at `now` of the `Retry-After` of the node to ask now.
    func wait(now: ContinuousClock.Instant) -> Duration {
        guard let until = notBefore[current], until > now else { return .zero }
        return until - now
    }
}

/// What an error answer says about the next attempt: the active node's address (a standby's
/// answer) and how long to wait at least (`Retry-After`, in seconds).
struct RetryHints: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error to report if no attempt is left.
    var error: NodeClientError
    var active: String?
    var retryAfter: Duration?

    /// The answer's own sentence: the hints are for the retries, not for people (a CLI printed
    /// `RetryHints(error: ..., active: nil, retryAfter: Optional(1.0 seconds))`, found from outside).
    var description: String { "\(error)" }

    /// The active process a standby's answer names, if it is one (`code` `standby`) and names a
    /// valid base URL: a malformed address is no hint, the client walks its list as if none was given.
    static func active(code: String?, named active: String?) -> String? {
        code == "standby" ? active.flatMap { try? NotaryClient.baseURL($0) } : nil
    }

    /// A `Retry-After` header's wait: seconds only (an HTTP date is ignored; no server sends one).
    static func wait(retryAfter: String?) -> Duration? {
        retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 >= 0 ? Duration.seconds($0) : nil }
    }
}
