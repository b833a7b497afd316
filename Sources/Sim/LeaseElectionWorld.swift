import Coordination

/// The state of one `LeaseElectionSim` run: the candidates' shells, the store, the pending
/// events, the fault plan and the checks.
struct LeaseElectionWorld {
    enum Event {
        /// The round loop wakes: health verdict, tick, then the queued store work.
        case turn(Int, token: Int)
        case expiryTimer(Int, incarnation: Int)
        /// A request reaches the store (also one of a process that has died since).
        case arrive(Int, call: Int, SimLeaseStore.Call)
        case answer(Int, call: Int, SimLeaseStore.Answer)
        case timeout(Int, call: Int)
        case fault
        case heal(Int, SimFault)
        case quiet
        // The shard layer (`ShardLayer`), when the settings have one:
        /// The election's status reaches the shard shell.
        case shardStatus(Int, incarnation: Int, ElectionStatus)
        case nodeArrive(Int, incarnation: Int, call: Int, SimNodeDatabase.Call)
        case nodeAnswer(Int, incarnation: Int, call: Int, SimNodeDatabase.Answer)
        case flowStep(Int, incarnation: Int, term: Int, flow: Int)
        /// A stopping term's engine has stopped its flows: its cleanup write goes out.
        case engineStopped(Int, incarnation: Int, term: Int)
    }

    /// One candidate process as `LeaseElection` runs it.
    struct Shell: ElectionShell {
        let id: String
        var core: ElectionCore
        var clock: SimClock
        var instance = ""
        var incarnation = 0
        var alive = true
        var pausedUntil: Int64 = 0
        var cutOffUntil: Int64 = 0
        var healthy = true
        /// Store work decided and not yet done, in order; one call at a time.
        var work: [ElectionCore.Action] = []
        var inFlight: (call: Int, isRound: Bool)?
        /// The turn scheduled now; an earlier one (before a wake or a restart) is dropped.
        var token = 0
        var gaveUp = false
    }

    let seed: UInt64
    let settings: LeaseElectionSim.Settings
    var random: SeededGenerator
    var queue = EventQueue<Event>()
    var shells: [Shell] = []
    var store: SimLeaseStore
    var trace = SimTrace()
    var now: Int64 = 0
    var calls = 0
    var events = 0
    var faults = 0
    var quiet = false
    /// The shard layer: the shared node database and each candidate's shard shell.
    var node: SimNodeDatabase?
    var processes: [ShardProcess] = []
    var checkedParkings = 0
    var terms = 0

    init(seed: UInt64, settings: LeaseElectionSim.Settings) {
        self.seed = seed
        self.settings = settings
        random = SeededGenerator(seed: seed)
        store = SimLeaseStore(configuration: settings.configuration)
        trace = SimTrace(keep: settings.traceLines)
        let drift = settings.faults.drift
        for index in 0..<settings.candidates {
            let id = "c\(index)"
            let clock = SimClock(originNs: Int64.random(in: 0...1_000_000_000_000, using: &random),
                                 rate: 1 + Double.random(in: -drift...drift, using: &random))
            shells.append(Shell(id: id, core: ElectionCore(me: id, timing: settings.timing), clock: clock))
        }
        if let shard = settings.shard {
            node = SimNodeDatabase(flows: shard.flows, steps: shard.steps, fenced: shard.fenced)
            processes = shells.map { _ in ShardProcess() }
        }
    }

    var configuration: LeaseConfiguration { settings.configuration }

    mutating func run() -> LeaseElectionSim.Outcome {
        runEvents()
        if violation == nil, let problem = shardProblem() { fail(problem) }
        return LeaseElectionSim.Outcome(seed: seed, events: events, digest: trace.digest, terms: store.grants.count,
                                        faults: faults, flowsDone: node.map { node in node.flows.indices.filter(node.isDone).count } ?? 0,
                                        flowsParked: node?.parkings.count ?? 0, violation: violation)
    }

    // MARK: Events

    mutating func handle(_ event: Event) {
        switch event {
        case .turn(let index, let token):
            guard let index = ready(index, event), shells[index].token == token else { return }
            let moment = shells[index].clock.moment(at: now)
            let problem = shells[index].healthy ? nil : "unhealthy"
            let health = transition(index) { $0.health(problem: problem, now: moment) }
            let tick = transition(index) { $0.tick(now: moment) }
            shells[index].work = health + shells[index].work + tick
            drain(index)
        case .expiryTimer(let index, let incarnation):
            guard let index = ready(index, event), shells[index].incarnation == incarnation else { return }
            let moment = shells[index].clock.moment(at: now)
            shells[index].work += transition(index) { $0.checkExpiry(now: moment) }
            let next = shells[index].clock.trueTime(after: configuration.leaseDuration / 20, from: now)
            queue.schedule(.expiryTimer(index, incarnation: incarnation), at: next)
        case .arrive(let index, let call, let request):
            let answer = store.apply(request, from: shells[index].id, nowNs: now)
            record("store <- \(shells[index].id) #\(call) \(request): \(answer)")
            if let broken = store.broken { return fail(broken) }
            if !lost(index) { queue.schedule(.answer(index, call: call, answer), at: now + delay(index)) }
        case .answer(let index, let call, let answer):
            guard let index = ready(index, event), shells[index].inFlight?.call == call else { return }
            finishCall(index, answer: answer)
        case .timeout(let index, let call):
            guard let index = ready(index, event), shells[index].inFlight?.call == call else { return }
            record("\(shells[index].id) #\(call) timed out")
            finishCall(index, answer: .refused("timed out"))
        case .fault:
            nextFault()
        case .heal(let index, let fault):
            heal(index, fault)
        case .quiet:
            becomeQuiet()
        case .shardStatus, .nodeArrive, .nodeAnswer, .flowStep, .engineStopped:
            handleShard(event)
        }
    }

