@testable import Coordination
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// The partitions' rounds on one shared backend: group-committed, each election once a
/// transaction, in order, and a round given up on never run.
@Suite(.timeLimit(.minutes(1)))
struct SharedLeaseBackendTests {
    /// A backend whose first transaction waits until the test lets it end, and which records the
    /// elections of every transaction it runs.
    final class HeldBackend: LeaseBackend {
        private let entered: AsyncStream<Void>.Continuation
        let enteredFirst: AsyncStream<Void>
        private let release: AsyncStream<Void>.Continuation
        private let released: AsyncStream<Void>
        let transactions = Mutex<[[String]]>([])

        init() {
            (enteredFirst, entered) = AsyncStream.makeStream()
            (released, release) = AsyncStream.makeStream()
        }

        func letTheFirstEnd() { release.finish() }

        func prepare() async throws {}
        func close() async {}

        func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
            try await LeaseRound.value(election: election, body) { round in try await transaction(rounds: [round])[0].get() }
        }

        func transaction(rounds: [LeaseRound]) async -> [Result<Void, any Error>] {
            let first = transactions.withLock { log in
                log.append(rounds.map(\.election))
                return log.count == 1
            }
            if first {
                entered.yield()
                for await _ in released {}
            }
            let state = LeaseState(nowMs: 1000, lease: LeaseRow(holder: nil, epoch: .zero, expiresMs: 0), candidates: [])
            return rounds.map { round in Result { _ = try round.decide(state) } }
        }
    }

    final class Order: Sendable { let tags = Mutex<[String]>([]) }

    @Test func roundsThatComeDuringATransactionShareTheNextEachElectionOnceInOrder() async throws {
        let base = HeldBackend()
        let shared = SharedLeaseBackend(base)
        let order = Order()
        let round: @Sendable (String, String) async throws -> String = { election, tag in
            try await shared.transaction(election: election) { _ in
                order.tags.withLock { $0.append(tag) }
                return (LeaseWrites.none, tag)
            }
        }
        let first = Task { try await round("p0", "p0") }
        for await _ in base.enteredFirst { break }
        let queued = [("p1", "p1"), ("p2", "p2"), ("p1", "p1 again"), ("p3", "p3")]
        var tasks: [Task<String, any Error>] = []
        for (election, tag) in queued {
            tasks.append(Task { try await round(election, tag) })
            try await eventually("\(tag) queued") { shared.waiting == tasks.count }
        }
        base.letTheFirstEnd()
        #expect(try await first.value == "p0")
        for (task, (_, tag)) in zip(tasks, queued) { #expect(try await task.value == tag) }
        // One transaction for everything that queued, except p1's second round, which came after
        // p1's first and goes after it.
        #expect(base.transactions.withLock { $0 } == [["p0"], ["p1", "p2", "p3"], ["p1"]])
        #expect(order.tags.withLock { $0 } == ["p0", "p1", "p2", "p3", "p1 again"])
    }

    @Test func aRoundGivenUpOnWhileItWaitsNeverRuns() async throws {
        let base = HeldBackend()
        let shared = SharedLeaseBackend(base)
        let ran = Atomic<Bool>(false)
        let first = Task { try await shared.transaction(election: "p0") { _ in (LeaseWrites.none, 0) } }
        for await _ in base.enteredFirst { break }
        let gaveUp = Task {
            try await shared.transaction(election: "p1") { _ in
                ran.store(true, ordering: .relaxed)
                return (LeaseWrites.none, 1)
            }
        }
        try await eventually("the round queued") { shared.waiting == 1 }
        gaveUp.cancel()
        base.letTheFirstEnd()
        await #expect(throws: CancellationError.self) { try await gaveUp.value }
        #expect(try await first.value == 0)
        #expect(try await shared.transaction(election: "p2") { _ in (LeaseWrites.none, 2) } == 2)
        let ranLater = ran.load(ordering: .relaxed)
        #expect(!ranLater, "the round given up on ran later")
        #expect(base.transactions.withLock { $0 } == [["p0"], ["p2"]])
    }

    /// The rounds of a process's elections fall on the same moments of each renew interval, so
    /// that they come together and share a transaction: wherever a round ends, the pause to the next
    /// ends at the process's next moment.
    @Test func theRoundsOfAProcesssElectionsComeAtTheSameMoments() {
        let interval = Duration.milliseconds(500)
        for phase in [0, 0.3, 0.999] {
            let moments = ([0, 1, 123_456_789, 499_999_999, 500_000_000, 10_000_000_017] as [Int64]).map { ended in
                let pause = LeaseElection.pause(until: interval, now: Moment(nanoseconds: ended), phase: phase)
                #expect(pause > .zero && pause <= interval, "ended at \(ended): \(pause)")
                return (ended + pause.nanosecondsValue - Int64(500_000_000 * phase)) % 500_000_000
            }
            #expect(Set(moments) == [0], "phase \(phase): \(moments)")
        }
    }
}
