#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HawserNode
import HawserTestSupport
import Testing

/// One process per data directory, and a taken port found before anything starts (issue 14, item 8).
@Suite(.timeLimit(.minutes(10))) struct DataDirectoryLockTests {
    @Test func aSecondNodeOrNotaryOnOneDataDirectoryIsRefused() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        let data = dir.path + "/data"
        do {
            let first = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
            defer { withExtendedLifetime(first) {} }
            let error = await #expect(throws: DataDirectoryInUse.self) {
                _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
            }
            #expect(error?.description.hasPrefix("the data directory \(data) is in use by process \(getpid()) (") == true,
                    "\(error.map(String.init(describing:)) ?? "")")
            // A notary configured on the node's data directory is refused as well.
            let notaryDir = try TemporaryDirectory()
            try writeNotaryFiles(in: notaryDir.path) { $0.dataDirectory = data }
            await #expect(throws: DataDirectoryInUse.self) {
                _ = try await NotaryNode.application(configuration: try NotaryConfiguration.load(notaryDir.path + "/hawser.json"),
                                               baseDirectory: notaryDir.path, logger: quietLogger)
            }
        }
        // Once the first is gone the directory can be used again.
        _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
    }

    /// A directory that cannot be made is refused in a sentence, not Foundation's error dump
    /// (`Error Domain=NSCocoaErrorDomain Code=4 ... UserInfo={...}`, found from outside).
    @Test func aDataDirectoryThatCannotBeMadeIsRefusedInASentence() throws {
        let error = #expect(throws: DataDirectoryInUse.self) { _ = try DataDirectoryLock(directory: "/proc/hawser-test/data") }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("cannot create it: ") && !text.contains("NSCocoaErrorDomain") && !text.contains("UserInfo"), "\(text)")
    }

    @Test func aTakenPortIsFoundBeforeTheDataDirectoryIsOpened() async throws {
        let taken = try ListeningSocket()
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var configuration = try NodeConfiguration.load(dir.path + "/node.json")
        configuration.listen.port = taken.port
        let error = await #expect(throws: ListenAddressUnavailable.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        // The option and the holder, this test's process, are named (Linux's /proc tells).
        #expect(error?.description.hasPrefix("cannot listen on 127.0.0.1:\(taken.port) (listen.host, listen.port): the port is in use by another process (pid \(getpid()) (") == true,
                "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/node.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/log.sqlite"))

        let notaryDir = try TemporaryDirectory()
        try writeNotaryFiles(in: notaryDir.path, port: taken.port)
        await #expect(throws: ListenAddressUnavailable.self) {
            _ = try await NotaryNode.application(configuration: try NotaryConfiguration.load(notaryDir.path + "/hawser.json"),
                                           baseDirectory: notaryDir.path, logger: quietLogger)
        }
        #expect(!FileManager.default.fileExists(atPath: notaryDir.path + "/data/log.sqlite"))
    }

    /// The case: a second `hawser node run` (here on another port, as port 0 picks a free
    /// one) is refused, naming the directory and the first process; after kill -9 of the first,
    /// the kernel has dropped its lock and a new one starts.
    @Test func aSecondNodeProcessIsRefusedUntilTheFirstIsKilled() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let config = dir.path + "/node.json"
        let (first, _) = try await HawserProcess.node(config: config)
        let second = try await HawserProcess.runToExit(["node", "run", "--config", config])
        #expect(second.status == 1)
        #expect(second.output.contains("the data directory \(dir.path)/data is in use by process \(first.pid) (hawser node run)"),
                "\(second.output)")
        first.kill()
        let (third, _) = try await HawserProcess.node(config: config)
        #expect(await third.terminate() == 0)
    }

    /// `notary restore` replaces the store: never under a running replica.
    @Test func restoreIsRefusedWhileTheDataDirectoryIsInUse() async throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path) {
            $0.log.kind = .jetstream
            $0.log.servers = ["nats://127.0.0.1:4222"]
            $0.log.replicaId = "r0"
            $0.log.members = ["r0"]
        }
        let lock = try DataDirectoryLock(directory: dir.path + "/data")
        let restore = try await HawserProcess.runToExit(["notary", "restore", "--config", dir.path + "/hawser.json",
                                                         "--from", "http://127.0.0.1:9"])
        #expect(restore.status == 1)
        #expect(restore.output.contains("the data directory \(dir.path)/data is in use by process \(getpid())"), "\(restore.output)")
        lock.release()
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/notary.sqlite"))
    }
}

/// A TCP socket listening on a free loopback port, closed when dropped.
final class ListeningSocket: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw ProcessError(message: "cannot listen on a loopback port: errno \(errno)")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
