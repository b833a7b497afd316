import Foundation
import HawserTestSupport
import Synchronization

/// A `hawser node run` child process, killed when the value is dropped; a watchdog kills it if
/// the test process itself dies.
final class NodeProcess: Sendable {
    private let process = Process()
    private let watchdog = Mutex<ProcessWatchdog?>(nil)
    private let output = Output()

    /// The child's stdout, and whoever waits for its "listening" line.
    private final class Output: Sendable {
        let state = Mutex<(waiter: CheckedContinuation<Int, any Error>?, text: String)>((nil, ""))
    }

    /// Starts the node with `config` and returns once its RPC API listens.
    static func start(config: String) async throws -> (NodeProcess, port: Int) {
        let node = NodeProcess(config: config)
        return (node, try await node.waitForPort())
    }

    private init(config: String) {
        process.executableURL = URL(fileURLWithPath: NotaryProcess.binary)
        process.arguments = ["node", "run", "--config", config, "--log-level", "error"]
    }

    private func waitForPort() async throws -> Int {
        let pipe = Pipe()
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            let ready = output.state.withLock { state -> (CheckedContinuation<Int, any Error>, Result<Int, any Error>)? in
                state.text += String(decoding: data, as: UTF8.self)
                guard let waiter = state.waiter else { return nil }
                if let line = state.text.split(separator: "\n").first(where: { $0.contains("\"listening\"") }),
                   let range = line.range(of: "\"port\":"), let port = Int(line[range.upperBound...].prefix { $0.isNumber }) {
                    state.waiter = nil
                    return (waiter, .success(port))
                }
                if data.isEmpty {
                    state.waiter = nil
                    return (waiter, .failure(ProcessError(message: "node exited before listening: \(state.text)")))
                }
                return nil
            }
            if data.isEmpty { handle.readabilityHandler = nil }
            if let (continuation, result) = ready { continuation.resume(with: result) }
        }
        return try await withCheckedThrowingContinuation { continuation in
            output.state.withLock { $0.waiter = continuation }
            do {
                try process.run()
                let guardian = try ProcessWatchdog(killing: [process.processIdentifier])
                watchdog.withLock { $0 = guardian }
            } catch {
                output.state.withLock { $0.waiter = nil }
                continuation.resume(throwing: error)
            }
        }
    }

    /// SIGKILL: no shutdown code runs.
    func kill() {
        watchdog.withLock { $0 }?.stop()
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status.
    func terminate() -> Int32 {
        watchdog.withLock { $0 }?.stop()
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill() }
    }
}