    /// The candidate an event is for, if it can handle it now: a paused process handles it once
    /// resumed (it is put back, in order), a dead one never.
    mutating func ready(_ index: Int, _ event: Event) -> Int? {
        queue.deliverable(event, to: shells[index], now: now) ? index : nil
    }

    /// Runs one transition of a core and checks the epoch it leads with.
    mutating func transition(_ index: Int, _ body: (inout ElectionCore) -> [ElectionCore.Action]) -> [ElectionCore.Action] {
        let before = shells[index].core.leading?.epoch
        let actions = body(&shells[index].core)
        observe(index, ledWith: before, actions: actions)
        let shell = shells[index]
        for case .report(let report) in actions { record("\(shell.id): \(report)") }
        if let epoch = shell.core.leading?.epoch, epoch != before, store.grants[epoch] != shell.id {
            fail("\(shell.id) leads with epoch \(epoch), which the store granted to \(store.grants[epoch] ?? "nobody")")
        }
        return actions.filter { if case .report = $0 { false } else { true } }
    }

    private mutating func finishCall(_ index: Int, answer: SimLeaseStore.Answer) {
        let isRound = shells[index].inFlight?.isRound ?? false
        shells[index].inFlight = nil
        if isRound {
            let moment = shells[index].clock.moment(at: now)
            let next: [ElectionCore.Action]
            if case .view(let view) = answer {
                next = transition(index) { $0.roundSucceeded(view, now: moment) }
            } else {
                next = transition(index) { $0.roundFailed(problem: "\(answer)", now: moment) }
            }
            shells[index].work = next + shells[index].work
        }
        drain(index)
    }

    /// Does the queued store work one call at a time; when none is left, sleeps a renew interval.
    private mutating func drain(_ index: Int) {
        while shells[index].inFlight == nil, !shells[index].work.isEmpty {
            let call: SimLeaseStore.Call
            switch shells[index].work.removeFirst() {
            case .round(let request): call = .round(request, instance: shells[index].instance)
            case .release(let epoch, let target): call = .release(epoch, handOverTo: target)
            case .clearTarget: call = .clearTarget
            case .requestSwitchover(let id): call = .requestSwitchover(id)
            case .withdraw, .report: continue
            case .fail(let error):
                record("\(shells[index].id) gives up: \(error)")
                shells[index].gaveUp = true
                shells[index].work = []
                return
            }
            send(index, call)
        }
        if shells[index].inFlight == nil, !shells[index].gaveUp {
            schedule(turnOf: index, at: shells[index].clock.trueTime(after: configuration.renewInterval, from: now))
        }
    }

    private mutating func send(_ index: Int, _ call: SimLeaseStore.Call) {
        calls += 1
        var isRound = false
        if case .round = call { isRound = true }
        shells[index].inFlight = (calls, isRound)
        queue.schedule(.timeout(index, call: calls), at: shells[index].clock.trueTime(after: configuration.requestTimeout, from: now))
        if !lost(index) { queue.schedule(.arrive(index, call: calls, call), at: now + delay(index)) }
    }

    mutating func schedule(turnOf index: Int, at time: Int64) {
        shells[index].token += 1
        queue.schedule(.turn(index, token: shells[index].token), at: time)
    }

    /// A process starts (or restarts): a new core and instance, its loop and expiry timer.
    mutating func start(_ index: Int) {
        let id = shells[index].id
        shells[index].core = ElectionCore(me: id, timing: settings.timing)
        shells[index].instance = "\(id)-\(shells[index].incarnation)"
        shells[index].alive = true
        shells[index].work = []
        shells[index].inFlight = nil
        shells[index].gaveUp = false
        resetShard(index)
        schedule(turnOf: index, at: now)
        queue.schedule(.expiryTimer(index, incarnation: shells[index].incarnation), at: now)
        record("\(id) starts")
    }

    mutating func record(_ line: String) { trace.record(line, at: now) }

    mutating func fail(_ what: String) { trace.fail(what, seed: seed, at: now) }

    var violation: SimViolation? { trace.violation }
}
