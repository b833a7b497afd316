import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Sim

/// `hawser bench payments`: payments between two nodes of a running local network (made by
/// `hawser network init`, started by `scripts/network.sh start`). Concurrent clients of the
/// paying node run `MoveTokens` of 1 token from its party to the other node's party; each
/// payment is notarised, carried to the payee's node over a flow session and recorded there
/// before it completes. Latency is from the call to the completed payment (`FlowLoad`). At the
/// end the payee's node must have recorded every payment.
struct PaymentBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payments",
        abstract: "Measure payments per second between two nodes of a running local network (use a release build).")

    @Option(help: "The network's directory (hawser network init), with its processes running (scripts/network.sh start).")
    var network: String
    @Option(help: "The paying node's directory in the network.") var from = "alice"
    @Option(help: "The payee's node directory in the network.") var to = "bob"
    @Option(help: "Concurrent clients.") var clients = 32
    @Option(help: "Payments to make (timed).") var payments = 2_000
    @Option(help: "Untimed payments made first.") var warmup = 200
    @Option(help: "Start payments at this many per second (open loop). Default: each client pays again as soon as its last payment completes.")
    var rate: Double?
    @Option(help: "Token states of 1,000,000 issued to the payer first (untimed); default: twice the clients, or one per payment with --backlog (its payments are all in flight at once).")
    var seedStates: Int?
    @Option(help: "Record every payment the clients start and its end in this file (docs/history.md), then check it.")
    var history: String?
    @Flag(help: "Start every payment first (64 at a time), print `started=N`, then wait for all of them: with the payee's node down meanwhile, a backlog of two messages per payment waits in the payer's outbox, and the figure is how long it takes to drain.")
    var backlog = false

    /// The responder that records a payment on the payee's node.
    static let responder = "ReceiveTokens"

    func validate() throws {
        guard clients > 0, payments > 0, warmup >= 0, (seedStates ?? 1) > 0 else {
            throw ValidationError("--clients, --payments and --seed-states must be positive")
        }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
    }

    /// A node of the network as its directory describes it.
    struct Member {
        var url: String
        var party: String
        var password: String

        init(_ directory: String) throws {
            let configuration = try NodeConfiguration.load(directory + "/node.json")
            guard let party = configuration.parties.first?.name else { throw CLIError("\(directory)/node.json hosts no party") }
            url = "http://127.0.0.1:\(configuration.listen.port)"
            self.party = party
            password = try String(contentsOfFile: directory + "/" + NodeCommand.passwordFile, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// A client that waits out a node that is down for a while (a backlog run stops the payee).
        func client() -> NodeClient {
            NodeClient(urls: [url], username: "admin", password: password,
                       retryPolicy: RetryPolicy(maxAttempts: 10_000, baseBackoff: .milliseconds(50), maxBackoff: .seconds(1),
                                                attemptTimeout: .seconds(30), deadline: .seconds(900)))
        }
    }

    func run() async throws {
        let payer = try Member(network + "/" + from), payee = try Member(network + "/" + to)
        let recorder: HistoryWriter?
        do { recorder = try history.map { try HistoryWriter(path: $0) } } catch { throw CLIError("\(error)") }
        let load = FlowLoad(clients: clients, rate: rate, history: recorder)
        let (paying, receiving) = (payer.client(), payee.client())
        do {
            try await measure(load, paying, receiving, payer: payer.party, payee: payee.party)
        } catch {
            try? await paying.shutdown()
            try? await receiving.shutdown()
            throw error
        }
        try await paying.shutdown()
        try await receiving.shutdown()
        try FlowLoad.check(recorder)
    }

    private func measure(_ load: FlowLoad, _ paying: NodeClient, _ receiving: NodeClient, payer: String, payee: String) async throws {
        let run = String(UUID().uuidString.lowercased().prefix(8))
        try await load.seed(paying, parties: [payer], count: seedStates ?? (backlog ? payments : 2 * clients), prefix: run)
        let pay: @Sendable (Int) -> (String, String) = { _ in
            ("MoveTokens", #"{"owner":"\#(payer)","newOwner":"\#(payee)","amount":1}"#)
        }
        let completed: @Sendable (NodeFlow) throws -> Void = { final in
            guard final.status == "completed" else { throw CLIError("payment \(final.id) ended \(final.status): \(final.error ?? "")") }
        }
        // The payee may be down for a backlog run: its count is not asked for then.
        if backlog { return try await drain(paying, pay: pay, run: run, load: load) }
        let before = try await recorded(receiving)
        if warmup > 0 { _ = try await load.drive([paying], count: warmup, prefix: "\(run)-warmup", flow: pay, accept: completed) }
        let start = ContinuousClock.now
        let ended = try await load.drive([paying], count: payments, prefix: "\(run)-timed", flow: pay, accept: completed)
        let elapsed = FlowLoad.seconds(ContinuousClock.now - start)
        // A payment completes only after the payee's node recorded it; its responder ends just
        // after it answered, so give the last ones a moment.
        var received = try await recorded(receiving) - before
        let deadline = ContinuousClock.now + .seconds(30)
        while received < warmup + payments, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            received = try await recorded(receiving) - before
        }
        print("payments=\(payments) clients=\(clients) rate=\(rate.map { String(format: "%.0f", $0) } ?? "closed-loop") "
              + FlowLoad.summary(ended, elapsed: elapsed).replacingOccurrences(of: "flows_per_second", with: "payments_per_second")
              + " recorded_by_payee=\(received)")
        guard received == warmup + payments else {
            throw CLIError("the payee's node recorded \(received) payments of the \(warmup + payments) completed")
        }
    }

    /// `--backlog`: starts every payment, then waits for each to end; prints how long that took
    /// from the last start. A payment completes only once the payee's node has recorded it. With
    /// a history, each payment's start and end are recorded as its own client's.
    private func drain(_ paying: NodeClient, pay: @escaping @Sendable (Int) -> (String, String), run: String,
                       load: FlowLoad) async throws {
        let ids = try await concurrently(payments, width: 64) { i -> String in
            let (flow, arguments) = pay(i)
            let clientRequestId = "\(run)-backlog-\(i)"
            return try await load.start(clientRequestId, by: "p\(i)") {
                try await paying.startFlow(flow, arguments: Array(arguments.utf8), clientRequestId: clientRequestId)
            }.id
        }
        print("started=\(payments)")
        // The caller waits for this line to restart the payee's node: a pipe or file would hold it.
        fflush(nil)  // every stream (naming `stdout` is not concurrency-safe)
        let start = ContinuousClock.now
        let statuses = try await concurrently(ids.count, width: 64) { i -> String in
            let final = try await paying.waitForEnd(ids[i])
            load.ended(final, by: "p\(i)")
            return final.status
        }
        let elapsed = FlowLoad.seconds(ContinuousClock.now - start)
        let counts = Dictionary(grouping: statuses) { $0 }.mapValues(\.count).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        print(String(format: "backlog_payments=%d drained_seconds=%.2f payments_per_second=%.0f ", payments, elapsed,
                     Double(payments) / elapsed) + counts.joined(separator: " "))
        guard statuses.allSatisfy({ $0 == "completed" }) else { throw CLIError("not every payment of the backlog completed") }
    }

    /// How many payments the node's responder has recorded (completed), counted page by page.
    private func recorded(_ client: NodeClient) async throws -> Int {
        var count = 0, after: String?
        while true {
            let page = try await client.flows(matching: NodeFlowFilter(status: "completed", flow: Self.responder, after: after, limit: 1_000))
            count += page.count
            guard page.count == 1_000, let last = page.last else { return count }
            after = last.id
        }
    }
}
