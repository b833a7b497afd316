import Coordination
import Foundation
import HawserCore
import Synchronization

/// Checks HTTP Basic credentials against the configured users, without letting password hashing
/// slow anything else down:
/// - a verified header is remembered (by its SHA-256), so the hash is paid once per credential,
///   and concurrent first requests with one header share one check;
/// - checks run on threads of their own (`checkThreads`), never in the shared task pool or on an
///   event loop, so health probes and requests with remembered credentials keep being served
///   however many checks wait;
/// - failed attempts are limited per source address and per user (`LoginThrottle`): beyond the
///   limit a check is refused before hashing, with the time after which to try again.
public final class RPCAuthenticator: Sendable {
    public enum Outcome: Sendable, Equatable {
        case authenticated(RPCUser)
        /// No, malformed or wrong credentials.
        case rejected
        /// Too many failed attempts from this source or on this user: try again after this long.
        case throttled(retryAfter: Duration)
    }

    private struct State {
        /// Headers already verified, to the user they name: the password hash is slow by design.
        var verified: [SecureHash: String] = [:]
        /// Verifications under way: concurrent first requests with one header share one.
        var verifying: [SecureHash: Task<String?, Never>] = [:]
        var passwordChecks = 0
        var throttle: LoginThrottle
    }
    private let users: [String: (user: RPCUser, hash: PasswordHash)]
    /// Checked for a name no user has: answering at once told which names exist (found from
    /// outside, 4 ms against 550 ms).
    private let decoy: PasswordHash
    /// The throttle's bucket for every name that is not configured (no user name holds a NUL).
    static let unknownNames = "\u{0}unknown names"
    private let state: Mutex<State>
    private let threads: PasswordCheckThreads
    /// Compares a password with a hash; tests replace it to hold checks on their threads.
    private let verify: @Sendable (PasswordHash, String) -> Bool

    public convenience init(users: [RPCUser], limits: NodeConfiguration.RPCLogin = .init()) {
        self.init(users: users, limits: limits, verify: { $0.verify($1) })
    }

    init(users: [RPCUser], limits: NodeConfiguration.RPCLogin, verify: @escaping @Sendable (PasswordHash, String) -> Bool) {
        var table = [String: (RPCUser, PasswordHash)]()
        for user in users { if let hash = PasswordHash(user.passwordHash) { table[user.username] = (user, hash) } }
        self.users = table
        let iterations = Set(table.values.map(\.1.iterations))
        decoy = .decoy(iterations: iterations.count == 1 ? iterations.first! : PasswordHash.defaultIterations)
        state = Mutex(State(throttle: LoginThrottle(limits: limits.throttleLimits)))
        threads = PasswordCheckThreads(count: limits.checkThreads)
        self.verify = verify
    }

    /// How many times a password was checked against its hash (the cache missed).
    public var passwordChecks: Int { state.withLock { $0.passwordChecks } }

    /// Who an `Authorization` header names, if its password is right. `source` identifies the
    /// caller for the per-source limit (`NodeRequestContext.source`).
    public func authenticate(authorization: String?, source: String) async -> Outcome {
        guard let authorization, authorization.lowercased().hasPrefix("basic ") else { return .rejected }
        let key = SecureHash.sha256(Array(authorization.utf8))
        let credentials = Self.credentials(authorization)
        let now = Moment.now()
        enum Lookup { case verified(String), verifying(Task<String?, Never>), rejected, throttled(Duration) }
        let lookup = state.withLock { state -> Lookup in
            if let name = state.verified[key] { return .verified(name) }
            if let running = state.verifying[key] { return .verifying(running) }
            guard let credentials else { return .rejected }
            let entry = users[credentials.username]
            // An unknown name is checked against the decoy; all of them share one bucket, so
            // that they cost no more hashing than one user.
            let bucket = entry == nil ? Self.unknownNames : credentials.username
            if case .refused(let wait) = state.throttle.admit(source: source, user: bucket, now: now) {
                return .throttled(wait)
            }
            state.passwordChecks += 1
            let task = Task { await self.check(credentials, against: entry?.hash ?? self.decoy, key: key, source: source) }
            state.verifying[key] = task
            return .verifying(task)
        }
        let name: String?
        switch lookup {
        case .verified(let found): name = found
        case .verifying(let task): name = await task.value
        case .rejected: return .rejected
        case .throttled(let wait): return .throttled(retryAfter: wait)
        }
        guard let name, let user = users[name]?.user else { return .rejected }
        return .authenticated(user)
    }

    /// Hashes on a check thread and records the outcome; returns the user's name if it matches.
    private func check(_ credentials: (username: String, password: String), against hash: PasswordHash, key: SecureHash,
                       source: String) async -> String? {
        let verify = self.verify
        let matches = await threads.run { verify(hash, credentials.password) }
        state.withLock { state in
            state.verifying[key] = nil
            guard matches else { return }
            state.throttle.succeeded(source: source, user: credentials.username, now: .now())
            if state.verified.count > 10_000 { state.verified.removeAll() }
            state.verified[key] = credentials.username
        }
        return matches ? credentials.username : nil
    }

    private static func credentials(_ authorization: String) -> (username: String, password: String)? {
        guard let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// The `Authorization` header value for Basic credentials.
    public static func basic(username: String, password: String) -> String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// The threads password hashes are computed on, taken in turn. Their number bounds how many
/// hashes run at once; checks beyond it wait in the threads' queues, not in the shared pool.
final class PasswordCheckThreads: Sendable {
    private let threads: [DedicatedThread]
    private let next = Atomic<Int>(0)

    init(count: Int) {
        threads = (0..<max(1, count)).map { DedicatedThread(name: "hawser-passwd-\($0)") }
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        let thread = threads[(next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % threads.count]
        return await withTaskExecutorPreference(thread) { work() }
    }

    deinit { for thread in threads { thread.stop() } }
}
