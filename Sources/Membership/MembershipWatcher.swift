import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The network definition a node uses, from its file, kept current without a restart: it reads
/// the file every `interval` and takes a new version by `Membership.update` (valid, and a higher
/// version) that fits the node (`fits`: the node's own entry as the node is). A file that cannot
/// be used is logged and the version in use stays, so a bad edit never takes the network away
/// from a running node. A newer version that does not fit is kept as `misfit`: the other nodes
/// may have taken it, and take nothing this node signs with the keys it holds (the node starts no
/// flows meanwhile, docs/network.md).
public final class MembershipWatcher: Service, Sendable {
    /// A newer version the file offers that does not fit this node, and why.
    public struct Misfit: Sendable, Equatable {
        public let version: Int
        public let problems: [String]
    }

    private struct State {
        var membership: Membership
        /// Until a version that fits is taken, or the file holds the one in use again.
        var misfit: Misfit?
        /// The file's bytes last looked at, taken or not (nil: it could not be read): each edit,
        /// and a file gone missing, is judged and logged once.
        var seen: Data?
        var waiters: [(version: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    public let path: String
    private let interval: Duration
    private let logger: Logger
    private let fits: @Sendable (Membership) -> [String]
    private let state: Mutex<State>

    /// Loads the file at `path`; throws if it cannot be used: a node does not start without a
    /// network. `fits` names what keeps a definition from describing this node (none: it fits);
    /// one that does not fit is refused at the start (`doesNotFit`) as later.
    public init(path: String, interval: Duration, logger: Logger,
                fits: @escaping @Sendable (Membership) -> [String] = { _ in [] }) throws(MembershipError) {
        let data = try Self.read(path)
        let membership = try Membership(NetworkDefinition.load(data))
        let problems = fits(membership)
        guard problems.isEmpty else { throw .doesNotFit(problems) }
        self.path = path
        self.interval = interval
        self.logger = logger
        self.fits = fits
        state = Mutex(State(membership: membership, seen: data))
    }

    /// The membership in use.
    public var current: Membership { state.withLock { $0.membership } }

    /// The newer version that does not fit this node, while the file offers one.
    public var misfit: Misfit? { state.withLock { $0.misfit } }

    /// Reads the file every `interval` until cancelled or the node shuts down.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.interval)
                    self.check()
                }
            }
        } catch is CancellationError {}
    }

    /// Reads the file once and takes it if it is a newer usable version.
    public func check() {
        let read = Result { () throws(MembershipError) in try Self.read(path) }
        let data = try? read.get()
        let (outcome, due) = state.withLock { state -> (Result<Membership.Change, MembershipError>?, [CheckedContinuation<Void, Never>]) in
            guard data != state.seen else { return (nil, []) }
            state.seen = data
            // The version in use, written again (e.g. restored after it went missing), is no news.
            let taken = Result { () throws(MembershipError) -> (Membership, Membership.Change)? in
                let offered = try NetworkDefinition.load(read.get())
                guard offered != state.membership.definition else {
                    state.misfit = nil
                    return nil
                }
                return try state.membership.update(to: offered)
            }
            guard case .success(let update) = taken else { return (taken.map { $0!.1 }, []) }
            guard let (next, change) = update else { return (nil, []) }
            // A node whose own entry changed (a party's key, its identity key) would sign with keys
            // the others no longer take: a payment it made was notarised and refused by its payee,
            // its tokens in no vault (found from outside). Its configuration changes first, with a restart.
            let problems = fits(next)
            guard problems.isEmpty else {
                state.misfit = Misfit(version: next.version, problems: problems)
                return (.failure(.doesNotFit(problems)), [])
            }
            state.membership = next
            state.misfit = nil
            let due = state.waiters.filter { $0.version <= next.version }.map(\.continuation)
            state.waiters.removeAll { $0.version <= next.version }
            return (.success(change), due)
        }
        switch outcome {
        case .success(let change): logger.notice("took a new network definition", metadata: ["file": "\(path)", "change": "\(change)"])
        case .failure(let error): logger.error("the network definition in use stays", metadata: ["file": "\(path)", "error": "\(error)"])
        case .none: break
        }
        for continuation in due { continuation.resume() }
    }

    /// Returns once a definition of `version` or higher is in use.
    public func waitForVersion(_ version: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.membership.version >= version { return true }
                state.waiters.append((version, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    private static func read(_ path: String) throws(MembershipError) -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw MembershipError.unreadable("\(path): \(error.localizedDescription)")
        }
    }
}
