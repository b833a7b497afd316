import Coordination
import Dispatch
import Foundation
import HawserTestSupport
@testable import HawserNode
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// Wrong passwords must neither starve the node (issue 14, item 6) nor be tried without limit.
@Suite(.timeLimit(.minutes(10))) struct RPCLoginTests {
    let limits = LoginThrottle.Limits(perSource: 3, perUser: 2, refill: .seconds(10))
    let t0 = Moment(nanoseconds: 1_000_000_000)

    @Test func aSourceHasItsBurstThenOneAttemptPerRefill() {
        var throttle = LoginThrottle(limits: limits)
        for _ in 0..<3 { #expect(throttle.admit(source: "a", user: nil, now: t0) == .allowed) }
        #expect(throttle.admit(source: "a", user: nil, now: t0) == .refused(retryAfter: .seconds(10)))
        #expect(throttle.admit(source: "a", user: nil, now: t0 + .seconds(4)) == .refused(retryAfter: .seconds(6)))
        #expect(throttle.admit(source: "a", user: nil, now: t0 + .seconds(10)) == .allowed)
        #expect(throttle.admit(source: "a", user: nil, now: t0 + .seconds(10)) == .refused(retryAfter: .seconds(10)))
        // Another source is not affected.
        #expect(throttle.admit(source: "b", user: nil, now: t0) == .allowed)
    }

    @Test func aUserIsLimitedAcrossSourcesAndRefusalsCostNothing() {
        var throttle = LoginThrottle(limits: limits)
        #expect(throttle.admit(source: "a", user: "ops", now: t0) == .allowed)
        #expect(throttle.admit(source: "b", user: "ops", now: t0) == .allowed)
        for _ in 0..<5 { #expect(throttle.admit(source: "c", user: "ops", now: t0) == .refused(retryAfter: .seconds(10))) }
        // The refusals took nothing from source c: its three attempts are left, for another user.
        for _ in 0..<2 { #expect(throttle.admit(source: "c", user: "viewer", now: t0) == .allowed) }
        #expect(throttle.admit(source: "c", user: nil, now: t0) == .allowed)
        #expect(throttle.admit(source: "c", user: nil, now: t0) == .refused(retryAfter: .seconds(10)))
    }

    @Test func aRightPasswordGivesItsAttemptBack() {
        var throttle = LoginThrottle(limits: limits)
        for _ in 0..<10 {
            #expect(throttle.admit(source: "a", user: "ops", now: t0) == .allowed)
            throttle.succeeded(source: "a", user: "ops", now: t0)
        }
    }

    @Test func theSourcesTrackedAreBounded() {
        var throttle = LoginThrottle(limits: limits, maxSources: 3)
        for i in 0..<10 { #expect(throttle.admit(source: "s\(i)", user: nil, now: t0) == .allowed) }
        #expect(throttle.trackedSources == 3)
        // A source whose bucket has refilled is forgotten first.
        var refilling = LoginThrottle(limits: limits, maxSources: 2)
        _ = refilling.admit(source: "old", user: nil, now: t0)
        _ = refilling.admit(source: "x", user: nil, now: t0 + .seconds(20))
        _ = refilling.admit(source: "x", user: nil, now: t0 + .seconds(20))
        _ = refilling.admit(source: "y", user: nil, now: t0 + .seconds(20))
        #expect(refilling.trackedSources == 2)
        #expect(refilling.admit(source: "x", user: nil, now: t0 + .seconds(20)) == .allowed)
        #expect(refilling.admit(source: "x", user: nil, now: t0 + .seconds(20)) == .refused(retryAfter: .seconds(10)))
    }

    /// A name no user has is checked against a decoy hash of the users' cost, so that it takes as
    /// long as a wrong password. Before, it was answered at once: 4 ms against 550 ms told anyone
    /// which user names exist (found from outside).
    @Test func anUnknownNameIsHashedLikeAKnownOne() async throws {
        let asked = Mutex<[Int]>([])
        let user = RPCUser(username: "ops", passwordHash: PasswordHash.make("secret", iterations: 1_234), permissions: [.all])
        var login = NodeConfiguration.RPCLogin()
        login.attemptsPerUser = 2
        let authenticator = RPCAuthenticator(users: [user], limits: login, verify: { hash, password in
            asked.withLock { $0.append(hash.iterations) }
            return hash.verify(password)
        })
        for name in ["ops", "nobody"] {
            #expect(await authenticator.authenticate(authorization: RPCAuthenticator.basic(username: name, password: "wrong"), source: "x") == .rejected)
        }
        #expect(await authenticator.authenticate(authorization: RPCAuthenticator.basic(username: "nobody", password: "secret"), source: "x") == .rejected)
        #expect(asked.withLock { $0 } == [1_234, 1_234, 1_234] && authenticator.passwordChecks == 3)
        // Every unknown name draws on one bucket: together they cost no more than one user.
        guard case .throttled = await authenticator.authenticate(authorization: RPCAuthenticator.basic(username: "ghost", password: "x"),
                                                                 source: "another") else {
            Issue.record("a third unknown name was hashed")
            return
        }
        #expect(authenticator.passwordChecks == 3)
    }

    @Test func tooManyWrongPasswordsAreRefusedWith429BeforeHashing() async throws {
        var login = NodeConfiguration.RPCLogin()
        login.attemptsPerUser = 3
        login.refillMillis = 3_600_000
        try await withLoginNode(login: login) { client, authenticator in
            try await client.execute(uri: "/v1/flows", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            for attempt in 0..<3 {
                let wrong: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "ops", password: "guess-\(attempt)")]
                try await client.execute(uri: "/v1/flows", method: .get, headers: wrong) { (response: TestResponse) async throws in
                    #expect(response.status == .unauthorized)
                }
            }
            let checks = authenticator.passwordChecks
            let wrong: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "ops", password: "guess-3")]
            try await client.execute(uri: "/v1/flows", method: .get, headers: wrong) { (response: TestResponse) async throws in
                #expect(response.status == .tooManyRequests)
                #expect(String(buffer: response.body).contains("\"code\":\"too_many_attempts\""))
                let retryAfter = response.headers[.retryAfter].flatMap { Int($0) }
                #expect(retryAfter.map { $0 > 3_000 && $0 <= 3_600 } == true, "Retry-After: \(retryAfter.map(String.init) ?? "none")")
            }
            #expect(authenticator.passwordChecks == checks, "a refused attempt must not be hashed")
            // The remembered credential of the user still works, and so does another user.
            try await client.execute(uri: "/v1/flows", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/flows", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
        }
    }

    /// Health probes and requests with remembered credentials are answered while password
    /// checks are held on the check threads, and no more checks run at once than there are
    /// check threads. Before the fix each check was a task in the shared pool: held checks took
    /// every thread of it, and the health request waited until they were let go.
    @Test func healthAnswersWhileWrongPasswordsAreChecked() async throws {
        let held = HeldChecks()
        var login = NodeConfiguration.RPCLogin()
        login.attemptsPerSource = 1_000
        login.attemptsPerUser = 1_000
        let flood = ProcessInfo.processInfo.activeProcessorCount * 2 + 2
        try await withLoginNode(login: login, verify: held.verify) { client, _ in
            try await client.execute(uri: "/v1/flows", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .ok)  // remembered from now on
            }
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for attempt in 0..<flood {
                    let wrong: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "ops", password: "guess-\(attempt)")]
                    group.addTask {
                        try await client.execute(uri: "/v1/flows", method: .get, headers: wrong) { (response: TestResponse) in response.status }
                    }
                }
                await held.firstStarted()
                try await client.execute(uri: "/health/live", method: .get) { (response: TestResponse) async throws in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/v1/flows", method: .get, headers: ops) { (response: TestResponse) async throws in
                    #expect(response.status == .ok)
                }
                #expect(!held.timedOut, "the health request was answered only after held checks gave up")
                held.releaseAll(flood)
                for try await status in group { #expect(status == .unauthorized) }
            }
            #expect(held.mostAtOnce == 1, "checks ran \(held.mostAtOnce) at once on one check thread")
        }
    }
}

