import Coordination
import HawserCore
import HawserWire

/// The notary as its API sees it: validate, append, await the replica's signed answer.
public final class Notary: Sendable {
    public let identity: Party
    private let validator: RequestValidator
    private let log: any ReplicatedLog
    private let appender: LogAppender
    private let waiters: AnswerWaiters
    private let store: any NotaryStore
    private let quorum: Quorum
    private let signer: SigningKey
    private let limits: NotaryLimits
    private let metrics: NotaryMetrics

    public init(name: String, signer: SigningKey, authorisedParties: [Party]?, limits: NotaryLimits, log: any ReplicatedLog,
                appender: LogAppender, waiters: AnswerWaiters, store: any NotaryStore, quorum: Quorum, metrics: NotaryMetrics) {
        self.identity = Party(name: name, publicKey: signer.publicKey)
        self.validator = RequestValidator(notary: signer.publicKey, authorisedParties: authorisedParties,
                                          maxStateRefs: limits.maxStateRefs)
        self.log = log
        self.appender = appender
        self.waiters = waiters
        self.store = store
        self.quorum = quorum
        self.signer = signer
        self.limits = limits
        self.metrics = metrics
    }

    /// Notarises one request; throws `APIError` for a request that was refused or not decided in time.
    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        let result = await notarise(batch: [request])[0]
        return try result.get()
    }

    /// Notarises many requests with one log append; one result per request, in order. Invalid
    /// requests get their error and touch nothing; the others proceed.
    public func notarise(batch requests: [NotarisationRequest]) async -> [Result<NotarisationAnswer, APIError>] {
        var results = [Result<NotarisationAnswer, APIError>?](repeating: nil, count: requests.count)
        await notarise(batch: requests) { index, result in results[index] = result }
        return results.map { $0! }
    }

    /// Notarises many requests with one validation pass (a large batch's signatures checked on
    /// every core) and one log append, and hands each result to `each` (with the request's index)
    /// as soon as it is known: a refused request at once, without waiting for the others' append;
    /// the others as the replica answers them. `each` is called once per request, before this returns.
    public func notarise(batch requests: [NotarisationRequest],
                         each: (Int, Result<NotarisationAnswer, APIError>) -> Void) async {
        let start = ContinuousClock.now
        defer { recordLatency(since: start) }
        if let refusal = quorum.health.refusal {
            for index in requests.indices { report(index, .failure(refusal), each) }
            return
        }
        let errors = await validator.checkAll(requests)
        var valid = [Int]()
        valid.reserveCapacity(requests.count)
        for (index, error) in errors.enumerated() {
            if let error { report(index, .failure(error), each) } else { valid.append(index) }
        }
        guard !valid.isEmpty else { return }
        let slots = waiters.register(valid.map { requests[$0].txId })
        do {
            try await appender.append(valid.map { requests[$0] })
        } catch {
            slots.forEach(waiters.remove)
            let failure = Self.apiError(error)
            for index in valid { report(index, .failure(failure), each) }
            return
        }
        await waiters.results(of: slots, within: limits.requestTimeout) { slot, result in report(valid[slot], result, each) }
    }

    /// The recorded outcome of `txId`, freshly signed as a one-leaf batch once the quorum has
    /// confirmed the position that decided it.
    public func answer(for txId: SecureHash) async throws -> NotarisationAnswer {
        var recorded = try await recordedOutcome(of: txId)
        if recorded == nil && !quorum.isAlone {
            // Another replica may have signed it while this one was behind: "none" is this
            // replica's answer only once it has applied the log as it ends now.
            try await applyToLogEnd()
            recorded = try await recordedOutcome(of: txId)
        }
        // Read after the outcome (or its absence): the entry that decided it, or the log this
        // replica searched, ends at or before this position. Either answer holds only once a
        // majority applied the same chain that far: a replica shown another entry than the others
        // would otherwise sign an outcome they contradict, or say "none" of one they signed.
        let applied = quorum.appliedSignal.value
        if quorum.confirmed < applied {
            if let refusal = quorum.health.refusal { throw refusal }
            let confirmed = quorum.confirmedSignal
            do {
                try await withDeadline(limits.requestTimeout, "confirming the outcome") { try await confirmed.wait(beyond: applied - 1) }
            } catch is CancellationError {
                throw APIError(.shuttingDown, "the notary is shutting down; retry the request")
            } catch {
                throw APIError(.noQuorum, "the replicas did not confirm this replica's log through position \(applied) within "
                               + "\(limits.requestTimeout), so it cannot answer for the transaction: fewer than a majority of them are ready")
            }
        }
        guard let outcome = recorded else {
            throw APIError(.transactionNotFound, "this notary has no outcome for transaction \(txId.hex)")
        }
        let leaf = NotarisationAnswer.leafHash(txId: txId, outcome: outcome)
        let signature = signer.sign(NotarisationAnswer.batchSigningPayload(root: leaf))
        return NotarisationAnswer(txId: txId, outcome: outcome, proof: MerkleProof(leafIndex: 0, leafCount: 1, path: []),
                                  signature: signature)
    }

    private func recordedOutcome(of txId: SecureHash) async throws(APIError) -> NotarisationOutcome? {
        do { return try await store.outcome(of: txId) } catch { throw Self.apiError(error, "read the transaction's outcome") }
    }

    /// Returns once this replica has applied the log through the position it ends at now, which
    /// must be at least as far as a majority of the replicas report having applied.
    private func applyToLogEnd() async throws {
        if let refusal = quorum.health.refusal { throw refusal }
        let applied = quorum.appliedSignal
        let lost: LogBreak?
        do {
            lost = try await withDeadline(limits.requestTimeout, "applying the log to its end") { [log, quorum] in
                let end = try await log.lastPosition(applied: max(applied.value, quorum.majorityReached))
                if let lost = quorum.logLost(end: end) { return lost }
                if end > 0 { try await applied.wait(beyond: end - 1) }
                return nil
            }
        } catch is CancellationError {
            throw APIError(.shuttingDown, "the notary is shutting down; retry the request")
        } catch {
            throw APIError(.timeout, "this replica has not applied the log to its end within \(limits.requestTimeout), so it cannot "
                           + "tell whether another replica recorded the transaction; ask again or ask another replica")
        }
        // The replica stops on it too (`Replica`); this answer need not wait for that.
        if let lost, let refusal = QuorumHealth.diverged(lost, []).refusal { throw refusal }
    }

    private func recordLatency(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        metrics.latency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }

    private func report(_ index: Int, _ result: Result<NotarisationAnswer, APIError>,
                        _ each: (Int, Result<NotarisationAnswer, APIError>) -> Void) {
        if case .failure(let error) = result { metrics.rejected(error.code.rawValue).increment() }
        each(index, result)
    }

    /// What a failure to `doing` (a phrase: "record the request") is to the client. A database
    /// that cannot be reached now (PostgreSQL down) is `database_unavailable`, retryable: nothing
    /// the client sent was wrong.
    public static func apiError(_ error: any Error, _ doing: String = "record the request") -> APIError {
        if let error = error as? APIError { return error }
        if error is CancellationError { return APIError(.shuttingDown, "the notary is shutting down; retry the request") }
        if let transient = error as? any PossiblyTransientError, transient.isTransient {
            return APIError(.databaseUnavailable, "the notary could not \(doing), its database cannot be reached now (\(error)); retry the request")
        }
        return APIError(.internalError, "the notary could not \(doing): \(error)")
    }
}
