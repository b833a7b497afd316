import Coordination
import HawserTestSupport
import Logging
import Synchronization
import Testing

/// In-process scenarios every lease backend must pass, with elections made by `backend()`.
enum LeaseScenarios {
    /// Runs the elections while `body` runs, then stops them. The first is leading before the
    /// others start.
    static func running(_ elections: [LeaseElection], _ body: () async throws -> Void) async throws {
        var tasks = [Task { try await elections[0].run() }]
        defer { tasks.forEach { $0.cancel() } }
        try await eventually("\(elections[0].candidate.id) leading") { elections[0].status.role.epoch != nil }
        tasks += elections.dropFirst().map { election in Task { try await election.run() } }
        try await body()
        for task in tasks { task.cancel(); _ = try? await task.value }
    }

    /// A second process with the leader's id is refused with `duplicate_candidate`, never leads,
    /// and the first keeps leading with its epoch.
    static func duplicateIsRefused(configuration: LeaseConfiguration, backend: () throws -> any LeaseBackend) async throws {
        let first = try LeaseElection(candidate: Candidate(id: "A"), backend: try backend(), configuration: configuration)
        let second = try LeaseElection(candidate: Candidate(id: "A"), backend: try backend(), configuration: configuration)
        try await running([first]) {
            try await eventually("A leading") { first.status.role.epoch != nil }
            let epoch = first.status.role.epoch
            let statuses = second.statuses()
            let seen = Task { await statuses.reduce(into: [ElectionStatus]()) { $0.append($1) } }
            await #expect(throws: CoordinationError.duplicateCandidate("A")) { try await second.run() }
            #expect(await !seen.value.contains { $0.role.epoch != nil })
            #expect(first.status.role.epoch == epoch)
        }
    }

    /// A leader A that renews once a minute on a five-minute lease, and a follower B that tries
    /// every 100 ms: B can lead within seconds only through A's release.
    static func slowLeaderQuickFollower() -> (slow: LeaseConfiguration, quick: LeaseConfiguration) {
        var slow = LeaseConfiguration()
        slow.leaseDuration = .seconds(300)
        slow.renewInterval = .seconds(60)
        slow.standAside = .seconds(300)
        var quick = slow
        quick.renewInterval = .milliseconds(100)
        return (slow, quick)
    }

    /// A leader that resigns releases the lease at once, not at its next round: A renews once a
    /// minute, B tries every 100 ms, and B leads within 30 s, which it can only through A's
    /// release (A's lease lasts five minutes). Failed before the round loop was woken for queued work.
    static func aResignationReleasesTheLeaseAtOnce(backend: () throws -> any LeaseBackend) async throws {
        let (slow, quick) = slowLeaderQuickFollower()
        let a = try LeaseElection(candidate: Candidate(id: "A"), backend: try backend(), configuration: slow)
        let b = try LeaseElection(candidate: Candidate(id: "B"), backend: try backend(), configuration: quick)
        try await running([a, b]) {
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            await a.resign()
            try await eventually("B leading before A's next round", timeout: .seconds(30)) { b.status.role.epoch != nil }
        }
    }

    /// A leader whose release is cut short by its own stop (a node resigning as it shuts down:
    /// the release in flight when `run()` is cancelled) still releases the lease at the end of
    /// `run()`, and says nothing of the cut-short one: B leads long before A's five-minute lease
    /// lapses, and A logs no failed release (it logged `releasing the lease failed:
    /// CancellationError()` before, seen by an audit of hot-hot shutdowns).
    static func aReleaseCutShortByTheStopStillReleases(backend: () throws -> any LeaseBackend) async throws {
        let (slow, quick) = slowLeaderQuickFollower()
        let gate = StallOnce()
        let lines = LogLines()
        let a = try LeaseElection(candidate: Candidate(id: "A"), backend: InterceptedBackend(backend: try backend(), before: gate.stall), configuration: slow,
                                  logger: Logger(label: "A", capturingInto: lines))
        let b = try LeaseElection(candidate: Candidate(id: "B"), backend: try backend(), configuration: quick)
        let runA = Task { try await a.run() }
        try await eventually("A leading") { a.status.role.epoch != nil }
        let runB = Task { try await b.run() }
        defer { runB.cancel() }
        try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
        gate.arm()
        await a.resign()
        try await eventually("A's release in flight") { gate.isStalling }
        runA.cancel()
        _ = try? await runA.value
        try await eventually("B leading before A's lease lapses", timeout: .seconds(30)) { b.status.role.epoch != nil }
        #expect(!lines.messages.contains { $0.level >= .warning && $0.text.contains("failed") }, "\(lines.messages.map(\.text))")
        runB.cancel()
        _ = try? await runB.value
    }

