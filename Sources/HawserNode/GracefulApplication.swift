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

    public init(_ application: Application<Responder>) {
        var http = application
        services = http.services
        http.services = []
        self.http = http
    }

    public var responder: Responder { get async throws { http.responder } }
    public var server: HTTPServerBuilder { http.server }
    public var eventLoopGroup: any EventLoopGroup { http.eventLoopGroup }
    public var configuration: ApplicationConfiguration { http.configuration }
    public var logger: Logger { http.logger }
    public func onServerRunning(_ channel: any Channel) async { await http.onServerRunning(channel) }
    public var processesRunBeforeServerStart: [@Sendable () async throws -> Void] { http.processesRunBeforeServerStart }

    public func run() async throws {
        // The server listed last stops first, as in Hummingbird's group.
        try await ServiceGroup(configuration: .init(services: (services + [http]).map { .stoppingGroupGracefully($0) }, logger: logger)).run()
    }
}

extension ServiceGroupConfiguration.ServiceConfiguration {
    /// `service` in a group that its end or failure stops gracefully.
    public static func stoppingGroupGracefully(_ service: any Service) -> Self {
        .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
    }
}
