import ServiceLifecycle

/// Runs an election as a swift-service-lifecycle service: it stands until the group shuts down
/// gracefully (SIGTERM), then steps down and withdraws before the service returns.
public struct ElectionService: Service {
    public let election: any Election

    public init(_ election: any Election) { self.election = election }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await election.run() }
    }
}
