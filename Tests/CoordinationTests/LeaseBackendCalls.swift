import Coordination

/// Single steps on a lease backend for the backend tests: each is one transaction applying
/// `LeaseRules`, as `LeaseElection` and `LeaseAdministration` do.
extension LeaseBackend {
    static func configuration(_ election: String, _ leaseDuration: Duration) -> LeaseConfiguration {
        var configuration = LeaseConfiguration()
        configuration.name = election
        configuration.leaseDuration = leaseDuration
        configuration.renewInterval = leaseDuration / 4
        return configuration
    }

    func round(election: String, candidate: Candidate, healthy: Bool, mayAcquire: Bool, leaseDuration: Duration,
               instance: String? = nil, highestSeen: Epoch = .zero, leadingWith: Epoch? = nil) async throws -> ElectionView {
        let configuration = Self.configuration(election, leaseDuration)
        let request = RoundRequest(healthy: healthy, mayAcquire: mayAcquire, standingAside: false, highestSeen: highestSeen,
                                   leadingWith: leadingWith)
        return try await transaction(election: election) { state in
            let outcome = LeaseRules.round(state, candidate: candidate, instance: instance ?? "test-\(candidate.id)",
                                           request: request, configuration: configuration)
            return (LeaseWrites(lease: outcome.lease, candidate: outcome.candidate), outcome.view)
        }
    }

    func release(election: String, holder: String, epoch: Epoch, handOverTo: String?) async throws {
        try await transaction(election: election) { state in
            (LeaseWrites(lease: LeaseRules.release(state, holder: holder, epoch: epoch, handOverTo: handOverTo)), ())
        }
    }

    func withdraw(election: String, candidate: String, instance: String? = nil) async throws {
        try await transaction(election: election) { _ in
            (LeaseWrites(withdraw: .init(id: candidate, instance: instance ?? "test-\(candidate)")), ())
        }
    }

    func snapshot(election: String, leaseDuration: Duration) async throws -> ElectionSnapshot {
        try await LeaseAdministration(backend: self, configuration: Self.configuration(election, leaseDuration)).snapshot()
    }

    func setPreferred(election: String, _ id: String?, leaseDuration: Duration = .seconds(10)) async throws {
        try await LeaseAdministration(backend: self, configuration: Self.configuration(election, leaseDuration)).setPreferred(id)
    }

    func setTarget(election: String, _ id: String, leaseDuration: Duration) async throws {
        try await LeaseAdministration(backend: self, configuration: Self.configuration(election, leaseDuration)).switchover(to: id)
    }
}
