import Coordination
import ZooKeeper
import ZooKeeperElection

/// The state of one `ZooKeeperElectionSim` run: the candidates' shells, the server, the pending
/// events, the fault plan and the checks.
struct ZooKeeperElectionWorld {
    enum Event {
        /// The round loop wakes: health verdict, queued work, tick.
        case turn(Int, token: Int)
        case expiryTimer(Int, incarnation: Int)
        /// The client library's heartbeat: the server hears the session, or the client notices it
        /// has not heard the server for too long.
        case ping(Int, incarnation: Int)
        /// A request reaches the server (also one of a process that has died since).
        case arrive(Int, session: Int64, call: Int, ZooKeeperRequest)
        case answer(Int, incarnation: Int, call: Int, ZooKeeperReply)
        case timeout(Int, incarnation: Int, call: Int)
        case watchFired(Int, session: Int64, node: String)
        /// The server's session tracker.
        case serverTick
        case fault
        case heal(Int, SimFault)
        case quiet
    }

    /// One candidate process as `ZooKeeperElection` runs it, with its ZooKeeper client.
    struct Shell: ElectionShell {
        let id: String
        var core: ElectionCore
        var clock: SimClock
        var incarnation = 0
        var alive = true
        var pausedUntil: Int64 = 0
        var cutOffUntil: Int64 = 0
        var healthy = true
        /// The client's session; nil while it connects.
        var session: Int64?
        /// False while suspended: the connection is lost, the session may live on.
        var connected = false
        /// True time the client last heard the server.
        var lastContact: Int64 = 0
        var place = ZooKeeperProgram.Place()
        /// Core actions decided and not yet done, in order; one program at a time.
        var work: [ElectionCore.Action] = []
        var program: (program: ZooKeeperProgram, call: Int)?
        /// The predecessor's watch fired while the loop was busy: it wakes at once when idle.
        var watchFired = false
        /// The turn scheduled now; an earlier one (before a wake or a restart) is dropped.
        var token = 0
        var gaveUp = false
    }

    static let candidatesPath = "/e/candidates", epochPath = "/e/epoch", switchoverPath = "/e/switchover", preferredPath = "/e/preferred"

    let seed: UInt64
    let settings: ZooKeeperElectionSim.Settings
    var random: SeededGenerator
    var queue = EventQueue<Event>()
    var shells: [Shell] = []
    var server = SimZooKeeper()
    /// Who claimed each epoch (the claim's `mzxid`).
    var grants: [Epoch: String] = [:]
    var trace: SimTrace
    var now: Int64 = 0
    var calls = 0
    var events = 0
    var faults = 0
    var expired = 0
    var quiet = false

    init(seed: UInt64, settings: ZooKeeperElectionSim.Settings) {
        self.seed = seed
        self.settings = settings
        random = SeededGenerator(seed: seed)
        trace = SimTrace(keep: settings.traceLines)
        let drift = settings.faults.drift
        for index in 0..<settings.candidates {
            let id = "c\(index)"
            let clock = SimClock(originNs: Int64.random(in: 0...1_000_000_000_000, using: &random),
                                 rate: 1 + Double.random(in: -drift...drift, using: &random))
            shells.append(Shell(id: id, core: ElectionCore(me: id, timing: settings.timing), clock: clock))
        }
        // The election's nodes, as `ZooKeeperPaths.ensure` creates them.
        let setup = server.openSession(timeoutNs: .max, nowNs: 0)
        for path in ["/e", Self.candidatesPath, Self.epochPath, Self.switchoverPath, Self.preferredPath] {
            _ = try? server.create(path, data: [], ephemeral: false, sequential: false, session: setup)
        }
        server.end(setup)
    }

    var configuration: ZooKeeperElectionConfiguration { settings.configuration }
    var sessionTimeout: Int64 { configuration.sessionTimeout.nanosecondsValue }

    mutating func run() -> ZooKeeperElectionSim.Outcome {
        queue.schedule(.serverTick, at: 0)
        runEvents()
        return ZooKeeperElectionSim.Outcome(seed: seed, events: events, digest: trace.digest, terms: grants.count, faults: faults,
                                            expiredSessions: expired, violation: violation)
    }

    // MARK: Events

