import Foundation
import HawserTestSupport
import Testing

/// The benchmarks that run a server in their own process stop it as a normal shutdown: a clean
/// run logs no error (it used to end with "Waiting on child channel: CancellationError()").
@Suite struct BenchShutdownTests {
    @Test(arguments: [
        ["bench", "flows", "--flows", "20", "--warmup", "0", "--clients", "2"],
        ["bench", "notary", "--embedded", "--requests", "50", "--clients", "2"],
    ])
    func aCleanRunLogsNoError(arguments: [String]) async throws {
        let dir = try TemporaryDirectory()
        let run = try await Self.run(arguments, in: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let errors = run.output.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
        #expect(errors.isEmpty, "\(errors)")
    }

    /// Runs the `hawser` binary built beside the tests in `directory`; its stdout and stderr go to
    /// files there (a pipe could fill while the process runs).
    static func run(_ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
        let outputPath = directory + "/output.txt"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HawserProcess.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try output.close()
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}
