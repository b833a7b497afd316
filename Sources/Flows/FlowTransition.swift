import HawserCore

/// The decisions of one flow's life in an engine, sans-I/O, in the manner of Corda's flow state
/// machine: `transition(event, state)` returns the next state and the actions the engine (the
/// shell) performs, in order; the shell feeds each action's outcome back as the next event.
/// The flow's body is Swift code the shell runs to its end (`FlowContext` journals its effects);
/// this core decides everything around it: reading what is durable, recording the end, the
/// hospital's treatment and its retries, an operator's kill or park, and the engine stopping.
/// Time is an input (`now`); nothing here reads a clock, a store or a task.
public enum FlowTransition {
    public struct State: Sendable, Equatable {
        public var phase: Phase
        /// Retries made so far (the hospital's `attempts`).
        public var attempts: Int
        /// The flow's start is to be written with its first commit (`DeferredStart`), and no run
        /// has found it durable yet.
        public var startUnwritten: Bool
        /// The flow was launched with its replay marker set; its next run's first durable write
        /// clears it (`StartupReplay`).
        public var clearsMarker: Bool
        /// What an operator asked for (kill, park) while the flow was live.
        public var operatorEnd: OperatorEnd?
        /// The engine is stopping: a run that fails is left as it stands, for the next owner.
        public var stopping = false

        /// A flow just launched, after `attempts` retries: its start still to write if
        /// `startUnwritten`, its replay marker to clear if `clearsMarker`.
        public init(attempts: Int, startUnwritten: Bool = false, clearsMarker: Bool = false) {
            phase = .launched
            self.attempts = attempts
            self.startUnwritten = startUnwritten
            self.clearsMarker = clearsMarker
        }
    }

    public enum Phase: Sendable, Equatable {
        /// Made, not yet begun.
        case launched
        /// The store is read for what is durable of the flow (`readDurable`).
        case reading
        /// The flow's body runs (`run`).
        case running
        /// The body returned; its end commits (`commitEnd`).
        case ending(FlowState)
        /// The hospital's delay before the next run (`wait`).
        case waiting
        /// The end a failed run came to (failed, killed or parked) is being recorded (`recordEnd`).
        case recording(FlowState)
        /// That record failed: the hospital's delay before it is tried again (`wait`).
        case recordWaiting(FlowState)
        /// Nothing more happens to the flow in this engine.
        case ended
    }

    public enum OperatorEnd: Sendable, Equatable {
        case kill
        case park(String)
    }

    /// What the store holds of a flow, read before a run that follows a failure.
    public enum Durable: Sendable, Equatable {
        /// The flow's start was never made: there is nothing to run.
        case absent
        /// The flow has ended there (a commit whose answer was lost ended it).
        case ended(FlowRecord)
        /// The flow is unfinished, with this journal.
        case unfinished([JournalEntry])
    }

    public enum Event: Sendable {
        /// The shell begins: with the flow's journal if known (nil: read the store).
        case begin(journal: [JournalEntry]?)
        /// The flow's arguments do not decode to its type.
        case undecodable(String)
        /// What `readDurable` found.
        case read(Durable)
        /// The body returned this output (JSON).
        case returned([UInt8])
        /// The end `commitEnd` asked for is durable.
        case committed
        /// The body, the end's commit or the read threw `error`; `startWritten`: the flow's
        /// deferred start is durable (as this flow).
        case failed(any Error, startWritten: Bool)
        /// The hospital's delay has passed.
        case timerFired
        /// The delay was cut short (the task was cancelled).
        case waitCancelled
        /// An operator kills the flow, or parks it with a reason.
        case kill
        case park(String)
        /// The engine stops.
        case stop
    }