    mutating func handle(_ event: Event) {
        switch event {
        case .turn(let index, let token):
            guard deliverable(index, nil, event), shells[index].token == token else { return }
            turn(index)
        case .expiryTimer(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            let moment = shells[index].clock.moment(at: now)
            // As `ZooKeeperElection`'s expiry task: the step down is all it does.
            _ = transition(index) { $0.checkExpiry(now: moment) }
            let next = shells[index].clock.trueTime(after: configuration.checkInterval / 4, from: now)
            queue.schedule(.expiryTimer(index, incarnation: incarnation), at: next)
        case .ping(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            ping(index)
            let next = shells[index].clock.trueTime(after: configuration.sessionTimeout / 3, from: now)
            queue.schedule(.ping(index, incarnation: incarnation), at: next)
        case .arrive(let index, let session, let call, let request):
            let reply = apply(request, from: index, session: session)
            record("zk <- \(shells[index].id) #\(call) \(request): \(Self.describe(reply))")
            deliverFired()
            if !lost(index) { queue.schedule(.answer(index, incarnation: shells[index].incarnation, call: call, reply), at: now + delay(index)) }
        case .answer(let index, let incarnation, let call, let reply):
            guard deliverable(index, incarnation, event), shells[index].program?.call == call else { return }
            shells[index].lastContact = now
            receive(index, reply)
        case .timeout(let index, let incarnation, let call):
            guard deliverable(index, incarnation, event), shells[index].program?.call == call else { return }
            record("\(shells[index].id) #\(call) timed out")
            receive(index, .failed(ZooKeeperError.operationTimeout))
        case .watchFired(let index, let session, let node):
            guard deliverable(index, nil, event), shells[index].session == session, shells[index].place.watching == node else { return }
            shells[index].watchFired = true
            if shells[index].program == nil, shells[index].connected, !shells[index].gaveUp { schedule(turnOf: index, at: now) }
        case .serverTick:
            for session in server.expireIdle(nowNs: now) {
                expired += 1
                record("zk: session \(session) expired")
            }
            deliverFired()
            queue.schedule(.serverTick, at: now + 50_000_000)
        case .fault:
            nextFault()
        case .heal(let index, let fault):
            heal(index, fault)
        case .quiet:
            becomeQuiet()
        }
    }

    mutating func deliverable(_ index: Int, _ incarnation: Int?, _ event: Event) -> Bool {
        queue.deliverable(event, to: shells[index], incarnation: incarnation, now: now)
    }

    /// The round loop's iteration: the health verdict, the queued work and the tick, each core
    /// action performed as its program. Nothing while suspended or connecting.
    private mutating func turn(_ index: Int) {
        guard shells[index].connected, shells[index].program == nil, !shells[index].gaveUp else { return }
        let moment = shells[index].clock.moment(at: now)
        let problem = shells[index].healthy ? nil : "unhealthy"
        let health = transition(index) { $0.health(problem: problem, now: moment) }
        let tick = transition(index) { $0.tick(now: moment) }
        shells[index].work = health + shells[index].work + tick
        drain(index)
    }

    /// Starts the next action's program; when none is left, waits for the watch or a check interval.
    private mutating func drain(_ index: Int) {
        guard shells[index].connected, !shells[index].gaveUp else { return }
        while shells[index].program == nil, !shells[index].work.isEmpty {
            let action: ZooKeeperProgram.Action
            switch shells[index].work.removeFirst() {
            case .round(let request): action = .round(request)
            case .release(_, let target): action = .release(handOverTo: target)
            case .withdraw: action = .withdraw
            case .clearTarget: action = .write(.switchover, nil)
            case .requestSwitchover(let id): action = .write(.switchover, id)
            case .report: continue
            case .fail(let error):
                record("\(shells[index].id) gives up: \(error)")
                shells[index].gaveUp = true
                shells[index].work = []
                return
            }
            guard let session = shells[index].session else { return }
            let program = ZooKeeperProgram(candidate: Candidate(id: shells[index].id), session: session, action: action, place: shells[index].place)
            advance(index, program)
        }
        guard shells[index].program == nil, shells[index].connected, !shells[index].gaveUp else { return }
        if shells[index].watchFired {
            shells[index].watchFired = false
            schedule(turnOf: index, at: now)
        } else {
            schedule(turnOf: index, at: shells[index].clock.trueTime(after: configuration.checkInterval, from: now))
        }
    }

    /// Runs `program` to its next request (sent) or its end (its outcome fed to the core).
    private mutating func advance(_ index: Int, _ program: ZooKeeperProgram) {
        var program = program
        switch program.next() {
        case .send(let request):
            calls += 1
            shells[index].program = (program, calls)
            let incarnation = shells[index].incarnation
            queue.schedule(.timeout(index, incarnation: incarnation, call: calls),
                           at: shells[index].clock.trueTime(after: configuration.requestTimeout, from: now))
            if !lost(index), let session = shells[index].session {
                queue.schedule(.arrive(index, session: session, call: calls, request), at: now + delay(index))
            }
        case .finished(let view, let place):
            shells[index].program = nil
            shells[index].place = place
            if let view {
                let moment = shells[index].clock.moment(at: now)
                shells[index].work = transition(index) { $0.roundSucceeded(view, now: moment) } + shells[index].work
            }
        case .failed(let error, let place):
            shells[index].program = nil
            shells[index].place = place
            if let error = error as? ZooKeeperError, error == .sessionExpired {
                return sessionEnded(index, reason: "session expired")
            }
            if case .round = program.action {
                let moment = shells[index].clock.moment(at: now)
                shells[index].work = transition(index) { $0.roundFailed(problem: "\(error)", now: moment) } + shells[index].work
            } else {
                record("\(shells[index].id): \(program.action) failed: \(error)")  // logged; the work after it is still done
            }
        }
    }

    private mutating func receive(_ index: Int, _ reply: ZooKeeperReply) {
        guard var program = shells[index].program?.program else { return }
        program.receive(reply)
        shells[index].program = nil
        advance(index, program)
        if shells[index].program == nil { drain(index) }
    }

    /// The client's heartbeat. Connecting: a new session. In touch with the server: it hears the
    /// session (or the client learns it expired). Out of touch for two thirds of the session
    /// timeout: suspended.
    private mutating func ping(_ index: Int) {
        let id = shells[index].id
        let reachable = shells[index].cutOffUntil <= now
        guard let session = shells[index].session else {
            guard reachable else { return }
            let session = server.openSession(timeoutNs: sessionTimeout, nowNs: now)
            shells[index].session = session
            shells[index].place = ZooKeeperProgram.Place()
            shells[index].connected = true
            shells[index].lastContact = now
            record("\(id) connected with session \(session)")
            return schedule(turnOf: index, at: now)
        }
        if reachable {
            guard server.heard(session, nowNs: now) else { return sessionEnded(index, reason: "session expired") }
            shells[index].lastContact = now
            if !shells[index].connected {
                shells[index].connected = true
                record("\(id) reconnected to session \(session)")
                schedule(turnOf: index, at: now)
            }
        } else if shells[index].connected, now - shells[index].lastContact >= sessionTimeout * 2 / 3 {
            shells[index].connected = false
            let moment = shells[index].clock.moment(at: now)
            _ = transition(index) { $0.connectionLost(reason: "connection to ZooKeeper suspended", now: moment) }
            record("\(id) suspended")
            // The client fails the request in flight.
            if shells[index].program != nil { receive(index, .failed(ZooKeeperError.connectionLoss)) }
            shells[index].work = []
        }
    }

    /// The session is gone: the loop ends, the core hears the connection is lost, and the next
    /// heartbeat stands again on a new session.
    private mutating func sessionEnded(_ index: Int, reason: String) {
        let moment = shells[index].clock.moment(at: now)
        _ = transition(index) { $0.connectionLost(reason: reason, now: moment) }
        record("\(shells[index].id): \(reason)")
        shells[index].session = nil
        shells[index].connected = false
        shells[index].program = nil
        shells[index].work = []
        shells[index].watchFired = false
        shells[index].token += 1
    }

    /// One request applied by the server for `session`, answered as the client library would.
    private mutating func apply(_ request: ZooKeeperRequest, from index: Int, session: Int64) -> ZooKeeperReply {
        func path(_ node: String) -> String { "\(Self.candidatesPath)/\(node)" }
        func settingPath(_ setting: ZooKeeperSetting) -> String { setting == .switchover ? Self.switchoverPath : Self.preferredPath }
        guard server.heard(session, nowNs: now) else { return .failed(ZooKeeperError.sessionExpired) }
        do {
            switch request {
            case .listCandidates:
                return .children(try server.getChildren(Self.candidatesPath, session: session))
            case .exists(let node):
                return .exists(ephemeralOwner: try server.exists(path(node), session: session)?.ephemeralOwner)
            case .watch(let node):
                return .exists(ephemeralOwner: try server.existsAndWatch(path(node), session: session)?.ephemeralOwner)
            case .delete(let node):
                try server.delete(path(node), session: session)
                return .done
            case .create(let prefix):
                let created = try server.create(path(prefix), data: [], ephemeral: true, sequential: true, session: session)
                return .created(node: SimZooKeeper.leaf(of: created))
            case .readEpoch:
                let (data, stat) = try server.getData(Self.epochPath, session: session)
                return .data(data, mzxid: stat.mzxid, version: stat.version)
            case .read(let setting):
                let (data, stat) = try server.getData(settingPath(setting), session: session)
                return .data(data, mzxid: stat.mzxid, version: stat.version)
            case .claim(let node, let claim, let version):
                let results = try server.multi([.check(path: path(node), version: -1),
                                                .setData(path: Self.epochPath, data: claim.bytes, version: version)], session: session)
                guard case .setData(let stat) = results.last else { return .claimed(mzxid: nil) }
                grants[EpochRecord.epoch(mzxid: stat.mzxid)] = claim.leader
                return .claimed(mzxid: stat.mzxid)
            case .write(let setting, let value):
                _ = try server.setData(settingPath(setting), data: Array((value ?? "").utf8), session: session)
                return .done
            }
        } catch {
            return .failed(error)
        }
    }

    /// Sends each fired watch to the process whose session set it.
    mutating func deliverFired() {
        for fired in server.takeFired() {
            guard let index = shells.firstIndex(where: { $0.session == fired.session }), !lost(index) else { continue }
            queue.schedule(.watchFired(index, session: fired.session, node: SimZooKeeper.leaf(of: fired.path)), at: now + delay(index))
        }
    }

    /// Runs one transition of a core and checks the epoch it leads with.
    mutating func transition(_ index: Int, _ body: (inout ElectionCore) -> [ElectionCore.Action]) -> [ElectionCore.Action] {
        let before = shells[index].core.leading?.epoch
        let actions = body(&shells[index].core)
        let shell = shells[index]
        for case .report(let report) in actions { record("\(shell.id): \(report)") }
        if let epoch = shell.core.leading?.epoch, epoch != before, grants[epoch] != shell.id {
            fail("\(shell.id) leads with epoch \(epoch), which was claimed by \(grants[epoch] ?? "nobody")")
        }
        return actions.filter { if case .report = $0 { false } else { true } }
    }

    mutating func schedule(turnOf index: Int, at time: Int64) {
        shells[index].token += 1
        queue.schedule(.turn(index, token: shells[index].token), at: time)
    }

    /// A process starts (or restarts): a new core and client; its heartbeat connects it.
    mutating func start(_ index: Int) {
        let id = shells[index].id
        shells[index].core = ElectionCore(me: id, timing: settings.timing)
        shells[index].alive = true
        shells[index].session = nil
        shells[index].connected = false
        shells[index].place = ZooKeeperProgram.Place()
        shells[index].work = []
        shells[index].program = nil
        shells[index].watchFired = false
        shells[index].gaveUp = false
        shells[index].token += 1
        queue.schedule(.ping(index, incarnation: shells[index].incarnation), at: now)
        queue.schedule(.expiryTimer(index, incarnation: shells[index].incarnation), at: now)
        record("\(id) starts")
    }

    mutating func record(_ line: String) { trace.record(line, at: now) }

    mutating func fail(_ what: String) { trace.fail(what, seed: seed, at: now) }

    var violation: SimViolation? { trace.violation }

    static func describe(_ reply: ZooKeeperReply) -> String {
        switch reply {
        case .children(let names): "children \(names)"
        case .exists(let owner): owner.map { "owner \($0)" } ?? "no node"
        case .created(let node): "created \(node)"
        case .data(let data, let mzxid, let version): "data \(String(decoding: data, as: UTF8.self)) mzxid \(mzxid) version \(version)"
        case .claimed(let mzxid): "claimed \(mzxid.map(String.init) ?? "-")"
        case .done: "done"
        case .failed(let error): "failed \(error)"
        }
    }
}
