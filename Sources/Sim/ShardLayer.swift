import Coordination

/// What a simulated shard owner runs (`ShardSettings`): the flows in the shared node database.
public struct ShardSettings: Sendable, Hashable {
    public var flows = 16
    /// Durable writes per flow: enough that flows run through most of the faults.
    public var steps = 150
    /// Pause between a flow's writes (true time), drawn from this range.
    public var stepGap: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(300)
    /// How long an engine takes to stop its flows before its cleanup write (a loaded machine, a
    /// flow slow to see its cancellation), drawn from this range.
    public var stopTime: ClosedRange<Duration> = .zero ... .seconds(1)
    /// False plants a bug, for tests of the checks: the database takes writes of any epoch.
    public var fenced = true
    public init() {}
}

/// One candidate's hot-warm shell, as `ShardService` runs it: the real `ShardCore` fed with the
/// election's statuses in order, the real `WriteFence`, and a term's work: a flow engine that
/// resumes the shard's unfinished flows (`StartupReplay` in the database) and writes each flow's
/// steps, fenced; its stop clears the markers of the flows it ran that have not written since
/// (unfenced, as `FlowStore.clearReplayMarkers` is). It parks a marked flow at once: the engine's
/// wait before parking (`FlowEngine.Configuration.markerGrace`) is not modelled.
struct ShardProcess {
    struct Term {
        var id: Int
        var epoch: Epoch
        /// Flow → the step it is at.
        var flows: [Int: Int] = [:]
        /// Flows whose replay marker this term set and that have not written since.
        var unwritten: Set<Int> = []
        /// Flow writes sent and not answered yet: a stop waits for them, as the engine's does.
        var writing = 0
        var started = false
        var stopping = false
    }

    enum Purpose {
        case claim(Epoch), start(term: Int), step(term: Int, flow: Int), cleanup(term: Int)
    }

    var core = ShardCore()
    var fence = WriteFence(resource: "node/0")
    var fed = ElectionStatus.initial
    var term: Term?
    var calls: [Int: Purpose] = [:]
    /// Pauses, cut-offs and slow or lost messages of this process: a term that ended without one
    /// since it set a flow's marker ended cleanly.
    var disturbances = 0
    /// How each term this incarnation led ended: true when it gave leadership up of its own accord
    /// (resigned, handed over) rather than losing it or stepping down after a refused write.
    var endedVoluntarily: [Epoch: Bool] = [:]
    var abandoned: Set<Epoch> = []
    /// The epoch of this incarnation's last term: a new term must have a higher one, or fencing
    /// could not tell a late write of the old term from the new term's.
    var lastTermEpoch: Epoch?
}

extension LeaseElectionWorld {
    /// A process (re)starts: a new shell with nothing held.
    mutating func resetShard(_ index: Int) {
        guard node != nil else { return }
        let disturbances = processes[index].disturbances
        processes[index] = ShardProcess()
        processes[index].disturbances = disturbances
    }

    /// After an election transition of `index`: how its leadership ended, and its status to the shell.
    mutating func observe(_ index: Int, ledWith before: Epoch?, actions: [ElectionCore.Action]) {
        guard node != nil else { return }
        if let before, shells[index].core.leading?.epoch != before {
            // Given up of its own accord: released at once, or held until the work stops.
            let released = shells[index].core.isHoldingRelease || actions.contains { if case .release(before, _) = $0 { true } else { false } }
            processes[index].endedVoluntarily[before] = released && !processes[index].abandoned.contains(before)
        }
        let status = shells[index].core.status
        if status != processes[index].fed {
            processes[index].fed = status
            queue.schedule(.shardStatus(index, incarnation: shells[index].incarnation, status), at: now)
        }
    }

