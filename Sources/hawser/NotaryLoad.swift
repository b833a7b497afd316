import Foundation
import HawserClient
import HawserCore
import HawserWire
import Sim
import Synchronization

/// A pre-signed notarisation workload: fresh random inputs, a fraction of transactions that reuse an
/// input of an earlier one (a double-spend attempt), and fresh references that are never spent.
struct NotaryWorkload: Sendable {
    var requests: [NotarisationRequest]
    /// Double-spend attempts: the attempt's index, mapped to the earlier transaction whose input it reuses.
    var twinOf: [Int: Int]

    /// Builds `count` requests and signs them in parallel on all cores.
    static func make(count: Int, inputsPerTx: Int, references: Int, doubleSpendRatio: Double,
                     requesterName: String, key: SigningKey, notary: PublicKey) async -> NotaryWorkload {
        var g = SystemRandomNumberGenerator()
        func freshRef() -> StateRef { StateRef(txId: .random(using: &g), index: UInt32.random(in: 0..<16, using: &g)) }
        var drafts = [(txId: SecureHash, inputs: [StateRef], references: [StateRef])]()
        drafts.reserveCapacity(count)
        var twinOf = [Int: Int]()
        for i in 0..<count {
            var inputs = (0..<inputsPerTx).map { _ in freshRef() }
            if i > 0, !inputs.isEmpty, Double.random(in: 0..<1, using: &g) < doubleSpendRatio {
                let twin = Int.random(in: 0..<i, using: &g)
                inputs[0] = drafts[twin].inputs.randomElement(using: &g)!
                twinOf[i] = twin
            }
            drafts.append((.random(using: &g), inputs, (0..<references).map { _ in freshRef() }))
        }
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, count / 256))
        let chunkSize = (count + chunks - 1) / max(chunks, 1)
        let frozen = drafts
        var signed = [[NotarisationRequest]](repeating: [], count: chunks)
        await withTaskGroup(of: (Int, [NotarisationRequest]).self) { group in
            for chunk in 0..<chunks {
                group.addTask {
                    let range = (chunk * chunkSize)..<min(count, (chunk + 1) * chunkSize)
                    return (chunk, range.map { i in
                        NotarisationRequest.signed(txId: frozen[i].txId, inputs: frozen[i].inputs,
                                                   references: frozen[i].references, requesterName: requesterName,
                                                   key: key, notary: notary)
                    })
                }
            }
            for await (chunk, requests) in group { signed[chunk] = requests }
        }
        return NotaryWorkload(requests: signed.flatMap { $0 }, twinOf: twinOf)
    }
}

/// What one request came to.
enum RequestOutcome: Sendable {
    /// A verified answer.
    case answer(NotarisationAnswer)
    /// The notary refused the request (an `APIError`), or it stayed unavailable.
    case error(String)
    /// An answer came back but failed verification.
    case invalidAnswer(String)

    init(_ result: Result<NotarisationAnswer, any Error>) {
        switch result {
        case .success(let answer): self = .answer(answer)
        case .failure(let error): self.init(error)
        }
    }

    init(_ error: any Error) {
        switch error {
        case NotaryClientError.invalidAnswer: self = .invalidAnswer("\(error)")
        default: self = .error("\(error)")
        }
    }
}

/// The figures and checks of one load run.
struct LoadReport: Sendable {
    var requests = 0
    var doubleSpendAttempts = 0
    var committed = 0
    var conflicts = 0
    var timeWindowInvalid = 0
    var errors = 0
    var invalidAnswers = 0
    /// Double-spend attempts that committed because their twin lost the race.
    var doubleSpendsWon = 0
    /// Up to a few distinct error messages.
    var errorSamples: [String] = []
    var violations: [String] = []
    var violationCount = 0
    /// With `--history`: what `hawser check history` found in it (nil: no history was written).
    var history: (file: String, summary: String, violations: [String])?
    var elapsed: Duration = .zero
    /// Per-request latency in nanoseconds, sorted.
    var latencies: [Int64] = []

