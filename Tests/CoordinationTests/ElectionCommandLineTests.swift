import Foundation
import HawserTestSupport
import Testing

/// `hawser election` and `hawser admin` refuse bad settings and operator mistakes at once, with a
/// sentence that says what is wrong (and a stable code where the store refused).
@Suite(.timeLimit(.minutes(1)))
struct ElectionCommandLineTests {
    /// Runs the binary to its end; returns its exit status and standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CandidateProcess.binary)
        process.arguments = arguments
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test func aZooKeeperServerWithoutAPortIsRefusedAtStartUp() throws {
        let (status, stderr) = try Self.run(["election", "run", "--id", "A", "--zookeeper", "foo",
                                             "--zookeeper-credentials", ZooKeeperCredentialsFile.path])
        #expect(status != 0)
        #expect(stderr.contains("every server with its port"), "\(stderr)")
    }

    @Test func zooKeeperWithoutCredentialsIsRefusedAtStartUp() throws {
        let (status, stderr) = try Self.run(["election", "run", "--id", "A", "--zookeeper", "127.0.0.1:2181"])
        #expect(status != 0)
        #expect(stderr.contains("--zookeeper-credentials"), "\(stderr)")
    }

    @Test func preferringANonCandidateIsRefusedWithAStableCode() throws {
        let directory = try TemporaryDirectory()
        let (status, stderr) = try Self.run(["admin", "prefer", "nobody", "--sqlite", directory.path + "/lease.sqlite"])
        #expect(status != 0)
        #expect(stderr.contains("unknown_candidate"), "\(stderr)")
        let (switched, refusal) = try Self.run(["admin", "switchover", "--to", "nobody", "--sqlite", directory.path + "/lease.sqlite"])
        #expect(switched != 0 && refusal.contains("unknown_candidate"), "\(refusal)")
    }
}