/// A node whose authenticator is given, with `login` limits and one check thread.
func withLoginNode(login: NodeConfiguration.RPCLogin, verify: @escaping @Sendable (PasswordHash, String) -> Bool = { $0.verify($1) },
                   _ body: @Sendable (any TestClientProtocol, RPCAuthenticator) async throws -> Void) async throws {
    let dir = try TemporaryDirectory()
    try writeNodeFiles(in: dir.path)
    var configuration = try NodeConfiguration.load(dir.path + "/node.json")
    configuration.rpcLogin = login
    let authenticator = RPCAuthenticator(users: configuration.rpcUsers, limits: login, verify: verify)
    let (app, _) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger,
                                        authenticator: authenticator)
    try await app.test(.router) { client in try await body(client, authenticator) }
}

/// A password check that, for any password but the right one ("secret", "look"), waits until
/// the test lets it go (or 30 s pass), counting how many wait at once.
final class HeldChecks: Sendable {
    private let gate = DispatchSemaphore(value: 0)
    private let state = Mutex<(running: Int, most: Int, timedOut: Bool)>((0, 0, false))
    private let started: AsyncStream<Void>
    private let startedContinuation: AsyncStream<Void>.Continuation

    init() { (started, startedContinuation) = AsyncStream.makeStream() }

    var verify: @Sendable (PasswordHash, String) -> Bool {
        { [self] hash, password in
            guard password.hasPrefix("guess") else { return hash.verify(password) }
            state.withLock { $0.running += 1; $0.most = max($0.most, $0.running) }
            startedContinuation.yield()
            let released = gate.wait(timeout: .now() + 30) == .success
            state.withLock { $0.running -= 1; if !released { $0.timedOut = true } }
            return hash.verify(password)
        }
    }

    func firstStarted() async { for await _ in started { return } }
    func releaseAll(_ count: Int) { for _ in 0..<count { gate.signal() } }
    var timedOut: Bool { state.withLock { $0.timedOut } }
    var mostAtOnce: Int { state.withLock { $0.most } }
}