    var answered: Int { committed + conflicts + timeWindowInvalid }
    var seconds: Double { Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 }
    var throughput: Double { seconds > 0 ? Double(answered) / seconds : 0 }
    var passed: Bool { invalidAnswers == 0 && violationCount == 0 && (history?.violations.isEmpty ?? true) }

    /// Nearest-rank percentile in milliseconds (`q` in 0...1).
    func latencyMs(_ q: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let rank = Int((q * Double(latencies.count)).rounded(.up))
        return Double(latencies[min(max(rank, 1), latencies.count) - 1]) / 1e6
    }

    mutating func violation(_ text: String) {
        violationCount += 1
        if violations.count < 20 { violations.append(text) }
    }

    var text: String {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        var lines = [
            "requests              \(requests) (double-spend attempts \(doubleSpendAttempts), won after twin lost \(doubleSpendsWon))",
            "committed             \(committed)",
            "conflict              \(conflicts)",
            "time_window_invalid   \(timeWindowInvalid)",
            "errors                \(errors)",
            "invalid answers       \(invalidAnswers)",
            "invariant violations  \(violationCount)",
            "elapsed               \(f(seconds, 3)) s",
            "throughput            \(f(throughput, 1)) notarisations/s",
            "latency ms            p50 \(f(latencyMs(0.5)))  p99 \(f(latencyMs(0.99)))  p99.9 \(f(latencyMs(0.999)))  max \(f(latencyMs(1)))",
        ]
        lines += errorSamples.map { "error sample          \($0)" }
        lines += violations.map { "VIOLATION             \($0)" }
        if let history {
            lines.append("history               \(history.file): \(history.summary)")
            lines += history.violations.map { "HISTORY VIOLATION     \($0)" }
        }
        lines.append(passed ? "result                PASS" : "result                FAIL")
        return lines.joined(separator: "\n")
    }
}

/// The load generator behind `hawser bench notary`, reusable with any `NotaryClient` (e.g. one
/// pointed at an embedded notary).
enum NotaryLoad {
    /// Sends every request of `workload` from `clients` concurrent callers, `batchSize` requests per
    /// call (1: `POST /v1/notarise`; more: `POST /v1/notarise/batch`), records per-request latency,
    /// and checks the answers against the workload's invariants.
    /// Caller `i` uses `pool[i % pool.count]` (one client per replica address spreads a cluster's load).
    /// With `history`, every request is recorded as it is sent and answered (`LoadHistory`), caller
    /// `i` as client `ci`.
    static func run(client: NotaryClient, workload: NotaryWorkload, clients: Int, batchSize: Int,
                    history: HistoryWriter? = nil) async -> LoadReport {
        await run(pool: [client], workload: workload, clients: clients, batchSize: batchSize, history: history)
    }

    static func run(pool: [NotaryClient], workload: NotaryWorkload, clients: Int, batchSize: Int,
                    history: HistoryWriter? = nil) async -> LoadReport {
        let requests = workload.requests
        let batchSize = max(1, batchSize)
        let next = Counter()
        let clock = ContinuousClock()
        let start = clock.now
        var outcomes = [RequestOutcome?](repeating: nil, count: requests.count)
        var latencies = [Int64]()
        latencies.reserveCapacity(requests.count)
        await withTaskGroup(of: [(Int, RequestOutcome, Int64)].self) { group in
            for caller in 0..<max(1, clients) {
                let client = pool[caller % pool.count]
                let name = "c\(caller)"
                group.addTask {
                    var log = [(Int, RequestOutcome, Int64)]()
                    while !Task.isCancelled {
                        let first = next.value.add(batchSize, ordering: .relaxed).oldValue
                        guard first < requests.count else { break }
                        let range = first..<min(requests.count, first + batchSize)
                        for index in range {
                            history?.record(HistoryEvent.notariseInvoke(txId: requests[index].txId, inputs: requests[index].inputs).by(client: name))
                        }
                        let sent = clock.now
                        let results = await Self.call(client, Array(requests[range]), batch: batchSize > 1)
                        let latency = Self.nanoseconds(clock.now - sent)
                        for (index, result) in zip(range, results) {
                            history?.record(LoadHistory.event(requests[index].txId, result).by(client: name))
                            log.append((index, RequestOutcome(result), latency))
                        }
                    }
                    return log
                }
            }
            for await log in group {
                for (index, outcome, latency) in log {
                    outcomes[index] = outcome
                    latencies.append(latency)
                }
            }
        }
        var report = LoadReport()
        report.elapsed = clock.now - start
        report.latencies = latencies.sorted()
        check(workload, outcomes.map { $0 ?? .error("not sent") }, into: &report)
        return report
    }

