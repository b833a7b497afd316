import Coordination
import HawserCore
import HawserWire
import Notary

/// The state of one `NotaryClusterSim` run: the replicas' shells, the log, the clients, the
/// pending events, the fault plan and the checks.
struct NotaryClusterWorld {
    enum Event {
        case clientSend(Int, call: Int)
        case clientArrive(Int, client: Int, call: Int, SimTransaction)
        case clientAnswer(Int, call: Int, Result<NotarisationOutcome, APIError>)
        case clientTimeout(Int, call: Int)
        case answerTimeout(Int, incarnation: Int, client: Int, call: Int, txId: SecureHash)
        case read(Int, incarnation: Int)
        case heartbeat(Int, incarnation: Int)
        /// A report from process `incarnation` of replica `from`: dropped once that process is gone
        /// (a killed process's reports do not arrive after its successor's).
        case report(Int, from: Int, incarnation: Int, ReplicaReport)
        /// The appender's next step for its current group (`token` names the try it belongs to).
        case turn(Int, incarnation: Int, token: Int)
        case logAppend(Int, incarnation: Int, token: Int, AppenderCore.Entry, id: UInt64)
        case logAck(Int, incarnation: Int, token: Int, SimNotaryLog.Appended)
        case forwardArrive(Int, from: Int, incarnation: Int, token: Int, [NotarisationRequest])
        case forwardReply(Int, incarnation: Int, token: Int, APIError?)
        /// A call of the current try got no answer in time.
        case callTimeout(Int, incarnation: Int, token: Int)
        case fault
        case heal(Int, ClusterFault)
        case quiet
    }

    /// Who waits for a group: clients of this replica, or a replica that forwarded it.
    enum Origin {
        case clients([(client: Int, call: Int, txId: SecureHash)])
        case forward(from: Int, incarnation: Int, token: Int)
    }

    /// A group of requests the appender places in one entry, and where its tries stand.
    struct Group {
        var requests: [NotarisationRequest]
        var forwarded: Bool
        var origins: [Origin]
        var start: Int64
        var retry: AppenderCore.Retry
        /// While the appender waits for its replica to apply `through` (resync), until `deadline`.
        var catchingUp: (through: UInt64, deadline: Int64)?
        /// The entry whose append is in flight.
        var entry: AppenderCore.Entry?
    }

    /// One replica process as `Replica`, `LogAppender`, `Quorum` and `Notary` run it.
    struct Shell: SimProcess {
        let id: String
        var store = SimNotaryStore()
        var alive = true
        var incarnation = 0
        var pausedUntil: Int64 = 0
        var cutOffUntil: Int64 = 0
        var confirmations: Confirmations
        var broken: LogBreak?
        var catchUpTarget: UInt64 = 0
        var caughtUp = false
        var reading = false
        var appender: AppenderCore
        var queue: [Group] = []
        var busy = false
        /// The try in flight: events of other tries are stale.
        var token = 0
        /// Answers decided and waiting for the quorum (`AnswerGate`), oldest first.
        var held: [(position: UInt64, txId: SecureHash, outcome: NotarisationOutcome)] = []
        /// Clients waiting for an answer (`AnswerWaiters`): transaction -> (client, call).
        var waiters: [SecureHash: [(client: Int, call: Int)]] = [:]
    }

    struct Client {
        var transaction: SimTransaction?
        var replica: Int
        var call = 0
        var made = 0
    }

    let seed: UInt64
    let settings: NotaryClusterSim.Settings
    let codec: ReplicaCodec
    let requester: Party
    /// The states clients spend: a slot's state is replaced once it is spent (by a committed
    /// answer) or found spent (a conflict), so that clients keep contending for a few slots.
    var pool: [StateRef]
    let issue: SecureHash
    var issued: UInt32 = 0
    var random: SeededGenerator
    var queue = EventQueue<Event>()
    var shells: [Shell] = []
    var log: SimNotaryLog
    var clients: [Client] = []
    /// The replica whose log server may lose its tail or diverge (one per run keeps a majority).
    let unlucky: Int
    /// What each entry carries, by its hash (to build a diverged copy of it).
    var carried: [SecureHash: (requests: [NotarisationRequest], time: Instant, sequencer: String, previous: SecureHash)] = [:]
    var trace: SimTrace
    var now: Int64 = 0
    var events = 0
    var faults = 0
    var appendIds: UInt64 = 0
    var quiet = false
    // The checks' memory (`NotaryClusterChecks`).
    var history: [History.Event] = []
    var signed: [SecureHash: (outcome: NotarisationOutcome, position: UInt64, by: String)] = [:]
    var committedBy: [StateRef: SecureHash] = [:]
    var answeredInQuiet = 0
    var inputsOf: [SecureHash: [StateRef]] = [:]
    /// When the log lost its tail (`ClusterFault.truncate`), if it did.
    var truncatedAt: Int64?

