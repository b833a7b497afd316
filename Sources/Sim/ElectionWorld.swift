import Coordination

/// A candidate process of an election world, as the faults and checks see it.
protocol ElectionShell: SimProcess {
    var id: String { get }
    var core: ElectionCore { get }
    var clock: SimClock { get }
    var alive: Bool { get set }
    var incarnation: Int { get set }
    var pausedUntil: Int64 { get set }
    var cutOffUntil: Int64 { get set }
    var healthy: Bool { get set }
}

/// What the lease election's and the ZooKeeper election's worlds share: the network's delays,
/// the faults, and the never-two-leaders check. Each world says how its store takes an
/// operator's command, how a restart goes, and how its loop is woken.
protocol ElectionWorld {
    associatedtype Shell: ElectionShell
    associatedtype Event
    var shells: [Shell] { get set }
    var random: SeededGenerator { get set }
    var queue: EventQueue<Event> { get set }
    var now: Int64 { get set }
    var events: Int { get set }
    var violation: SimViolation? { get }
    var quiet: Bool { get set }
    /// Simulated time with faults, then without.
    var faulty: Duration { get }
    var calm: Duration { get }
    /// The events that inject the next fault and that end the faulty period.
    static var faultEvent: Event { get }
    static var quietEvent: Event { get }
    mutating func handle(_ event: Event)
    /// A process starts (or restarts, as a new instance).
    mutating func start(_ index: Int)
    var faults: Int { get set }
    var faultSettings: SimFaults { get }
    var requestTimeout: Duration { get }
    mutating func record(_ line: String)
    mutating func fail(_ what: String)
    mutating func transition(_ index: Int, _ body: (inout ElectionCore) -> [ElectionCore.Action]) -> [ElectionCore.Action]
    /// Queues store work decided outside the candidate's loop and wakes it.
    mutating func wake(_ index: Int, _ actions: [ElectionCore.Action])
    /// Schedules `heal(index, fault)` at `at` (the end of a crash or an unhealthy spell).
    mutating func scheduleHeal(_ index: Int, _ fault: SimFault, at: Int64)
    /// An operator's switchover to `id` or preferred master through the store; what it answered.
    mutating func operatorSwitchover(to id: String) -> String
    mutating func operatorPrefer(_ id: String?) -> String
    /// Counts a pause, cut-off or slow or lost message of `index` (the shard layer's judge).
    mutating func disturb(_ index: Int)
}

extension ElectionWorld {
    /// Starts every candidate and handles the events through the faulty and the quiet period,
    /// checking after each that at most one leads and, at the end, that one does.
    mutating func runEvents() {
        for index in shells.indices { start(index) }
        queue.schedule(Self.faultEvent, at: gap())
        let quietAt = faulty.nanosecondsValue
        let end = quietAt + calm.nanosecondsValue
        queue.schedule(Self.quietEvent, at: quietAt)
        while violation == nil, let (at, event) = queue.pop(), at <= end {
            now = at
            events += 1
            handle(event)
            checkOneLeader()
        }
        if violation == nil, acting().isEmpty {
            fail("no leader \(calm) after the last fault")
        }
    }

    /// True nanoseconds until the next fault: uniform, up to twice the mean gap.
    mutating func gap() -> Int64 {
        Int64.random(in: 1...faultSettings.meanGap.nanosecondsValue * 2, using: &random)
    }

    /// A message's travel time: usually well under a millisecond to 20 ms; sometimes (until the
    /// quiet period) longer than the request time-out, so its sender gave up on it before it
    /// arrives.
    mutating func delay(_ index: Int) -> Int64 {
        if !quiet, Double.random(in: 0..<1, using: &random) < faultSettings.slow {
            disturb(index)
            return Int64(Double(requestTimeout.nanosecondsValue) * Double.random(in: 0.5...2, using: &random))
        }
        return Int64.random(in: 200_000...20_000_000, using: &random)
    }

    /// Whether a message to or from `index` is lost now.
    mutating func lost(_ index: Int) -> Bool {
        if shells[index].cutOffUntil > now { return true }
        guard !quiet, Double.random(in: 0..<1, using: &random) < faultSettings.loss else { return false }
        disturb(index)
        return true
    }

    /// The fault event: one fault of the kinds chosen, and the next fault event; none once quiet.
    mutating func nextFault() {
        // In a fixed order (a Set's is not the same from one process to the next).
        guard !quiet, let fault = SimFault.allCases.filter(faultSettings.kinds.contains).randomElement(using: &random) else { return }
        inject(fault)
        queue.schedule(Self.faultEvent, at: now + gap())
    }

    /// The end of the faulty period.
    mutating func becomeQuiet() {
        quiet = true
        record("quiet: no more faults")
    }

    mutating func inject(_ fault: SimFault) {
        let index = Int.random(in: shells.indices, using: &random)
        let id = shells[index].id
        let spell = Int64.random(in: 50_000_000...faultSettings.longest.nanosecondsValue, using: &random)
        guard shells[index].alive, shells[index].pausedUntil <= now else { return }
        faults += 1
        let moment = shells[index].clock.moment(at: now)
        switch fault {
        case .pause:
            shells[index].pausedUntil = now + spell
            disturb(index)
            record("fault: \(id) paused for \(spell / 1_000_000) ms")
        case .crash:
            // Killed: its requests already on the wire still arrive; a ZooKeeper session lives on
            // until it expires.
            shells[index].alive = false
            shells[index].incarnation += 1
            record("fault: \(id) killed for \(spell / 1_000_000) ms")
            scheduleHeal(index, .crash, at: now + spell)
        case .unhealthy:
            shells[index].healthy = false
            record("fault: \(id) unhealthy for \(spell / 1_000_000) ms")
            scheduleHeal(index, .unhealthy, at: now + spell)
        case .partition:
            shells[index].cutOffUntil = now + spell
            disturb(index)
            record("fault: \(id) cut off from the store for \(spell / 1_000_000) ms")
        case .resign:
            record("operator: \(id) resigns")
            wake(index, transition(index) { $0.resign(now: moment) })
        case .handOver:
            let target = shells[(index + Int.random(in: 1..<shells.count, using: &random)) % shells.count].id
            record("operator: \(id) hands over to \(target)")
            wake(index, transition(index) { $0.handOver(to: target, now: moment) })
        case .adminSwitchover:
            record("operator: switchover to \(id): \(operatorSwitchover(to: id))")
        case .adminPreferred:
            let preferred = Bool.random(using: &random) ? id : nil
            record("operator: prefer \(preferred ?? "nobody"): \(operatorPrefer(preferred))")
        }
    }

    /// The end of a crash (a restart) or of an unhealthy spell.
    mutating func heal(_ index: Int, _ fault: SimFault) {
        switch fault {
        case .crash: start(index)
        case .unhealthy:
            shells[index].healthy = true
            record("\(shells[index].id) healthy again")
        default: break
        }
    }

    /// The candidates acting as leader now: leading, by their own clock within their confirmation.
    func acting() -> [Int] {
        shells.indices.filter { index in
            let shell = shells[index]
            guard shell.alive, let leading = shell.core.leading else { return false }
            return shell.clock.moment(at: now) < leading.validUntil
        }
    }

    /// Never two candidates acting as leader at one true moment.
    mutating func checkOneLeader() {
        let leaders = acting()
        if leaders.count > 1 {
            let who = leaders.map { "\(shells[$0].id) (epoch \(shells[$0].core.leading!.epoch))" }.joined(separator: " and ")
            fail("two leaders at once: \(who)")
        }
    }
}
