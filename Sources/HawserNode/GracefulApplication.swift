import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// A Hummingbird application whose services, when one of them ends or fails, stop the rest as
/// SIGTERM does: the HTTP server first (it stops accepting and finishes its requests), then the
/// others in reverse order. Hummingbird's own group cancels them all at once instead, and a server
/// cancelled while it accepts a connection stops the process in NIO ("Deinited NIOAsyncWriter
/// without calling finish()", swift-nio issue 2813), spending seconds on a backtrace before a
/// supervisor can start it again. The error that ended the group is thrown once all have stopped.
///
/// `hawser node run`, `notary run` and `worker run` run it; Hummingbird's test client runs the
/// application it wraps with Hummingbird's group.
public struct GracefulApplication<Responder: HTTPResponder>: ApplicationProtocol
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    /// The HTTP server alone.
    private let http: Application<Responder>
    public let services: [any Service]
    /// Run when the shutdown begins, before the HTTP server stops (which waits for its requests).
    private let beforeTheServerStops: @Sendable () -> Void

    public init(_ application: Application<Responder>, beforeTheServerStops: @escaping @Sendable () -> Void = {}) {
        var http = application
        services = http.services
        http.services = []
        self.http = http
        self.beforeTheServerStops = beforeTheServerStops
    }

    public var responder: Responder { get async throws { http.responder } }
    public var server: HTTPServerBuilder { http.server }
    public var eventLoopGroup: any EventLoopGroup { http.eventLoopGroup }
    public var configuration: ApplicationConfiguration { http.configuration }
    public var logger: Logger { http.logger }
    public func onServerRunning(_ channel: any Channel) async { await http.onServerRunning(channel) }
    public var processesRunBeforeServerStart: [@Sendable () async throws -> Void] { http.processesRunBeforeServerStart }

    public func run() async throws {
        // The service listed last stops first, as in Hummingbird's group: the shutdown's first
        // step, then the server.
        let services = services + [http, ShutdownBegins(action: beforeTheServerStops)]
        try await ServiceGroup(configuration: .init(services: services.map { .stoppingGroupGracefully($0) }, logger: logger)).run()
    }
}

/// Runs `action` once the group begins to shut down (or is cancelled), then ends.
private struct ShutdownBegins: Service {
    let action: @Sendable () -> Void

    func run() async throws {
        try? await gracefulShutdown()
        action()
    }
}

extension ServiceGroupConfiguration.ServiceConfiguration {
    /// `service` in a group that its end or failure stops gracefully.
    public static func stoppingGroupGracefully(_ service: any Service) -> Self {
        .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
    }
}
