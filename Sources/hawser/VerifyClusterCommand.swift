import ArgumentParser
import AsyncHTTPClient
import Foundation
import HawserClient
import NIOCore

extension AdminCommand {
    /// `hawser admin verify-cluster`: compares the replicas of one notary at one log position, as
    /// a client of their documented HTTP API (`GET /v1/replica`, `/v1/replica/heads/{position}`,
    /// `/v1/digest`).
    struct VerifyCluster: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-cluster",
            abstract: "Compare every replica's chain head (log and decided outcomes) at one position, and say which disagree.",
            discussion: """
                Picks the lowest position every reachable replica has applied (or --position), asks each \
                for its chain head there, and groups the replicas by it: equal heads mean the same log \
                entries decided alike. When every replica stands at the same position (an idle cluster), \
                their store digests are compared too. Prints JSON. Exit status: 0 all agree, 1 some \
                disagree, 2 their chains agree but a replica has stopped signing (log_diverged, \
                duplicate_replica), 3 the comparison is incomplete (a replica unreachable, still starting, \
                given twice, a member the replicas name not given, or the position too old for one to remember).
                """)

        @Option(name: .customLong("url"), help: "A replica's base URL; give every replica (repeat the option).")
        var urls: [String]
        @Option(help: "The log position to compare at (default: the lowest any replica has applied).")
        var position: UInt64?

        func validate() throws {
            guard !urls.isEmpty else { throw ValidationError("give every replica's URL with --url") }
            for url in urls where (try? NotaryClient.baseURL(url)) == nil {
                throw ValidationError("--url `\(url.prefix(200))` is not an http:// or https:// base URL such as http://127.0.0.1:8080")
            }
        }

        struct Head: Codable, Equatable { var position: UInt64; var entryHash: String; var stateHash: String }
        struct Status: Decodable { var replica: String; var members: [String]; var status: String; var applied: Head; var confirmed: UInt64 }
        struct Digest: Decodable { var appliedPosition: UInt64; var digest: String }
        struct Replica: Encodable {
            var url: String
            var replica: String?
            var status: String?
            var applied: UInt64?
            var confirmed: UInt64?
            var head: Head?
            var group: Int?
            var digest: String?
            var problem: String?
        }
        struct Report: Encodable {
            var position: UInt64?
            var verdict: String
            var groups: Int
            var replicas: [Replica]
            /// Members the replicas name that no URL reached (absent when none).
            var missing: [String]?
        }

        func run() async throws {
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let report: Report
            do { report = try await compare(http) } catch {
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            switch report.verdict {
            case "agree": return
            case "disagree": throw ExitCode(1)
            case "stopped": throw ExitCode(2)
            default: throw ExitCode(3)
            }
        }

        private func compare(_ http: HTTPClient) async throws -> Report {
            let bases = urls.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")) }
            var replicas = bases.map { Replica(url: $0) }
            var members = Set<String>(), given = [String: String]()
            for i in replicas.indices {
                do {
                    let status: Status = try await Self.get(http, bases[i] + "/v1/replica")
                    members.formUnion(status.members)
                    replicas[i].replica = status.replica
                    // Each member compared once: one replica given twice was compared with itself,
                    // and the others never, with the verdict `agree` (found from outside).
                    if let first = given[status.replica] {
                        replicas[i].problem = "the same replica (\(status.replica)) as \(first): give each replica once"
                        continue
                    }
                    given[status.replica] = bases[i]
                    replicas[i].status = status.status
                    replicas[i].confirmed = status.confirmed
                    // A replica still starting reports genesis: its head is not known yet.
                    if status.status == "starting" {
                        replicas[i].problem = "the replica is starting: its head is not known yet"
                    } else {
                        replicas[i].applied = status.applied.position
                    }
                } catch {
                    replicas[i].problem = errorText(error)
                }
            }
            let applied = replicas.compactMap(\.applied)
            let at = position ?? applied.min()
            if let at {
                for i in replicas.indices where replicas[i].problem == nil {
                    do { replicas[i].head = try await Self.get(http, bases[i] + "/v1/replica/heads/\(at)") } catch {
                        replicas[i].problem = errorText(error)
                    }
                }
                if applied.count == replicas.count, Set(applied).count == 1 {
                    for i in replicas.indices {
                        if let digest: Digest = try? await Self.get(http, bases[i] + "/v1/digest"), digest.appliedPosition == at {
                            replicas[i].digest = digest.digest
                        }
                    }
                }
            }
            // Group by chain head (and store digest where both are known).
            var groups = [(head: Head, digest: String?)]()
            for i in replicas.indices {
                guard let head = replicas[i].head else { continue }
                let key = (head: head, digest: replicas[i].digest)
                if let found = groups.firstIndex(where: { $0.head == key.head && ($0.digest == nil || key.digest == nil || $0.digest == key.digest) }) {
                    replicas[i].group = found
                } else {
                    groups.append(key)
                    replicas[i].group = groups.count - 1
                }
            }
            let missing = members.subtracting(given.keys).sorted()
            let incomplete = replicas.contains { $0.problem != nil } || !missing.isEmpty
            let stopped = replicas.contains { ["log_diverged", "duplicate_replica"].contains($0.status) }
            // `stopped` says the chains agree: only once every replica's was compared (it said so
            // when none was, the others not remembering a stopped replica's position: found from outside).
            let verdict = groups.count > 1 ? "disagree" : incomplete ? "incomplete" : stopped ? "stopped" : "agree"
            return Report(position: at, verdict: verdict, groups: groups.count, replicas: replicas, missing: missing.isEmpty ? nil : missing)
        }

        static func get<T: Decodable>(_ http: HTTPClient, _ url: String) async throws -> T {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else {
                throw CLIError("\(url) answered \(response.status.code): \(String(buffer: body))")
            }
            do { return try JSONDecoder().decode(T.self, from: Data(buffer: body)) } catch {
                throw CLIError("\(url) answered with a body this command does not understand: \(error)")
            }
        }
    }
}
