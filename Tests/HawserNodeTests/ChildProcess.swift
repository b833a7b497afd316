import Foundation
import HawserCore

/// A program run to its end, its stdout and stderr captured together.
struct ChildProcess {
    var status: Int32
    var output: String

    /// Runs `executable` with `arguments` in `directory`; stdout and stderr go to a file in
    /// `scratch` (a pipe could fill while the program runs). A program still running after
    /// `limit` is terminated, and its status then says so. `environment` is added to this process's.
    static func run(_ executable: String, _ arguments: [String], in directory: String, scratch: String,
                    limit: Duration = .seconds(600), environment: [String: String] = [:]) async throws -> ChildProcess {
        let outputPath = scratch + "/output-\(UUID().uuidString).txt"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                    do { try ChildProcesses.start { try process.run() } } catch { continuation.resume(throwing: error) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                if process.isRunning { process.terminate() }
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let status = result { return status }
            }
            return -1
        }
        try output.close()
        return ChildProcess(status: status, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// The full path of `name` on PATH, if it is there.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
