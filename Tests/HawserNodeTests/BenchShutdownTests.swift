import Foundation
import HawserTestSupport
import Testing

/// The benchmarks that run a server in their own process stop it as a normal shutdown: a clean
/// run logs no error (it used to end with "Waiting on child channel: CancellationError()").
@Suite(.timeLimit(.minutes(10))) struct BenchShutdownTests {
    @Test(arguments: [
        ["bench", "flows", "--flows", "20", "--warmup", "0", "--clients", "2"],
        ["bench", "notary", "--embedded", "--requests", "50", "--clients", "2"],
    ])
    func aCleanRunLogsNoError(arguments: [String]) async throws {
        let dir = try TemporaryDirectory()
        let run = try await ChildProcess.run(HawserProcess.binary, arguments, in: dir.path, scratch: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let errors = run.output.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
        #expect(errors.isEmpty, "\(errors)")
    }
}