    /// One call for `requests`: `POST /v1/notarise` (or the gRPC stream) for one, or with `batch`
    /// `POST /v1/notarise/batch`; one result per request, in order.
    static func call(_ client: NotaryClient, _ requests: [NotarisationRequest], batch: Bool) async -> [Result<NotarisationAnswer, any Error>] {
        guard batch else {
            do { return [.success(try await client.notarise(requests[0]))] } catch { return [.failure(error)] }
        }
        do { return try await client.notarise(batch: requests).map { $0.mapError { $0 as any Error } } } catch {
            return Array(repeating: .failure(error), count: requests.count)
        }
    }

    /// Counts outcomes and checks: every answer verified; no input committed by two transactions;
    /// every conflict is explained by another transaction of the run that spent the ref and committed
    /// (or whose fate is unknown); no time-window failure without a time window.
    static func check(_ workload: NotaryWorkload, _ outcomes: [RequestOutcome], into report: inout LoadReport) {
        let requests = workload.requests
        report.requests = requests.count
        report.doubleSpendAttempts = workload.twinOf.count
        var spenders = [StateRef: [Int]]()
        var byHash = [SecureHash: Int]()
        for (i, request) in requests.enumerated() {
            for ref in request.inputs { spenders[ref, default: []].append(i) }
            byHash[SecureHash.sha256(request.txId.bytes)] = i
        }
        func committed(_ i: Int) -> Bool {
            if case .answer(let a) = outcomes[i], a.outcome == .committed { return true }
            return false
        }
        func unknown(_ i: Int) -> Bool {
            if case .answer = outcomes[i] { return false }
            return true
        }
        var errorSamples = Set<String>()
        for (i, outcome) in outcomes.enumerated() {
            let request = requests[i]
            switch outcome {
            case .error(let text):
                report.errors += 1
                if errorSamples.count < 5, errorSamples.insert(text).inserted { report.errorSamples.append(text) }
            case .invalidAnswer(let text):
                report.invalidAnswers += 1
                report.violation("tx \(request.txId.hex): \(text)")
            case .answer(let answer):
                switch answer.outcome {
                case .committed:
                    report.committed += 1
                    if let twin = workload.twinOf[i], !committed(twin) { report.doubleSpendsWon += 1 }
                case .conflict(let conflicts):
                    report.conflicts += 1
                    if conflicts.isEmpty { report.violation("tx \(request.txId.hex): a conflict that names no ref") }
                    for c in conflicts {
                        let own = c.kind == .input ? request.inputs : request.references
                        guard own.contains(c.ref) else {
                            report.violation("tx \(request.txId.hex): conflict on \(c.ref), which it does not name as \(c.kind)")
                            continue
                        }
                        guard let j = byHash[c.consumingTxIdHash], j != i, spenders[c.ref]?.contains(j) == true,
                              committed(j) || unknown(j) else {
                            report.violation("tx \(request.txId.hex): unexplained conflict on \(c.ref) (no other transaction of this run spent it)")
                            continue
                        }
                    }
                case .timeWindowInvalid:
                    report.timeWindowInvalid += 1
                    if request.timeWindow == nil {
                        report.violation("tx \(request.txId.hex): time_window_invalid for a request without a time window")
                    }
                }
            }
        }
        for (ref, txs) in spenders where txs.count > 1 {
            let winners = txs.filter(committed)
            if winners.count > 1 {
                report.violation("input \(ref) committed by \(winners.count) transactions: "
                                 + winners.map { requests[$0].txId.hex }.joined(separator: ", "))
            }
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}

/// A shared counter handing out request indices to the load's clients.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
