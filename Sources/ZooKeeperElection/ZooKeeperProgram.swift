import Coordination
import ZooKeeper

/// One request the election makes of ZooKeeper. It names what is asked, not where: the shell
/// (or a simulator) knows the paths, the ACL and the candidate's data.
public enum ZooKeeperRequest: Sendable, Hashable {
    /// The names of the candidate nodes.
    case listCandidates
    /// Whether candidate node `node` exists, and which session owns it.
    case exists(node: String)
    /// Deletes candidate node `node`, whatever its version.
    case delete(node: String)
    /// Creates this candidate's ephemeral-sequential node, named `prefix` and a sequence.
    case create(prefix: String)
    /// The epoch node's data, `mzxid` and version.
    case readEpoch
    /// A string setting's data.
    case read(ZooKeeperSetting)
    /// In one multi: check that candidate node `node` exists, and write `record` to the epoch
    /// node if its version is still `version`.
    case claim(node: String, record: EpochRecord, version: Int32)
    /// Whether candidate node `node` exists, leaving a watch on it.
    case watch(node: String)
    /// Writes a string setting (nil: empty).
    case write(ZooKeeperSetting, String?)
}

/// The election's string nodes.
public enum ZooKeeperSetting: Sendable, Hashable {
    /// The pending switchover's target.
    case switchover
    case preferred
}

/// The answer to a `ZooKeeperRequest`, or the error the client threw for it.
public enum ZooKeeperReply: Sendable {
    /// To `listCandidates`.
    case children([String])
    /// To `exists` and `watch`: the node's ephemeral owner (0 for a persistent node); nil when
    /// there is no such node.
    case exists(ephemeralOwner: Int64?)
    /// To `create`: the new node's name (not its path).
    case created(node: String)
    /// To `readEpoch` and `read`.
    case data([UInt8], mzxid: Int64, version: Int32)
    /// To `claim`: the epoch node's new `mzxid`; nil if the answer held no `setData` result.
    case claimed(mzxid: Int64?)
    /// To `delete` and `write`.
    case done
    /// The client threw `error` (a `ZooKeeperError`, or the request's deadline passed): the
    /// program sees it thrown where it asked.
    case failed(any Error)
}

/// One action of the election on ZooKeeper as a program that does no I/O: it names its next
/// request until it has the replies it needs, then finishes with the new `Place`.
///
/// Each `next()` runs the decisions from the beginning with the replies received so far (a
/// replay, as durable workflows do): a round makes fewer than 15 requests, and the decisions stay
/// straight-line code. The same replies always give the same requests.
public struct ZooKeeperProgram: Sendable {
    /// What the program does: one `ElectionCore` action that needs the store.
    public enum Action: Sendable, Hashable {
        /// Stand, read the queue and the settings, claim or move to the back, watch the predecessor.
        case round(RoundRequest)
        /// Leadership given up: reserve it for `handOverTo`, then go to the back.
        case release(handOverTo: String?)
        /// Delete our node.
        case withdraw
        case write(ZooKeeperSetting, String?)
    }

    /// This session's candidate node and the node whose watch we hold (the predecessor). The
    /// watch itself is the shell's; it drops it when `watching` no longer names its node.
    public struct Place: Sendable, Hashable {
        public var node: String?
        /// Kept across rounds: watches are one-shot and an armed one stays registered, so setting
        /// a new one every round would pile them up.
        public var watching: String?
        public init(node: String? = nil, watching: String? = nil) {
            self.node = node
            self.watching = watching
        }
    }

    /// What `next()` found: a request to perform, or the end of the action.
    public enum Step: Sendable {
        /// Perform this request and pass its reply to `receive`.
        case send(ZooKeeperRequest)
        /// Done: the round's view (nil for the other actions) and the new place.
        case finished(ElectionView?, Place)
        /// A reply's error ended the action; the place is as the action left it.
        case failed(any Error, Place)
    }

