import Coordination
import HawserTestSupport
import Testing

/// Three lease candidates (`ElectionCore`) on a simulated database (`LeaseRules` on a
/// `LeaseState`), under a seeded scheduler with slow, lost and late answers, pauses, health
/// flips, resignations, switchovers and preferred masters. After every step: no two candidates
/// may act at once, and leadership never passes to another candidate without a higher epoch.
/// A failure names its seed, which replays exactly.
@Suite(.timeLimit(.minutes(10))) struct ElectionSimulationTests {
    @Test func leaseCandidatesNeverActTogetherAndEpochsOnlyGoUp() {
        for seed in UInt64(1)...150 {
            var simulation = LeaseSimulation(seed: seed)
            var problem = simulation.run(until: 60_000)
            if problem == nil, simulation.leaderships == 0 { problem = "nobody ever led" }
            if problem == nil, !simulation.cores.contains(where: \.isLeader) { problem = "nobody leads after ten calm seconds" }
            if let problem {
                // Replay the seed with a trace for the message.
                var replay = LeaseSimulation(seed: seed, tracing: true)
                _ = replay.run(until: 60_000)
                Issue.record("seed \(seed): \(problem)\n\(replay.trace.suffix(40).joined(separator: "\n"))")
                return
            }
        }
    }
}

struct LeaseSimulation {
    enum Work { case round(RoundRequest), release(Epoch, String?), clearTarget, switchover(String) }
    enum Event {
        case tick(Int), expiry(Int), execute(Int, Work), deliver(Int, ElectionView?), chaos
        var isExpiry: Bool { if case .expiry = self { true } else { false } }
    }

    static let ids = ["A", "B", "C"]
    /// From here on no faults: somebody must lead by the end.
    static let calm: Int64 = 50_000
    var random: SeededGenerator
    var now: Int64 = 0
    var configuration: LeaseConfiguration
    var state = LeaseState(nowMs: 0, lease: LeaseRow(holder: nil, epoch: .zero, expiresMs: 0), candidates: [])
    var cores: [ElectionCore]
    var pausedUntil = [Int64](repeating: 0, count: 3)
    var unhealthy = [Bool](repeating: false, count: 3)
    var queue: [(time: Int64, order: Int, event: Event)] = []
    var order = 0
    /// Who led last with which epoch, and how many leaderships began.
    var last: (id: Int, epoch: Epoch)?
    var leaderships = 0
    /// What happened, for the message of a failure.
    var trace: [String] = []

    let tracing: Bool

    init(seed: UInt64, tracing: Bool = false) {
        self.tracing = tracing
        random = SeededGenerator(seed: seed)
        var configuration = LeaseConfiguration()
        configuration.holdDown = .seconds(3)
        self.configuration = configuration
        cores = Self.ids.map { ElectionCore(me: $0, timing: configuration.timing) }
        for i in 0..<3 {
            schedule(.tick(i), after: Int64(i) * 100)
            schedule(.expiry(i), after: 50)
        }
        schedule(.chaos, after: 1000)
    }

    mutating func schedule(_ event: Event, after delay: Int64) {
        order += 1
        queue.append((now + delay, order, event))
    }

    func moment(_ ms: Int64) -> Moment { Moment(nanoseconds: ms * 1_000_000) }

    /// Runs until `end` ms; returns the first broken invariant.
    mutating func run(until end: Int64) -> String? {
        while let next = queue.indices.min(by: { (queue[$0].time, queue[$0].order) < (queue[$1].time, queue[$1].order) }) {
            let (time, _, event) = queue.remove(at: next)
            if time > end { return nil }
            now = time
            if tracing, !(event.isExpiry) { trace.append("\(now) \(event)") }
            if let problem = step(event) { return "at \(now) ms: \(problem)" }
            let acting = cores.indices.filter { cores[$0].leading.map { moment(now) < $0.validUntil } ?? false }
            if acting.count > 1 { return "at \(now) ms: \(acting.map { Self.ids[$0] }) act at once" }
        }
        return nil
    }