    public enum Action: Sendable, Equatable {
        /// Read what the store holds of the flow; answer with `read`, or `failed` (transient).
        case readDurable
        /// Run the body over `journal` to its end; answer with `returned` or `failed`.
        /// `carriesStart`: the deferred start leads its first commit; `clearsMarker`: so does
        /// clearing its replay marker.
        case run(journal: [JournalEntry], carriesStart: Bool, clearsMarker: Bool)
        /// Check that the body asked for every journaled effect, then commit what it recorded with
        /// `final` (and the writes of an end); answer with `committed` or `failed`.
        case commitEnd(FlowState)
        /// Commit what the failed run recorded, if it can be (best effort); not after a failed end.
        case keepRecorded
        /// Fail the deferred start's waiter with the error just reported.
        case failStart
        /// Record this state (best effort; announced once durable): the running state, an
        /// undecodable flow parked.
        case record(FlowState)
        /// As `record`, only if the store shows the flow unfinished (a failed commit may have
        /// ended it, and an unreachable store is not written to): the hospital's retry marker.
        case recordIfUnfinished(FlowState)
        /// Record the end a failed run came to (with the sessions' farewell); answer with
        /// `committed` or `failed`. `ifUnfinished`: only if the store shows the flow unfinished
        /// (the end's own commit may have been made), else it is `committed` as it stands.
        case recordEnd(FlowState, ifUnfinished: Bool)
        /// Tell observers of a durable end: `final` of the flow as launched, or the stored record.
        case announce(FlowState)
        case announceStored(FlowRecord)
        /// Cancel the running body or delay (the task that runs the flow).
        case cancel
        /// Wait `delay`; answer with `timerFired`, or `waitCancelled` if cancelled.
        case wait(Duration)
        /// The flow's task leaves the engine.
        case end
    }

    public static let killedMessage = "killed by an operator"

    /// The next state and the actions for `event` in `state`, at `now`, under `policy`. An event
    /// that cannot arrive in a phase (a reply to an action not asked for) changes nothing.
    public static func transition(_ event: Event, _ state: State, now: Instant, policy: HospitalPolicy) -> (State, [Action]) {
        var next = state
        switch (event, state.phase) {
        case (.begin(let journal?), .launched):
            next.phase = .running
            next.clearsMarker = false
            return (next, [.run(journal: journal, carriesStart: state.startUnwritten, clearsMarker: state.clearsMarker)])
        case (.begin(nil), .launched):
            next.phase = .reading
            return (next, [.readDurable])
        case (.undecodable(let message), .launched):
            next.phase = .ended
            return (next, [.record(flowState(.hospitalised, error: message, state, now)), .end])

        case (.read(.absent), .reading):
            next.phase = .ended
            return (next, [.end])
        case (.read(.ended(let stored)), .reading):
            next.phase = .ended
            return (next, [.announceStored(stored), .end])
        case (.read(.unfinished(let journal)), .reading):
            next.phase = .running
            next.startUnwritten = false
            next.clearsMarker = false
            return (next, [.record(flowState(.running, state, now)),
                           .run(journal: journal, carriesStart: false, clearsMarker: state.clearsMarker)])

        case (.returned(let output), .running):
            let final = FlowState(status: .completed, result: output, attempts: state.attempts, updatedAt: now)
            next.phase = .ending(final)
            return (next, [.commitEnd(final)])
        case (.committed, .ending(let final)):
            next.phase = .ended
            return (next, [.announce(final), .end])

        case (.failed(let error, let startWritten), .reading), (.failed(let error, let startWritten), .running),
             (.failed(let error, let startWritten), .ending):
            // What a failed run recorded is kept; a failed end's writes are not committed apart:
            // the end may have been made (its answer lost), ending the flow and compacting its
            // journal, and its entries and their local effects would be written a second time.
            // A start not yet durable is written by `keepRecorded` (it leads the flow's first
            // commit), so the end is recorded as for any flow. If that commit fails too, the
            // start's waiter hears its error and nothing is stored; the end's write then changes
            // nothing, and a retry's read finds no flow (or the flow, if the failed commit was made).
            var actions: [Action] = state.phase == .running ? [.keepRecorded] : []
            if state.startUnwritten && !startWritten {
                actions.append(.failStart)
                // Refused: its client request id names another flow, and this one never existed.
                if error is StartRefused {
                    next.phase = .ended
                    return (next, actions + [.end])
                }
            }
            let endMayBeMade = if case .ending = state.phase { true } else { false }
            return failed(error, next, actions, endMayBeMade: endMayBeMade, now: now, policy: policy)

        case (.timerFired, .waiting):
            next.phase = .reading
            return (next, [.readDurable])
        case (.waitCancelled, .waiting):
            guard let asked = operatorRecord(state, now) else {
                next.phase = .ended
                return (next, [.end])
            }
            next.phase = .recording(asked)
            return (next, [.recordEnd(asked, ifUnfinished: false)])

        case (.committed, .recording):
            next.phase = .ended
            return (next, [.end])
        case (.failed, .recording(let end)):
            // The store could not record the end: try again after the hospital's delay, unless
            // the engine stops (the next owner runs the flow again and comes to the same end).
            guard !state.stopping else {
                next.phase = .ended
                return (next, [.end])
            }
            next.attempts += 1
            next.phase = .recordWaiting(end)
            return (next, [.wait(policy.delay(attempt: state.attempts))])
        case (.timerFired, .recordWaiting(let end)):
            guard !state.stopping else {  // the stop came as the delay ended
                next.phase = .ended
                return (next, [.end])
            }
            next.phase = .recording(end)
            return (next, [.recordEnd(end, ifUnfinished: true)])
        case (.waitCancelled, .recordWaiting):
            next.phase = .ended
            return (next, [.end])

        case (.kill, .launched), (.kill, .reading), (.kill, .running), (.kill, .ending), (.kill, .waiting):
            next.operatorEnd = .kill
            return (next, [.cancel])
        case (.park(let reason), .launched), (.park(let reason), .reading), (.park(let reason), .running),
             (.park(let reason), .ending), (.park(let reason), .waiting):
            // A kill asked for first stands.
            if state.operatorEnd != .kill { next.operatorEnd = .park(reason) }
            return (next, [.cancel])
        case (.stop, let phase) where phase != .ended:
            next.stopping = true
            return (next, [.cancel])

        default:
            return (state, [])
        }
    }