    public let candidate: Candidate
    /// This session's id: it tells our ephemeral nodes from a duplicate process's.
    public let session: Int64
    public let action: Action
    public let start: Place
    /// The requests sent and their replies, in order.
    public private(set) var exchanged: [(request: ZooKeeperRequest, reply: ZooKeeperReply)] = []
    private var asked: ZooKeeperRequest?

    public init(candidate: Candidate, session: Int64, action: Action, place: Place) {
        self.candidate = candidate
        self.session = session
        self.action = action
        self.start = place
    }

    /// The next request, or how the action ended.
    public mutating func next() -> Step {
        var place = start
        var decisions = ZooKeeperDecisions(candidate: candidate, session: session, replies: Replies(exchanged))
        do {
            switch action {
            case .round(let request):
                let view = try decisions.round(request, &place)
                return .finished(view, place)
            case .release(let handOverTo):
                try decisions.release(handOverTo: handOverTo, &place)
            case .withdraw:
                try decisions.withdraw(&place)
            case .write(let setting, let value):
                try decisions.write(setting, value)
            }
            return .finished(nil, place)
        } catch let next as Replies.NextRequest {
            asked = next.request
            return .send(next.request)
        } catch {
            return .failed(error, place)
        }
    }

    /// The reply to the request the last `next()` named.
    public mutating func receive(_ reply: ZooKeeperReply) {
        guard let request = asked else { preconditionFailure("Invalid state: a reply when no request is outstanding") }
        exchanged.append((request, reply))
        asked = nil
    }
}

/// The replies received so far for one action, handed out in order. When they run out, `ask`
/// throws `NextRequest`: the driver sends that request and runs the decisions again.
struct Replies {
    /// The marker `ask` throws when the replies ran out; only the driver catches it.
    fileprivate struct NextRequest: Error {
        let request: ZooKeeperRequest
    }

    private let exchanged: [(request: ZooKeeperRequest, reply: ZooKeeperReply)]
    private var position = 0

    init(_ exchanged: [(request: ZooKeeperRequest, reply: ZooKeeperReply)]) {
        self.exchanged = exchanged
    }

    /// The reply to `request`; throws the error of a `.failed` reply.
    mutating func ask(_ request: ZooKeeperRequest) throws -> ZooKeeperReply {
        guard position < exchanged.count else { throw NextRequest(request: request) }
        let (sent, reply) = exchanged[position]
        precondition(sent == request, "Invalid replay: asked \(request) where \(sent) was answered")
        position += 1
        if case .failed(let error) = reply { throw error }
        return reply
    }

    mutating func children() throws -> [String] {
        let reply = try ask(.listCandidates)
        guard case .children(let names) = reply else { unexpected(reply, to: .listCandidates) }
        return names
    }

    /// The ephemeral owner of `node` (`exists` or, with `watch`, `watch`); nil: no such node.
    mutating func owner(of node: String, watch: Bool = false) throws -> Int64? {
        let request: ZooKeeperRequest = watch ? .watch(node: node) : .exists(node: node)
        let reply = try ask(request)
        guard case .exists(let owner) = reply else { unexpected(reply, to: request) }
        return owner
    }

    mutating func data(_ request: ZooKeeperRequest) throws -> (data: [UInt8], mzxid: Int64, version: Int32) {
        let reply = try ask(request)
        guard case .data(let data, let mzxid, let version) = reply else { unexpected(reply, to: request) }
        return (data, mzxid, version)
    }

    mutating func created(_ request: ZooKeeperRequest) throws -> String {
        let reply = try ask(request)
        guard case .created(let node) = reply else { unexpected(reply, to: request) }
        return node
    }

    mutating func claimed(_ request: ZooKeeperRequest) throws -> Int64? {
        let reply = try ask(request)
        guard case .claimed(let mzxid) = reply else { unexpected(reply, to: request) }
        return mzxid
    }

    mutating func done(_ request: ZooKeeperRequest) throws {
        let reply = try ask(request)
        guard case .done = reply else { unexpected(reply, to: request) }
    }

    private func unexpected(_ reply: ZooKeeperReply, to request: ZooKeeperRequest) -> Never {
        preconditionFailure("Invalid reply \(reply) to \(request)")
    }
}
