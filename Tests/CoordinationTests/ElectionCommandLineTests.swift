import Foundation
import HawserCore
import HawserTestSupport
import Testing

/// `hawser election` and `hawser admin` refuse bad settings and operator mistakes at once, with a
/// sentence that says what is wrong (and a stable code where the store refused).
@Suite(.timeLimit(.minutes(1)))
struct ElectionCommandLineTests {
    /// Runs the binary to its end; returns its exit status and standard error. Waits without
    /// blocking a thread of the test's executor.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stderr: String) {
        let (status, stderr, _) = try await runCapturing(arguments, environment: environment)
        return (status, stderr)
    }

    /// As `run`, with standard output too.
    static func runCapturing(_ arguments: [String], environment: [String: String] = [:],
                             in workingDirectory: String? = nil) async throws -> (status: Int32, stderr: String, stdout: String) {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/stderr", outPath = directory.path + "/stdout"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CandidateProcess.binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try ChildProcesses.start { try process.run() }
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return (status, try String(contentsOfFile: path, encoding: .utf8), try String(contentsOfFile: outPath, encoding: .utf8))
    }

    @Test func aZooKeeperServerWithoutAPortIsRefusedAtStartUp() async throws {
        let (status, stderr) = try await Self.run(["election", "run", "--id", "A", "--zookeeper", "foo",
                                             "--zookeeper-credentials", ZooKeeperCredentialsFile.path])
        #expect(status != 0)
        #expect(stderr.contains("every server with its port"), "\(stderr)")
    }

    @Test func zooKeeperWithoutCredentialsIsRefusedAtStartUp() async throws {
        let (status, stderr) = try await Self.run(["election", "run", "--id", "A", "--zookeeper", "127.0.0.1:2181"])
        #expect(status != 0)
        #expect(stderr.contains("--zookeeper-credentials"), "\(stderr)")
    }

    @Test func thePauseHookIsRefusedWithZooKeeper() async throws {
        let (status, stderr) = try await Self.run(["election", "run", "--id", "A", "--zookeeper", "127.0.0.1:1",
                                                   "--zookeeper-credentials", ZooKeeperCredentialsFile.path],
                                                  environment: ["HAWSER_TEST_PAUSE_IN_LEASE_ROUND": "/nonexistent"])
        #expect(status != 0)
        #expect(stderr.contains("HAWSER_TEST_PAUSE_IN_LEASE_ROUND works with a lease back end"), "\(stderr)")
    }

    /// Timings beyond a day are refused by the option's name: 2^63 ms passed before and trapped the
    /// process later (the stand-aside when it resigned; a watchdog's back-off at its first restart).
    @Test func timingsBeyondADayAreRefusedAtStartUpByTheirOptionsNames() async throws {
        let huge = "9223372036854775807"
        let (status, stderr) = try await Self.run(["election", "run", "--id", "A", "--sqlite", "/tmp/unused-lease.sqlite",
                                                   "--stand-aside-ms", huge, "--lease-ms", "100"])
        #expect(status != 0)
        #expect(stderr.contains("--stand-aside-ms must be 0 to 86400000 ms (a day), not \(huge)"), "\(stderr)")
        let watchdog = try await Self.run(["watchdog", "--id", "A", "--sqlite", "/tmp/unused-lease.sqlite", "--health", "http://127.0.0.1:1/",
                                           "--backoff-initial-ms", huge, "--", "/bin/true"])
        #expect(watchdog.status != 0)
        #expect(watchdog.stderr.contains("--backoff-initial-ms must be at most 86400000 ms (a day), not \(huge)"), "\(watchdog.stderr)")
        let renew = try await Self.run(["election", "run", "--id", "A", "--sqlite", "/tmp/unused-lease.sqlite", "--renew-ms", "1000"])
        #expect(renew.stderr.contains("--renew-ms must be 10 ms to a third of --lease-ms"), "\(renew.stderr)")
    }

    /// A bad candidate id is a usage error like any other bad option (exit 64, with the usage); it
    /// was a failure of the command (exit 1, no usage).
    @Test func aBadCandidateIdIsAUsageError() async throws {
        for arguments in [["election", "run", "--id", "bad id", "--sqlite", "/tmp/unused-lease.sqlite"],
                          ["admin", "prefer", "bad id", "--sqlite", "/tmp/unused-lease.sqlite"],
                          ["watchdog", "--id", "bad id", "--sqlite", "/tmp/unused-lease.sqlite", "--health", "http://127.0.0.1:1/", "--", "/bin/true"]] {
            let (status, stderr) = try await Self.run(arguments)
            #expect(status == 64, "\(arguments)")
            #expect(stderr.contains("candidate id \"bad id\" must be 1-64 characters") && stderr.contains("Usage:"), "\(stderr)")
        }
    }

    @Test func aPartitionCountOutOfRangeOrAPartitionNameTooLongIsRefusedAtStartUp() async throws {
        let cases: [(partitions: String, election: String, says: String)] = [
            ("0", "default", "--partitions must be 1 to 256, not 0"),
            ("257", "default", "--partitions must be 1 to 256, not 257"),
            // 61 characters: a valid name alone, but partition 16's election, "<name>.p16", has 65.
            ("17", String(repeating: "e", count: 61), "with --partitions: election name"),
        ]
        for (partitions, election, says) in cases {
            let (status, stderr) = try await Self.run(["election", "run", "--id", "A", "--sqlite", "/tmp/unused-lease.sqlite",
                                                       "--election", election, "--partitions", partitions])
            #expect(status != 0 && stderr.contains(says), "\(partitions): \(stderr)")
        }
    }

    @Test func preferringANonCandidateIsRefusedWithAStableCode() async throws {
        let directory = try TemporaryDirectory()
        let (status, stderr) = try await Self.run(["admin", "prefer", "nobody", "--sqlite", directory.path + "/lease.sqlite"])
        #expect(status != 0)
        #expect(stderr.contains("unknown_candidate"), "\(stderr)")
        let (switched, refusal) = try await Self.run(["admin", "switchover", "--to", "nobody", "--sqlite", directory.path + "/lease.sqlite"])
        #expect(switched != 0 && refusal.contains("unknown_candidate"), "\(refusal)")
        // A wait out of range is refused before anything is asked (-5 returned at once, as 0 does).
        for wait in ["--wait-ms=-5", "--wait-ms=86400001"] {
            let (status, stderr) = try await Self.run(["admin", "switchover", "--to", "nobody", wait, "--sqlite", directory.path + "/lease.sqlite"])
            #expect(status == 64 && stderr.contains("--wait-ms must be 0 to 86,400,000 ms"), "\(wait): \(stderr)")
        }
    }

    /// An unreachable ZooKeeper is the errors table's `coordination_unavailable` (found from
    /// outside: the command printed the client's `connectionLoss`).
    @Test func anUnreachableZooKeeperIsCoordinationUnavailable() async throws {
        let directory = try TemporaryDirectory()
        try "hawser:secret\n".write(toFile: directory.path + "/zk.credentials", atomically: true, encoding: .utf8)
        let closed = try FreePorts.take(1)[0]
        let (status, stderr) = try await Self.run(["admin", "status", "--zookeeper", "127.0.0.1:\(closed)",
                                                   "--zookeeper-credentials", directory.path + "/zk.credentials"])
        #expect(status == 1 && stderr.contains("coordination_unavailable: ") && stderr.contains("cannot reach ZooKeeper at 127.0.0.1:\(closed)"),
                "\(stderr)")
    }

    /// A lease file named without a directory lives in the working directory (it failed: "The
    /// file doesn't exist", the empty directory part created).
    @Test func aBareLeaseFileNameIsInTheWorkingDirectory() async throws {
        let directory = try TemporaryDirectory()
        let (status, stderr, stdout) = try await Self.runCapturing(["admin", "status", "--sqlite", "lease.sqlite"], in: directory.path)
        #expect(status == 0 && stdout.contains("\"epoch\""), "\(stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/lease.sqlite"))
        // Nothing stood in it: perhaps a misspelt --election, which the output alone would not show.
        #expect(stderr.contains("nothing has ever stood in election default"), "\(stderr)")
    }
}
