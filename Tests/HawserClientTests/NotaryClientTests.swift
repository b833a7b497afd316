import HawserClient
import HawserCore
import HawserWire
import Testing

@Suite(.timeLimit(.minutes(10))) struct NotaryClientTests {
    @Test func refusesBadConfiguration() {
        #expect(throws: NotaryClientError.self) { try NotaryClient(urls: []) }
        #expect(throws: NotaryClientError.self) { try NotaryClient(urls: ["ftp://example.com"]) }
        #expect(throws: NotaryClientError.self) { try NotaryClient(urls: ["not a url"]) }
    }

    @Test func trailingSlashesAreDropped() async throws {
        let client = try NotaryClient(urls: ["http://127.0.0.1:1/", "https://example.com//"])
        #expect(client.baseURLs == ["http://127.0.0.1:1", "https://example.com"])
        try await client.shutdown()
    }

    /// Nothing listens on the discard port: every attempt fails to connect, each one is retried on
    /// the next URL, and the client gives up after `maxAttempts`.
    @Test func givesUpAfterMaxAttemptsWhenNothingAnswers() async throws {
        // A deadline far beyond three refused connections: the limit here is `maxAttempts` (a full
        // run's CPU-bound tests once stretched three attempts past a 20 s deadline).
        let policy = RetryPolicy(maxAttempts: 3, baseBackoff: .milliseconds(1), maxBackoff: .milliseconds(5),
                                 attemptTimeout: .seconds(5), deadline: .seconds(120))
        let notary = SigningKey()
        let client = try NotaryClient(urls: ["http://127.0.0.1:9", "http://127.0.0.1:9"], notaryKey: notary.publicKey,
                                      retryPolicy: policy)
        let request = NotarisationRequest.signed(txId: .random(), inputs: [StateRef(txId: .random(), index: 0)],
                                                 requesterName: "Alice", key: SigningKey(), notary: notary.publicKey)
        await #expect {
            _ = try await client.notarise(request)
        } throws: { error in
            guard case NotaryClientError.unavailable(let attempts, _) = error else { return false }
            return attempts == 3
        }
        await #expect {
            _ = try await client.identity()
        } throws: { error in
            guard case NotaryClientError.unavailable = error else { return false }
            return true
        }
        try await client.shutdown()
    }

    @Test func deadlineStopsRetrying() async throws {
        let policy = RetryPolicy(maxAttempts: 1000, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(50),
                                 attemptTimeout: .seconds(5), deadline: .milliseconds(300))
        let client = try NotaryClient(urls: ["http://127.0.0.1:9"], notaryKey: SigningKey().publicKey, retryPolicy: policy)
        await #expect {
            _ = try await client.answer(for: .random())
        } throws: { error in
            // The deadline, not the attempt cap, ends the retries (how many fit in 300 ms depends on load).
            guard case NotaryClientError.unavailable(let attempts, _) = error else { return false }
            return attempts < 1000
        }
        try await client.shutdown()
    }
}