    init(seed: UInt64, settings: NotaryClusterSim.Settings) {
        self.seed = seed
        self.settings = settings
        random = SeededGenerator(seed: seed)
        let notaryKey = SigningKey(seed: Array(repeating: 7, count: 32))!
        codec = ReplicaCodec(notaryKey: notaryKey)
        requester = Party(name: "sim-client", publicKey: SigningKey(seed: Array(repeating: 9, count: 32))!.publicKey)
        let issue = SecureHash.sha256(Array("states of seed \(seed)".utf8))
        self.issue = issue
        pool = (0..<settings.states).map { StateRef(txId: issue, index: UInt32($0)) }
        issued = UInt32(settings.states)
        log = SimNotaryLog(replicas: settings.replicas)
        trace = SimTrace(keep: settings.traceLines)
        let members = (0..<settings.replicas).map { "r\($0)" }
        for id in members {
            let confirmations = Confirmations(members: members, me: id, instance: 1, head: .genesis, memory: 4_096)
            shells.append(Shell(id: id, confirmations: confirmations, appender: AppenderCore(me: id, codec: codec)))
        }
        unlucky = Int.random(in: 0..<settings.replicas, using: &random)
        for index in shells.indices { start(index) }
        for index in 0..<settings.clients {
            clients.append(Client(replica: index % settings.replicas))
            queue.schedule(.clientSend(index, call: 0), at: Int64.random(in: 0...50_000_000, using: &random))
        }
    }

    mutating func run() -> NotaryClusterSim.Outcome {
        let faultyEnd = settings.faulty.nanosecondsValue, end = faultyEnd + settings.quiet.nanosecondsValue
        if !settings.faults.isEmpty { queue.schedule(.fault, at: gap()) }
        queue.schedule(.quiet, at: faultyEnd)
        while violation == nil, let (at, event) = queue.pop(), at <= end {
            now = at
            events += 1
            handle(event)
        }
        if violation == nil {
            now = end
            finalChecks()
        }
        return NotaryClusterSim.Outcome(seed: seed, events: events, digest: trace.digest, faults: faults, entries: log.entries.count,
                                        signed: signed.count, stopped: shells.filter { $0.broken != nil }.count,
                                        violation: violation)
    }

    mutating func record(_ line: String) { trace.record(line, at: now) }

    mutating func fail(_ what: String) { trace.fail(what, seed: seed, at: now) }

    var violation: SimViolation? { trace.violation }

    /// Whether the event is for a replica's current, running process; a paused one's wait.
    mutating func deliverable(_ index: Int, _ incarnation: Int?, _ event: Event) -> Bool {
        queue.deliverable(event, to: shells[index], incarnation: incarnation, now: now)
    }

    mutating func handle(_ event: Event) {
        switch event {
        case .clientSend(let client, let call): clientSend(client, call: call)
        case .clientArrive(let index, let client, let call, let transaction):
            guard deliverable(index, nil, event) else { return }
            notarise(index, client: client, call: call, transaction)
        case .clientAnswer(let client, let call, let result): clientAnswer(client, call: call, result)
        case .clientTimeout(let client, let call): clientTimeout(client, call: call)
        case .answerTimeout(let index, let incarnation, let client, let call, let txId):
            guard deliverable(index, incarnation, event) else { return }
            answerTimeout(index, client: client, call: call, txId: txId)
        case .read(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            read(index)
        case .heartbeat(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            publish(index)
            queue.schedule(.heartbeat(index, incarnation: incarnation), at: now + 250_000_000)
        case .report(let index, let from, let incarnation, let report):
            guard shells[from].incarnation == incarnation, deliverable(index, nil, event) else { return }
            received(index, report)
        case .turn(let index, let incarnation, let token):
            guard deliverable(index, incarnation, event), shells[index].token == token else { return }
            turn(index)
        case .logAppend(let index, let incarnation, let token, let entry, let id):
            logAppend(index, incarnation: incarnation, token: token, entry, id: id)
        case .logAck(let index, let incarnation, let token, let appended):
            guard deliverable(index, incarnation, event), shells[index].token == token else { return }
            logAck(index, appended)
        case .forwardArrive(let index, let from, let incarnation, let token, let requests):
            guard deliverable(index, nil, event) else { return }
            enqueue(index, Group(requests: requests, forwarded: true, origins: [.forward(from: from, incarnation: incarnation, token: token)],
                                 start: now, retry: AppenderCore.Retry(timeout: settings.appendTimeout)))
        case .forwardReply(let index, let incarnation, let token, let refusal):
            guard deliverable(index, incarnation, event), shells[index].token == token else { return }
            forwardReply(index, refusal)
        case .callTimeout(let index, let incarnation, let token):
            guard deliverable(index, incarnation, event), shells[index].token == token else { return }
            retry(index, after: APIError(.timeout, "no answer in time"))
        case .fault: injectFault()
        case .heal(let index, let fault): heal(index, fault)
        case .quiet:
            quiet = true
            record("quiet: no more faults")
        }
    }
}