    mutating func step(_ event: Event) -> String? {
        switch event {
        case .tick(let i):
            guard now >= pausedUntil[i] else { schedule(.tick(i), after: pausedUntil[i] - now); return nil }
            var actions = cores[i].health(problem: unhealthy[i] ? "sick" : nil, now: moment(now))
            actions += cores[i].tick(now: moment(now))
            schedule(.tick(i), after: configuration.renewInterval.millisecondsValue + Int64.random(in: 0...50, using: &random))
            return perform(i, actions)
        case .expiry(let i):
            schedule(.expiry(i), after: 100)
            guard now >= pausedUntil[i] else { return nil }
            return perform(i, cores[i].checkExpiry(now: moment(now)))
        case .execute(let i, let work):
            state.nowMs = now
            execute(i, work)
            return nil
        case .deliver(let i, let view):
            guard now >= pausedUntil[i] else { schedule(.deliver(i, view), after: pausedUntil[i] - now); return nil }
            if let view { return perform(i, cores[i].roundSucceeded(view, now: moment(now))) }
            return perform(i, cores[i].roundFailed(problem: "timeout", now: moment(now)))
        case .chaos:
            chaos()
            schedule(.chaos, after: Int64.random(in: 200...1500, using: &random))
            return nil
        }
    }

    /// Carries out a core's actions: store work goes to the database after a delay.
    mutating func perform(_ i: Int, _ actions: [ElectionCore.Action]) -> String? {
        if tracing, !actions.isEmpty { trace.append("  \(Self.ids[i]) -> \(actions) status \(cores[i].status.role)") }
        for action in actions {
            switch action {
            case .round(let request): schedule(.execute(i, .round(request)), after: delay())
            case .release(let epoch, let target): schedule(.execute(i, .release(epoch, target)), after: delay())
            case .clearTarget: schedule(.execute(i, .clearTarget), after: delay())
            case .requestSwitchover(let id): schedule(.execute(i, .switchover(id)), after: delay())
            case .withdraw, .fail: break
            case .report(.leading(let epoch)):
                leaderships += 1
                if let last, last.id != i, epoch <= last.epoch {
                    return "\(Self.ids[i]) leads with epoch \(epoch) after \(Self.ids[last.id]) led with \(last.epoch)"
                }
                if let last, last.id == i, epoch < last.epoch { return "\(Self.ids[i])'s epoch went back to \(epoch)" }
                last = (i, epoch)
            case .report: break
            }
        }
        return nil
    }

    mutating func execute(_ i: Int, _ work: Work) {
        let me = Self.ids[i]
        var writes = LeaseWrites.none
        switch work {
        case .round(let request):
            let outcome = LeaseRules.round(state, candidate: Candidate(id: me), instance: me, request: request, configuration: configuration)
            writes = LeaseWrites(lease: outcome.lease, candidate: outcome.candidate)
            // Most answers come quickly; some are lost (the shell's deadline fails the round) or
            // late, within the deadline (execution at most 200 ms, the answer at most 800 ms).
            let roll = now < Self.calm ? Int.random(in: 0..<20, using: &random) : 2
            if roll == 0 {
                schedule(.deliver(i, nil), after: configuration.requestTimeout.millisecondsValue - 200)
            } else {
                schedule(.deliver(i, outcome.view), after: roll == 1 ? Int64.random(in: 500...800, using: &random) : delay())
            }
        case .release(let epoch, let target): writes.lease = LeaseRules.release(state, holder: me, epoch: epoch, handOverTo: target)
        case .clearTarget: writes.lease = LeaseRules.clearTarget(state, holder: me)
        case .switchover(let id): writes.lease = try? LeaseRules.setTarget(state, id, configuration: configuration)
        }
        if let lease = writes.lease { state.lease = lease }
        if let row = writes.candidate {
            state.candidates.removeAll { $0.candidate.id == row.candidate.id }
            state.candidates.append(row)
        }
    }

    mutating func delay() -> Int64 { Int64.random(in: 1...200, using: &random) }

    /// One fault or operator command, at random; the last ten seconds are calm.
    mutating func chaos() {
        guard now < Self.calm else {
            unhealthy = [false, false, false]
            return
        }
        let i = Int.random(in: 0..<3, using: &random)
        let kind = Int.random(in: 0..<6, using: &random)
        if tracing { trace.append("  chaos \(kind) on \(Self.ids[i]); lease \(state.lease)") }
        switch kind {
        case 0: pausedUntil[i] = min(now + Int64.random(in: 100...3000, using: &random), Self.calm)
        case 1: unhealthy[i].toggle()
        case 2: _ = perform(i, cores[i].resign(now: moment(now)))
        case 3:
            let target = Self.ids[(i + 1) % 3]
            _ = perform(i, cores[i].handOver(to: target, now: moment(now)))
        case 4:
            state.nowMs = now
            if let row = try? LeaseRules.setPreferred(state, Self.ids[i], configuration: configuration) { state.lease = row }
        default:
            state.nowMs = now
            if let row = try? LeaseRules.setTarget(state, Self.ids[i], configuration: configuration) { state.lease = row }
        }
    }
}