    mutating func handleShard(_ event: Event) {
        switch event {
        case .shardStatus(let index, let incarnation, let status):
            guard let index = ready(index, event), shells[index].incarnation == incarnation else { return }
            perform(index, processes[index].core.status(status))
        case .nodeArrive(let index, let incarnation, let call, let request):
            let answer = node!.apply(request)
            record("node <- \(shells[index].id) #\(call) \(request): \(answer)")
            if let broken = node!.broken { return fail(broken) }
            checkParkings()
            queue.schedule(.nodeAnswer(index, incarnation: incarnation, call: call, answer), at: now + delay(index))
        case .nodeAnswer(let index, let incarnation, let call, let answer):
            guard let index = ready(index, event), shells[index].incarnation == incarnation,
                  let purpose = processes[index].calls.removeValue(forKey: call) else { return }
            answered(index, purpose, answer)
        case .flowStep(let index, let incarnation, let term, let flow):
            guard let index = ready(index, event), shells[index].incarnation == incarnation,
                  let current = processes[index].term, current.id == term, !current.stopping,
                  let step = current.flows[flow], let epoch = try? processes[index].fence.epochForWrite() else { return }
            processes[index].term!.writing += 1
            send(index, .step(epoch, flow: flow, from: step), for: .step(term: term, flow: flow))
        case .engineStopped(let index, let incarnation, let term):
            guard let index = ready(index, event), shells[index].incarnation == incarnation,
                  let current = processes[index].term, current.id == term else { return }
            send(index, .cleanup(current.epoch, flows: current.unwritten.sorted()), for: .cleanup(term: term))
        default:
            break
        }
    }

    private mutating func perform(_ index: Int, _ actions: [ShardCore.Action]) {
        for action in actions {
            switch action {
            case .hold(let epoch): processes[index].fence.hold(epoch)
            case .release: processes[index].fence.release()
            case .claim(let epoch, _):
                // The model's database refuses a claim or takes it, never fails it otherwise: no retries.
                send(index, .claim(epoch), for: .claim(epoch))
            case .startWork(let epoch):
                // Leadership given up from now on is released only once the term stopped; given up
                // already (its status is on its way to the shard): the term does not start.
                guard shells[index].core.workStarted(epoch) else {
                    perform(index, processes[index].core.workFailed(epoch, problem: "leadership ended before its work started"))
                    continue
                }
                if let last = processes[index].lastTermEpoch, epoch <= last {
                    fail("\(shells[index].id) starts a term at epoch \(epoch) after one at \(last): fencing cannot tell them apart")
                }
                processes[index].lastTermEpoch = epoch
                terms += 1
                let id = terms
                processes[index].term = ShardProcess.Term(id: id, epoch: epoch)
                let marker = SimNodeDatabase.Marker(process: index, incarnation: shells[index].incarnation, epoch: epoch,
                                                    disturbances: processes[index].disturbances)
                guard let fenced = try? processes[index].fence.epochForWrite() else {
                    perform(index, processes[index].core.workFailed(epoch, problem: "not_owner"))
                    continue
                }
                send(index, .start(fenced, marker), for: .start(term: id))
            case .stopWork:
                guard var term = processes[index].term else {
                    perform(index, processes[index].core.workStopped())
                    continue
                }
                if !term.started, processes[index].calls.values.allSatisfy({ if case .start(term.id) = $0 { false } else { true } }) {
                    termStopped(index)  // it never got as far as its start
                    continue
                }
                term.stopping = true
                processes[index].term = term
                // Like the engine's stop, which waits for a start under way and for the writes
                // of its flows: the cleanup follows them.
                if term.started, term.writing == 0 { cleanUp(index) }
            case .finish:
                break
            case .stepDown(let reason):
                if let epoch = shells[index].core.leading?.epoch { processes[index].abandoned.insert(epoch) }
                record("\(shells[index].id) steps down: \(reason)")
                let moment = shells[index].clock.moment(at: now)
                wake(index, transition(index) { $0.resign(now: moment) })
            }
        }
    }