    /// After a failed run: an operator's end, else nothing if the engine stops, else the hospital's
    /// treatment. `endMayBeMade`: the failure was the end's commit, which may have been made (its
    /// answer lost); what is recorded then is recorded only if the flow is still unfinished, so a
    /// durable end is never overwritten.
    private static func failed(_ error: any Error, _ state: State, _ actions: [Action], endMayBeMade: Bool, now: Instant,
                               policy: HospitalPolicy) -> (State, [Action]) {
        var next = state
        /// The run came to `end`: recorded until the store has it (`recording`).
        func ending(_ end: FlowState) -> (State, [Action]) {
            next.phase = .recording(end)
            return (next, actions + [.recordEnd(end, ifUnfinished: endMayBeMade)])
        }
        if state.operatorEnd != nil || state.stopping {
            guard let asked = operatorRecord(state, now) else {
                next.phase = .ended
                return (next, actions + [.end])
            }
            return ending(asked)
        }
        switch policy.treat(error, attempts: state.attempts) {
        case .fail(let message):
            return ending(flowState(.failed, error: message, state, now))
        case .park(let reason):
            return ending(flowState(.hospitalised, error: reason, state, now))
        case .retry(let delay):
            next.attempts += 1
            next.phase = .waiting
            let retryAt = Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch.addingSaturating(delay.microseconds))
            let marked = FlowState(status: .hospitalised, error: "\(error)", attempts: next.attempts, retryAt: retryAt, updatedAt: now)
            return (next, actions + [.recordIfUnfinished(marked), .wait(delay)])
        }
    }

    /// The state an operator asked for, if one did.
    private static func operatorRecord(_ state: State, _ now: Instant) -> FlowState? {
        switch state.operatorEnd {
        case .kill: flowState(.killed, error: killedMessage, state, now)
        case .park(let reason): flowState(.hospitalised, error: reason, state, now)
        case nil: nil
        }
    }

    private static func flowState(_ status: FlowStatus, error: String? = nil, _ state: State, _ now: Instant) -> FlowState {
        FlowState(status: status, error: error, attempts: state.attempts, updatedAt: now)
    }
}
