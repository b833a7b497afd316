import Foundation
@testable import HawserClient
import HawserCore
import HawserTestSupport
import Testing

/// The callers waiting on `NotaryClient`'s shared gRPC stream (`GRPCNotaryChannel`): a cancelled
/// one is released at once and its place freed, one the server never answers times out with the
/// client's timeout, and callers beyond the server's `grpc.maxInFlightPerStream` wait their turn.
/// The time limit is what fails a caller that is never released.
@Suite(.timeLimit(.minutes(1)))
struct GRPCClientWaitingTests {
    /// No attempt ends on its own while a test runs: only a cancellation releases a held caller.
    static let patient = RetryPolicy(maxAttempts: 1, attemptTimeout: .seconds(3600), deadline: .seconds(3600))

    static func request(_ txId: SecureHash, _ ids: inout Ids, notary: PublicKey) -> NotarisationRequest {
        .signed(txId: txId, inputs: [ids.ref()], requesterName: "O=Alice", key: SigningKey(), notary: notary)
    }

    @Test func aCancelledCallerIsReleasedAtOnceWhileTheStreamGoesOnAnswering() async throws {
        var ids = Ids(seed: 90)
        let cancelled = ids.hash(), kept = ids.hash()
        let others = (0..<20).map { _ in ids.hash() }
        try await FakeGRPCNotary.with(hold: { $0 == cancelled || $0 == kept }) { fake, url in
            var ids = Ids(seed: 91)
            let client = try NotaryClient(urls: [url], notaryKey: fake.key.publicKey, retryPolicy: Self.patient)
            let channel = try #require(client.channels[url])
            let first = Self.request(cancelled, &ids, notary: fake.key.publicKey), second = Self.request(kept, &ids, notary: fake.key.publicKey)
            let callers = [Task { try await client.notarise(first) }, Task { try await client.notarise(second) }]
            await fake.arrival(of: cancelled)
            await fake.arrival(of: kept)
            #expect(channel.waitingCount == 2)

            callers[0].cancel()
            await #expect(throws: CancellationError.self) { try await callers[0].value }
            #expect(channel.waitingCount == 1, "the cancelled caller's place is freed, the other's kept")

            // The same stream answers the callers that come after, while the second held request still waits on it.
            let requests = others.map { Self.request($0, &ids, notary: fake.key.publicKey) }
            let answers = try await withThrowingTaskGroup(of: NotarisationAnswer.self) { group in
                for request in requests { group.addTask { try await client.notarise(request) } }
                return try await group.reduce(into: [NotarisationAnswer]()) { $0.append($1) }
            }
            #expect(Set(answers.map(\.txId)) == Set(others) && answers.allSatisfy { $0.outcome == .committed })
            #expect(channel.waitingCount == 1)

            callers[1].cancel()
            await #expect(throws: CancellationError.self) { try await callers[1].value }
            #expect(channel.waitingCount == 0)
            try await client.shutdown()
        }
    }

    @Test func aRequestTheServerNeverAnswersTimesOutWithTheClientsTimeout() async throws {
        try await FakeGRPCNotary.with(hold: { _ in true }) { fake, url in
            var ids = Ids(seed: 92)
            let timeout = Duration.milliseconds(300)
            let client = try NotaryClient(urls: [url], notaryKey: fake.key.publicKey,
                                          retryPolicy: RetryPolicy(maxAttempts: 1, attemptTimeout: timeout, deadline: .seconds(3600)))
            let started = ContinuousClock.now
            await #expect {
                _ = try await client.notarise(Self.request(ids.hash(), &ids, notary: fake.key.publicKey))
            } throws: { error in
                guard case NotaryClientError.unavailable(1, let last) = error else { return false }
                return last is GRPCNotaryChannel.TimedOut
            }
            #expect(ContinuousClock.now - started >= timeout, "released before its time ran out")
            #expect(try #require(client.channels[url]).waitingCount == 0)
            try await client.shutdown()
        }
    }

    /// With `grpc.maxInFlightPerStream` 1 the notary reads a stream's next request only after it
    /// answered the last: 64 callers on one stream are all answered, and each answer was signed
    /// alone (a notary deciding several at once signs them as one batch).
    @Test func callersBeyondTheServersLimitPerStreamWaitTheirTurnAndAreAllAnswered() async throws {
        try await withGRPCNotary(configure: { $0.maxInFlightPerStream = 1 }) { url, _ in
            let client = try NotaryClient(urls: [url])
            var ids = Ids(seed: 93)
            let requests = (0..<64).map { _ in signed(ids.hash(), inputs: [ids.ref()]) }
            let answers = try await withThrowingTaskGroup(of: NotarisationAnswer.self) { group in
                for request in requests { group.addTask { try await client.notarise(request) } }
                return try await group.reduce(into: [NotarisationAnswer]()) { $0.append($1) }
            }
            #expect(Set(answers.map(\.txId)) == Set(requests.map(\.txId)) && answers.allSatisfy { $0.outcome == .committed })
            #expect(answers.allSatisfy { $0.proof.leafCount == 1 }, "batches signed: \(answers.map(\.proof.leafCount))")
            try await client.shutdown()
        }
    }
}