    private mutating func answered(_ index: Int, _ purpose: ShardProcess.Purpose, _ answer: SimNodeDatabase.Answer) {
        let refusal: String? = if case .refused(let problem) = answer { problem } else { nil }
        switch purpose {
        case .claim(let epoch):
            if let refusal {
                perform(index, processes[index].core.claimFailed(epoch, problem: refusal, refused: true))
            } else {
                perform(index, processes[index].core.claimed(epoch))
            }
        case .start(let id):
            guard var term = processes[index].term, term.id == id else { return }
            guard case .started(let flows) = answer else {
                // A stop under way ends with the failed start (`ShardService`'s stop task reports it).
                if term.stopping { return termStopped(index) }
                return perform(index, processes[index].core.workFailed(term.epoch, problem: refusal ?? ""))
            }
            term.started = true
            for (flow, step) in flows {
                term.flows[flow] = step
                term.unwritten.insert(flow)
            }
            processes[index].term = term
            if term.stopping { return cleanUp(index) }
            for (flow, _) in flows { scheduleStep(index, flow: flow) }
            perform(index, processes[index].core.workStarted(term.epoch))
        case .step(let id, let flow):
            guard var term = processes[index].term, term.id == id else { return }
            term.writing -= 1
            if refusal == nil {
                term.unwritten.remove(flow)
                term.flows[flow, default: 0] += 1
            }
            processes[index].term = term
            if term.stopping {
                if term.writing == 0 { cleanUp(index) }
            } else if let refusal {
                perform(index, processes[index].core.writeRefused(problem: refusal))
            } else if !node!.isDone(flow) {
                scheduleStep(index, flow: flow)
            }
        case .cleanup(let id):
            guard processes[index].term?.id == id else { return }
            termStopped(index)
        }
    }

    /// The term's work has stopped (its last write made): the election may release what it
    /// holds, and the shard core may begin the next term.
    private mutating func termStopped(_ index: Int) {
        processes[index].term = nil
        let moment = shells[index].clock.moment(at: now)
        wake(index, transition(index) { $0.workStopped(now: moment) })
        perform(index, processes[index].core.workStopped())
    }

    /// The stopped term's last write: its flows' markers, at the term's own epoch.
    /// After the engine's stop time (`ShardSettings.stopTime`), unless the process died meanwhile.
    private mutating func cleanUp(_ index: Int) {
        guard let shard = settings.shard, let term = processes[index].term else { return }
        let stopping = Int64.random(in: shard.stopTime.lowerBound.nanosecondsValue...shard.stopTime.upperBound.nanosecondsValue, using: &random)
        queue.schedule(.engineStopped(index, incarnation: shells[index].incarnation, term: term.id), at: now + stopping)
    }

    private mutating func scheduleStep(_ index: Int, flow: Int) {
        guard let shard = settings.shard, let term = processes[index].term else { return }
        let gap = Int64.random(in: shard.stepGap.lowerBound.nanosecondsValue...shard.stepGap.upperBound.nanosecondsValue, using: &random)
        queue.schedule(.flowStep(index, incarnation: shells[index].incarnation, term: term.id, flow: flow), at: now + gap)
    }

    private mutating func send(_ index: Int, _ call: SimNodeDatabase.Call, for purpose: ShardProcess.Purpose) {
        calls += 1
        processes[index].calls[calls] = purpose
        queue.schedule(.nodeArrive(index, incarnation: shells[index].incarnation, call: calls, call), at: now + delay(index))
    }

    /// A flow parked although the term that set its marker ended cleanly (of its own accord, not
    /// killed, paused, cut off or slowed since) is a healthy flow parked as poison.
    private mutating func checkParkings() {
        while checkedParkings < node!.parkings.count {
            let (flow, marker) = node!.parkings[checkedParkings]
            checkedParkings += 1
            let setter = processes[marker.process]
            guard shells[marker.process].incarnation == marker.incarnation, setter.disturbances == marker.disturbances,
                  setter.endedVoluntarily[marker.epoch] == true else { continue }
            fail("flow \(flow) parked as poison, though \(shells[marker.process].id)'s term at epoch \(marker.epoch), "
                 + "which resumed it, ended of its own accord and undisturbed")
        }
    }

    /// At the end: every flow finished or parked, and a process serves.
    func shardProblem() -> String? {
        guard let node else { return nil }
        let unfinished = node.flows.indices.filter { !node.isDone($0) && !node.flows[$0].parked }
        if !unfinished.isEmpty { return "\(unfinished.count) flows neither finished nor parked after the quiet period" }
        if !processes.contains(where: { $0.core.isServing }) { return "no process serves the shard after the quiet period" }
        return nil
    }
}
