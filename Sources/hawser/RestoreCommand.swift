import ArgumentParser
import AsyncHTTPClient
import Embedded
import Foundation
import HawserNode
import NIOCore
import Notary

extension NotaryCommand {
    /// `hawser notary restore`: gives a new (or lost) replica of a cluster another replica's store,
    /// so that it continues from the log after the snapshot's position instead of replaying it all.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch another replica's store snapshot (GET /v1/snapshot) into this replica's data directory.",
            discussion: """
                Run it while this replica is stopped, then start it with `hawser notary run`: it continues \
                from the log after the snapshot's position. Needed when the log's retention has removed \
                entries this replica has not applied (docs/cluster.md).
                """)

        @Option(help: "This replica's configuration file.") var config: String
        @Option(help: "Base URL of a running replica of the same notary, e.g. http://10.0.0.5:8080.") var from: String
        @Flag(help: "Replace an existing store (its notary.sqlite and -wal/-shm files).") var force = false

        func run() async throws {
            let configuration = try NotaryConfiguration.load(config)
            guard configuration.log.kind == .jetstream else {
                throw CLIError("restore is for replicas of a shared log (log.kind \"jetstream\"); an embedded notary's store is rebuilt from its own log.sqlite")
            }
            let base = URL(fileURLWithPath: config).deletingLastPathComponent()
            let data = configuration.dataDirectory.hasPrefix("/") ? configuration.dataDirectory
                : base.appendingPathComponent(configuration.dataDirectory).path
            // Held until the new store is in place: a replica running on this directory would
            // have its store replaced under it.
            let lock = try DataDirectoryLock(directory: data)
            defer { lock.release() }
            let store = data + "/notary.sqlite"
            let files = [store, store + "-wal", store + "-shm"]
            if !force, FileManager.default.fileExists(atPath: store) {
                throw CLIError("\(store) exists; stop the replica and pass --force to replace it")
            }
            let download = store + ".download"
            let keyFile = configuration.keyFile.hasPrefix("/") ? configuration.keyFile : base.appendingPathComponent(configuration.keyFile).path
            let credential = SnapshotCredential(notaryKey: try KeyFile.load(keyFile).key).header(at: Int64(Date().timeIntervalSince1970))
            try await Self.download(from.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/snapshot", to: download,
                                    authorization: credential)
            let position: UInt64
            do { position = try SQLiteSnapshot.appliedPosition(of: download) } catch {
                try? FileManager.default.removeItem(atPath: download)
                throw CLIError("the snapshot from \(from) is unusable: \(error)")
            }
            for file in files { try? FileManager.default.removeItem(atPath: file) }
            try FileManager.default.moveItem(atPath: download, toPath: store)
            print("restored \(store) from \(from): applied log position \(position); start the replica to continue from the log")
        }

        static func download(_ url: String, to path: String, authorization: String) async throws {
            _ = FileManager.default.createFile(atPath: path, contents: nil)  // failure shows as no handle below
            guard let file = FileHandle(forWritingAtPath: path) else { throw CLIError("cannot write \(path)") }
            defer { try? file.close() }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Authorization", value: authorization)
                let response = try await http.execute(request, timeout: .minutes(30))
                guard response.status == .ok else {
                    let body = try await response.body.collect(upTo: 1 << 16)
                    throw CLIError("\(url) answered \(response.status.code): \(String(buffer: body))")
                }
                for try await chunk in response.body { try file.write(contentsOf: Data(chunk.readableBytesView)) }
            } catch {
                try? await http.shutdown()
                try? FileManager.default.removeItem(atPath: path)
                throw error is CLIError ? error : CLIError("cannot fetch \(url): \(error)")
            }
            try await http.shutdown()
        }
    }
}
