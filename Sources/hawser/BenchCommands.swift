import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Sim

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: signatures, the notary, election failover, flows, payments between nodes (use release builds).",
        subcommands: [Verify.self, Notary.self, FailoverBench.self, FlowBench.self, PaymentBench.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Single-core Ed25519 verification and signing rates (swift-crypto).")

        @Option(help: "Seconds to measure each operation.") var seconds: Double = 2
        @Flag(help: "Also print one JSON line.") var json = false

        func run() async throws {
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
            let key = Curve25519.Signing.PrivateKey()
            let publicKey = key.publicKey
            // The notary signs and verifies 64-byte-ish payloads (tag + Merkle root).
            let message = [UInt8](repeating: 0x5a, count: 64)
            let signature = try key.signature(for: message)
            let verifyRate = Self.rate(seconds: seconds) { publicKey.isValidSignature(signature, for: message) }
            let signRate = Self.rate(seconds: seconds) { (try? key.signature(for: message)) != nil }
            print("ed25519 verify  \(String(format: "%.0f", verifyRate)) ops/s (one core)")
            print("ed25519 sign    \(String(format: "%.0f", signRate)) ops/s (one core)")
            if json {
                print(#"{"benchmark":"ed25519","signPerSecond":\#(Int(signRate)),"verifyPerSecond":\#(Int(verifyRate))}"#)
            }
        }

        /// Calls `operation` for about `seconds` and returns its rate per second.
        static func rate(seconds: Double, _ operation: () -> Bool) -> Double {
            let clock = ContinuousClock()
            let limit = Duration.nanoseconds(Int64(seconds * 1e9))
            let start = clock.now
            var ops = 0, ok = 0
            var elapsed = Duration.zero
            repeat {
                for _ in 0..<64 where operation() { ok += 1 }
                ops += 64
                elapsed = clock.now - start
            } while elapsed < limit
            precondition(ok == ops, "an Ed25519 operation failed")
            return Double(ops) / (Double(NotaryLoad.nanoseconds(elapsed)) / 1e9)
        }
    }

    struct Notary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a running notary with pre-signed requests and check every answer.",
            discussion: """
                The key's party must be authorised by the notary. Requests are signed before timing;
                every answer is verified; the run fails (non-zero exit) on any invalid answer or any
                broken invariant (an input committed twice, an unexplained conflict).
                """)

        @Option(name: .customLong("url"), help: "A base URL of the notary, e.g. http://127.0.0.1:8080; repeatable (failover).")
        var urls: [String] = []
        @Option(help: "The requesting party's key file (from `hawser party new`); a fresh key with --embedded if omitted.")
        var key: String?
        @Flag(help: "Start an embedded notary in this process (served on a free loopback port) instead of --url.")
        var embedded = false
        @Option(help: "With --embedded: its directory (reused across runs, so a preload is made once); a temporary one if omitted.")
        var dataDir: String?
        @Option(help: "With --embedded: spent states to commit to its store before the run.") var preload = 0
        @Option(help: "Concurrent callers.") var clients = 16
        @Option(help: "Transactions to notarise (timed).") var requests = 10_000
        @Option(help: "Fresh inputs per transaction.") var inputsPerTx = 2
        @Option(help: "Fresh references per transaction (never spent).") var references = 0
        @Option(help: "Fraction of transactions that reuse an input of an earlier one.") var doubleSpendRatio = 0.1
        @Option(help: "Requests per call: 1 uses /v1/notarise, more use /v1/notarise/batch.") var batchSize = 1
        @Option(help: "Untimed requests sent first.") var warmup = 0
        @Flag(help: "With several --url (a cluster): caller i starts at URL i mod n and fails over to the others, spreading the load over every replica.")
        var spread = false
        @Flag(help: "Use the notary's gRPC service (one shared stream per address): --embedded serves it too; --url takes grpc://HOST:PORT addresses.")
        var grpc = false
        @Option(help: "Seconds to measure the Ed25519 verify ceiling (all cores at once) after the load; 0 skips it.")
        var ceilingSeconds = 3.0
        @Option(help: "Record every request (warm-up included) and what its caller was told in this file, as the JSON-lines history of docs/history.md, then check it as `hawser check history` does.")
        var history: String?
        @Flag(help: "Also print one JSON line (for BENCHMARKS.md tooling).") var json = false

        func validate() throws {
            guard embedded != !urls.isEmpty else { throw ValidationError("give either --embedded or at least one --url") }
            guard embedded || key != nil else { throw ValidationError("--key is needed with --url") }
            guard embedded || (preload == 0 && dataDir == nil) else { throw ValidationError("--preload and --data-dir need --embedded") }
            guard preload >= 0 else { throw ValidationError("--preload must not be negative") }
            guard clients >= 1, requests >= 1, batchSize >= 1, warmup >= 0, references >= 0 else {
                throw ValidationError("--clients, --requests and --batch-size must be at least 1")
            }
            guard inputsPerTx >= 1 else { throw ValidationError("--inputs-per-tx must be at least 1") }
            guard (0...1).contains(doubleSpendRatio) else { throw ValidationError("--double-spend-ratio must be in 0...1") }
            guard history.map({ !$0.isEmpty }) ?? true else { throw ValidationError("--history needs a file path") }
            guard ceilingSeconds >= 0 else { throw ValidationError("--ceiling-seconds must not be negative") }
            guard !grpc || batchSize == 1 else { throw ValidationError("--grpc sends one request per call: --batch-size must be 1") }
            guard urls.allSatisfy({ $0.hasPrefix("grpc://") == grpc }) else {
                throw ValidationError(grpc ? "with --grpc, every --url is a grpc://HOST:PORT address" : "a grpc:// --url needs --grpc")
            }
        }

        func run() async throws {
            let party: (name: String, key: SigningKey)
            do { party = try key.map { try KeyFile.load($0) } ?? ("O=Bench Party", SigningKey()) } catch { throw CLIError("\(error)") }
            // Made first, so that a path that cannot be written fails the run before any load.
            let recorder: HistoryWriter?
            do { recorder = try history.map { try HistoryWriter(path: $0) } } catch { throw CLIError("\(error)") }
            guard embedded else { return try await run(urls: urls, party: party, history: recorder) }
            let temporary = dataDir == nil
            let directory = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("hawser-bench-\(UUID().uuidString)").path
            defer { if temporary { try? FileManager.default.removeItem(atPath: directory) } }
            try await EmbeddedBenchNotary.with(directory: directory, party: Party(name: party.name, publicKey: party.key.publicKey),
                                               preload: preload, grpc: grpc) { url in
                try await run(urls: [url], party: party, history: recorder)
            }
        }

        func run(urls: [String], party: (name: String, key: SigningKey), history: HistoryWriter?) async throws {
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(1)
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = clients
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            var report: LoadReport
            do {
                // With --spread, one client per starting URL (each still lists every URL for failover).
                let starts = spread ? urls.indices.map { i in Array(urls[i...] + urls[..<i]) } : [urls]
                let pool = try starts.map { try NotaryClient(urls: $0, httpClient: http) }
                do { report = try await measure(pool: pool, party: party, history: history) } catch {
                    for client in pool { try? await client.shutdown() }
                    throw error
                }
                for client in pool { try await client.shutdown() }
            } catch {
                try await http.shutdown()
                throw error
            }
            try await http.shutdown()
            if let history {
                do { try history.close() } catch { throw CLIError("\(error)") }
                let (violations, summary) = try CheckCommand.HistoryCheck.check(history.path, allowUnfinished: false)
                report.history = (history.path, summary, violations.map(\.description))
            }
            let ceiling = ceilingSeconds > 0 ? await VerifyCeiling.measure(seconds: ceilingSeconds) : nil
            print(report.text)
            if let ceiling {
                print(ceiling.text)
                print("of the ceiling        \(String(format: "%.1f", ceiling.percent(of: report.throughput)))% (\(grpc ? "gRPC stream" : "HTTP"))")
            }
            if json { print(try jsonLine(report, ceiling: ceiling)) }
            if !report.passed { throw ExitCode(1) }
        }

        /// Fetches the identity, signs the workload, warms up, then runs the timed load.
        func measure(pool: [NotaryClient], party: (name: String, key: SigningKey), history: HistoryWriter?) async throws -> LoadReport {
            let client = pool[0]
            let identity = try await client.identity()
            for member in pool { _ = try await member.verifier() }
            FileHandle.standardError.write(Data("notary \(identity.name) \(identity.publicKey.base64); signing \(requests + warmup) requests\n".utf8))
            if warmup > 0 {
                let workload = await NotaryWorkload.make(count: warmup, inputsPerTx: inputsPerTx, references: references,
                                                         doubleSpendRatio: 0, requesterName: party.name, key: party.key,
                                                         notary: identity.publicKey)
                let report = await NotaryLoad.run(pool: pool, workload: workload, clients: clients, batchSize: batchSize, history: history)
                FileHandle.standardError.write(Data("warm-up: \(report.answered) answered, \(report.errors) errors\n".utf8))
            }
            let workload = await NotaryWorkload.make(count: requests, inputsPerTx: inputsPerTx, references: references,
                                                     doubleSpendRatio: doubleSpendRatio, requesterName: party.name,
                                                     key: party.key, notary: identity.publicKey)
            return await NotaryLoad.run(pool: pool, workload: workload, clients: clients, batchSize: batchSize, history: history)
        }

        func jsonLine(_ r: LoadReport, ceiling: VerifyCeiling?) throws -> String {
            struct Line: Encodable {
                var benchmark = "notary"
                var transport: String
                var verifyCeiling: Double?
                var ceilingPercent: Double?
                var requests, clients, batchSize, inputsPerTx, references: Int
                var doubleSpendRatio: Double
                var committed, conflicts, timeWindowInvalid, errors, invalidAnswers, violations: Int
                var historyViolations: Int?
                var seconds, throughput, p50Ms, p99Ms, p999Ms, maxMs: Double
                var passed: Bool
            }
            func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
            let line = Line(transport: grpc ? "grpc" : "http", verifyCeiling: ceiling.map { $0.perSecond.rounded() },
                            ceilingPercent: ceiling.map { round3($0.percent(of: r.throughput)) }, requests: r.requests, clients: clients, batchSize: batchSize, inputsPerTx: inputsPerTx,
                            references: references, doubleSpendRatio: doubleSpendRatio, committed: r.committed,
                            conflicts: r.conflicts, timeWindowInvalid: r.timeWindowInvalid, errors: r.errors,
                            invalidAnswers: r.invalidAnswers, violations: r.violationCount,
                            historyViolations: r.history?.violations.count, seconds: round3(r.seconds),
                            throughput: round3(r.throughput), p50Ms: round3(r.latencyMs(0.5)), p99Ms: round3(r.latencyMs(0.99)),
                            p999Ms: round3(r.latencyMs(0.999)), maxMs: round3(r.latencyMs(1)), passed: r.passed)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(line), as: UTF8.self)
        }
    }
}
