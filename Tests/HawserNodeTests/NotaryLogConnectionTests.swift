import Foundation
import HawserTestSupport
import Testing

/// A replica whose NATS servers cannot be reached, on a free port nothing listens on.
@Suite(.timeLimit(.minutes(2))) struct NotaryLogConnectionTests {
    /// It says so in its log, and stops on SIGTERM. Before, it logged nothing (its readiness only
    /// said it had not caught up) and ignored SIGTERM and SIGINT for as long as it kept trying to
    /// connect: its services waited for the shared connect, which nothing cancelled.
    @Test func aReplicaThatCannotReachItsLogSaysSoAndStopsOnSIGTERM() async throws {
        let dir = try TemporaryDirectory()
        let unused = try FreePorts.take(1)[0]
        try writeNotaryFiles(in: dir.path) { c in
            c.log.kind = .jetstream
            c.log.servers = ["nats://127.0.0.1:\(unused)"]
            c.log.replicas = 1
            c.log.members = ["r0"]
            c.log.replicaId = "r0"
        }
        let (notary, _) = try await HawserProcess.notary(config: dir.path + "/hawser.json", mergingErrors: true)
        try await eventually("the log naming the unreachable servers", timeout: .seconds(30)) {
            notary.printed.contains("cannot connect to a NATS server; trying again") && notary.printed.contains("127.0.0.1:\(unused)")
        }
        #expect(await notary.terminate(within: .seconds(20)) == 0, "\(notary.printed)")
    }
}