    /// A hands over to B, and at once B back to A: A leads again although it handed over a
    /// moment ago (a target takes over whatever its stand-aside), long before `standAside` ends.
    static func switchoverBackIsImmediate(configuration: LeaseConfiguration, backend: () throws -> any LeaseBackend) async throws {
        precondition(configuration.standAside >= .seconds(20))
        let a = try LeaseElection(candidate: Candidate(id: "A"), backend: try backend(), configuration: configuration)
        let b = try LeaseElection(candidate: Candidate(id: "B"), backend: try backend(), configuration: configuration)
        let admin = LeaseAdministration(backend: try backend(), configuration: configuration)
        try await running([a, b]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            await a.resign()  // stands aside for `standAside`
            try await eventually("B leading") { b.status.role.epoch != nil }
            // On a loaded machine A's rounds may come further apart than the window: ask again, as an operator would.
            try await eventually("the switchover to A accepted") { (try? await admin.switchover(to: "A")) != nil }
            try await eventually("A leading again within the stand-aside", timeout: .seconds(25)) { a.status.role.epoch != nil }
        }
        await admin.close()
    }

    /// A switchover to a candidate that stopped answering: accepted only while it was seen within
    /// the hand-over window, and then the leader takes leadership back once the reservation
    /// lapses, long before `standAside`; later the same switchover is refused.
    static func switchoverToADeadCandidate(configuration: LeaseConfiguration, backend: () throws -> any LeaseBackend) async throws {
        precondition(configuration.standAside >= .seconds(20))
        let frozen = Flag()
        let a = try LeaseElection(candidate: Candidate(id: "A"), backend: try backend(), configuration: configuration)
        let b = try LeaseElection(candidate: Candidate(id: "B"), backend: InterceptedBackend(backend: try backend()) {
            // Every call fails while frozen: from the database's side, B died.
            if frozen.isSet { throw CoordinationError.unavailable("frozen") }
        }, configuration: configuration)
        let admin = LeaseAdministration(backend: try backend(), configuration: configuration)
        try await running([a, b]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            let first = try #require(a.status.role.epoch)
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            frozen.set(true)  // B is gone, as if killed, without withdrawing
            do {
                try await admin.switchover(to: "B")
                try await eventually("A leading again within the stand-aside", timeout: .seconds(25)) {
                    (a.status.role.epoch ?? first) > first
                }
            } catch CoordinationError.unknownCandidate {
                // B's last round was already older than the window (a slow machine): refused at once.
            }
            // No event to await here: B's last round must age past the window, which only time does.
            try await Task.sleep(for: configuration.handOverWindow)
            await #expect(throws: CoordinationError.unknownCandidate("B")) { try await admin.switchover(to: "B") }
            try await eventually("A leading") { a.status.role.epoch != nil }
        }
        await admin.close()
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set(_ on: Bool) { value.withLock { $0 = on } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A backend whose transactions first run `before` (which may throw, or hold them up); every
/// other call goes straight to `backend`.
struct InterceptedBackend: LeaseBackend {
    let backend: any LeaseBackend
    let before: @Sendable () async throws -> Void

    func prepare() async throws { try await backend.prepare() }
    func close() async { await backend.close() }
    func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await before()
        return try await backend.transaction(election: election, body)
    }
}

/// Armed, makes the next transaction wait until its task is cancelled, then fail as cancelled.
final class StallOnce: Sendable {
    private let state = Mutex((armed: false, stalling: false))
    func arm() { state.withLock { $0.armed = true } }
    var isStalling: Bool { state.withLock { $0.stalling } }
    /// Once armed, waits until the caller is cancelled, then throws as cancelled; else returns.
    @Sendable func stall() async throws {
        let stalls = state.withLock { state in
            guard state.armed else { return false }
            state = (armed: false, stalling: true)
            return true
        }
        guard stalls else { return }
        while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
        throw CancellationError()
    }
}
