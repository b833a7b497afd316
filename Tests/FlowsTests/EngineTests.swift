import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(10))) struct EngineTests {
    @Test func aFlowRunsToCompletionWithItsJournalAndProgress() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            let journal = try await harness.database.flows.journal(of: started.id)
            #expect(journal.map(\.kind) == ["random", "progress", "external"])
            harness.hooks.gate.release()
            let record = try await engine.waitForEnd(started.id)
            #expect(record.status == .completed)
            let n = try FlowCoding.decode(UInt64.self, journal[0].result)
            #expect(try FlowCoding.decode(String.self, record.result ?? []) == "\(n)-v")
            #expect(try await engine.progress(of: started.id).map(\.step) == ["one", "two"])
            #expect(harness.hooks.calls("call") == 1)
            // A flow that has ended keeps only its progress steps: a replay never needs the rest.
            #expect(try await harness.database.flows.journal(of: started.id).map(\.kind) == ["progress", "progress"])
        }
    }

    /// Reports a step (written later, with the flow's first commit), then throws an error that
    /// is neither a flow failure nor transient: the hospital parks the flow.
    struct StrayError: Flow {
        static let flowName = "StrayError"
        func run(_ context: FlowContext) async throws -> Int {
            try await context.progress("trying")
            throw Hooks.Broken()
        }
    }

    /// A start with a wait is written with its flow's first commit. A flow that fails before
    /// that commit is recorded as it ends, and the waiter hears that end: it was left stored as
    /// running, with nothing running it, until the node restarted (found by a client written
    /// from the docs). Failed for a flow failure, parked for another error; repeated, the start
    /// names the same flow.
    @Test(arguments: [(FailingFlow.flowName, FlowStatus.failed, "nothing to do"),
                      (StrayError.flowName, .hospitalised, "unexpected error: the service is broken")])
    func aWaitingStartWhoseFlowFailsBeforeItsFirstCommitRecordsTheEnd(_ name: String, _ status: FlowStatus, _ error: String) async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine { $0.register(FailingFlow.self); $0.register(StrayError.self) }
        try await running(engine) {
            let (record, created) = try await engine.startAndWait(flowName: name, arguments: Array("{}".utf8),
                                                                  clientRequestId: "fails-\(name)", timeout: .seconds(20))
            #expect(created)
            #expect(record.status == status)
            #expect(record.error == error)
            #expect(try await harness.database.flows.counts() == [status: 1])
            #expect(try await harness.database.flows.record(record.id)?.status == status)
            let again = try await engine.startAndWait(flowName: name, arguments: Array("{}".utf8),
                                                      clientRequestId: "fails-\(name)", timeout: .seconds(20))
            #expect(!again.created)
            #expect(again.record.id == record.id && again.record.status == status)
        }
    }

    /// Reports a step, then waits at the gate inside an effect that writes nothing.
    struct ProgressThenWait: Flow {
        static let flowName = "ProgressThenWait"
        func run(_ context: FlowContext) async throws -> Int {
            let hooks = context.services.service(Hooks.self)!
            try await context.progress("one")
            _ = try await context.effect("wait", durability: .deferred) { _ in
                try await hooks.gate.pass()
                return true
            }
            try await context.progress("two")
            return 1
        }
    }

    @Test func eventsShowProgressThatIsNotDurableYet() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine { $0.register(ProgressThenWait.self) }
        try await running(engine) {
            let started = try await engine.start(ProgressThenWait())
            await harness.hooks.gate.reached()
            // "one" was published before anyone watched, and is written only with the flow's next write.
            #expect(try await harness.database.flows.journal(of: started.id).isEmpty)
            let events = try await engine.events(of: started.id)
            harness.hooks.gate.release()
            var seen = [String]()
            for await event in events { seen.append(event.step ?? event.status?.rawValue ?? "?") }
            #expect(seen == ["one", "two", "completed"])
        }
    }

    @Test func aRestartedNodeReplaysTheJournalAndDoesNotRepeatEffects() async throws {
        let directory = try TemporaryDirectory()
        let first = try EngineHarness(directory: directory.path)
        let engine = first.engine()
        let id = try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await first.hooks.gate.reached()
            return started.id
        }
        // The first engine stopped (as in a crash) while the flow waited at the gate.
        #expect(try await first.database.flows.record(id)?.status == .running)
        let journal = try await first.database.flows.journal(of: id)
        #expect(journal.map(\.kind) == ["random", "progress", "external"])

        let second = try EngineHarness(directory: directory.path)
        second.hooks.gate.release()
        let restarted = second.engine()
        let record = try await running(restarted) { try await restarted.waitForEnd(id) }
        #expect(record.status == .completed)
        #expect(second.hooks.calls("call") == 0, "the journaled external call must not run again")
        let n = try FlowCoding.decode(UInt64.self, journal[0].result)
        #expect(try FlowCoding.decode(String.self, record.result ?? []) == "\(n)-v")
    }

    @Test func waitingWithATimeoutReturnsTheFlowAsItStands() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            #expect(try await engine.waitForEnd(started.id, timeout: .milliseconds(20)).status == .running)
            harness.hooks.gate.release()
            #expect(try await engine.waitForEnd(started.id, timeout: .seconds(60)).status == .completed)
        }
    }

    @Test func changedCodeIsDetectedAndParked() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        let id = try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            return started.id
        }
        let upgraded = harness.engine { $0.register(ChangedStepsFlow.self) }
        let record = try await running(upgraded) { try await upgraded.waitForEnd(id) }
        #expect(record.status == .hospitalised)
        #expect(record.retryAt == nil)
        #expect(record.error?.contains("non-determinism at effect 0: the journal holds random() but the flow asked for now()") == true)
    }

    @Test func startingTwiceWithOneClientRequestIdStartsOneFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            async let a = engine.start(StepsFlow(), clientRequestId: "order-1")
            async let b = engine.start(StepsFlow(), clientRequestId: "order-1")
            let (first, second) = try await (a, b)
            #expect(first.id == second.id)
            let third = try await engine.start(StepsFlow(), clientRequestId: "order-1")
            #expect(third.id == first.id)
            _ = try await engine.waitForEnd(first.id)
            #expect(try await engine.list().count == 1)
            #expect(harness.hooks.calls("call") == 1)
        }
    }

    @Test func waitingStartsWithOneClientRequestIdStartOneFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        let arguments = try FlowCoding.encode(StepsFlow())
        try await running(engine) {
            async let a = engine.startAndWait(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "order-1")
            async let b = engine.startAndWait(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "order-1")
            let (first, second) = try await (a, b)
            #expect(first.record.id == second.record.id)
            #expect([first.created, second.created].filter { $0 }.count == 1)
            #expect(first.record.status == .completed && second.record.status == .completed)
            #expect(try await engine.list().count == 1)
            #expect(harness.hooks.calls("call") == 1, "the flow whose start was refused must not act outside the node")
            let third = try await engine.startAndWait(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "order-1")
            #expect(third.record.id == first.record.id)
            #expect(!third.created)
        }
    }

    @Test func aRefusedStartWritesNothingOfItsFlow() async throws {
        let directory = try TemporaryDirectory()
        let database = try EngineHarness(directory: directory.path).database
        let flows = database.flows
        let now = Instant(microsecondsSinceEpoch: 1)
        let first = FlowRecord(id: FlowID("a"), clientRequestId: "order-1", flowName: StepsFlow.flowName, arguments: [],
                               createdAt: now, updatedAt: now)
        var second = first
        second.id = FlowID("b")
        let entry = JournalEntry(sequence: 0, kind: EffectKind.send, descriptor: "", result: Array("null".utf8))
        let message = OutboxMessage(messageId: "b/0", session: "s", recipient: "O=Bob", payload: [1])
        let stored = try await flows.commit([.start(first), .start(second), .journal(second.id, entry, [.outbox(message)]),
                                             .state(second.id, FlowState(status: .completed, attempts: 0, updatedAt: now), [])])
        #expect(stored.map { $0?.id } == [first.id, first.id, nil, nil])
        #expect(try await flows.journal(of: second.id).isEmpty)
        #expect(try await database.sessions.outbound(limit: 10, excluding: []).isEmpty)
        #expect(try await flows.record(second.id) == nil)
        #expect(try await flows.record(first.id)?.status == .running)
    }

    @Test func aStoppedEngineStartsNoWaitingFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {}
        await #expect(throws: FlowEngineError.stopping) {
            try await engine.startAndWait(flowName: StepsFlow.flowName, arguments: try FlowCoding.encode(StepsFlow()))
        }
        #expect(try await engine.list().isEmpty)
    }

    /// The engine stops (a hot-hot partition moves) while a waiting start's flow runs before its
    /// first write: the stop cancels the flow's task, whose body throws `CancellationError`, and
    /// the commit of what it recorded, made in that task (as PostgreSQL's store makes it), fails.
    /// The starter hears that the engine stopped, not the flow task's cancellation, which the
    /// node's API answered 500 (seen once in the rolling upgrade).
    @Test func aStartCutByTheStopBeforeItsFirstWriteHearsThatTheEngineStopped() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let flows = harness.database.flows
        let store = InterceptedFlowStore(flows, batchesCommits: true) { writes in
            try Task.checkCancellation()  // as a PostgreSQL call in a cancelled task
            return try await flows.commit(writes)
        }
        let engine = harness.engine(store: store) { $0.register(WaitsBeforeItsFirstWrite.self) }
        try await running(engine) {
            let arguments = try FlowCoding.encode(WaitsBeforeItsFirstWrite())
            let started = Task { try await engine.startAndWait(flowName: WaitsBeforeItsFirstWrite.flowName, arguments: arguments) }
            await harness.hooks.gate.reached()
            await engine.stop()
            await #expect(throws: FlowEngineError.stopping) { _ = try await started.value }
            #expect(try await harness.database.flows.counts().isEmpty)
        }
    }

    /// A wait for a flow's end that the engine's stop cuts short hears that the engine stopped;
    /// it was handed the record as it stood (`running`), which a node's API answered 2xx as if
    /// the `?wait` had run its course (found from outside: a hot-hot process stopping, or its
    /// partition handed over).
    @Test func aWaitCutShortByTheEnginesStopHearsThatItStopped() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine { $0.register(WaitsBeforeItsFirstWrite.self) }
        try await running(engine) {
            let started = try await engine.start(WaitsBeforeItsFirstWrite())
            await harness.hooks.gate.reached()
            let waiting = Task { try await engine.waitForEnd(started.id, timeout: .seconds(600)) }
            await engine.stop()
            await #expect(throws: FlowEngineError.stopping) { _ = try await waiting.value }
        }
    }

    @Test func transientErrorsAreRetriedWithBackOff() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.failTransiently("call", times: 2)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            let record = try await engine.waitForEnd(started.id)
            #expect(record.status == .completed)
            #expect(record.attempts == 2)
            #expect(harness.hooks.calls("call") == 3)
            // The retries replayed the journal: one of each step.
            #expect(try await engine.progress(of: started.id).map(\.step) == ["one", "two"])
        }
    }

    @Test func transientErrorsThatPersistAreParked() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.failTransiently("call", times: 100)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            let record = try await engine.waitForEnd(started.id)
            #expect(record.status == .hospitalised)
            #expect(record.retryAt == nil)
            #expect(record.attempts == 5)
            #expect(record.error?.contains("call is unavailable") == true)
        }
    }

    /// An operator's resume of a flow waiting out the hospital's delay runs it again at once. It
    /// changed nothing before, and the flow waited the whole delay (found by a client written
    /// from the docs). A kill of a waiting flow still ends it, at once.
    @Test func aResumeCutsTheHospitalsDelayShort() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.failTransiently("call", times: 1)
        let engine = harness.engine(hospital: HospitalPolicy(initialDelay: .seconds(3600), maxDelay: .seconds(3600), maxAttempts: 5))
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            try await eventually("the flow waits for its retry") { try await harness.database.flows.record(started.id)?.retryAt != nil }
            let resumed = try await engine.resume(started.id)
            // Without the hospital's reason, which no longer describes it (it was kept, found
            // by a client written from the docs).
            #expect(resumed.status == .running && resumed.retryAt == nil && resumed.error == nil, "\(resumed)")
            let record = try await engine.waitForEnd(started.id, timeout: .seconds(30))
            #expect(record.status == .completed)
            #expect(record.attempts == 1)
            #expect(harness.hooks.calls("call") == 2)

            harness.hooks.failTransiently("call", times: 1)
            let waiting = try await engine.start(StepsFlow())
            try await eventually("the second flow waits for its retry") { try await harness.database.flows.record(waiting.id)?.retryAt != nil }
            #expect(try await engine.kill(waiting.id).status == .killed)
            #expect(try await engine.waitForEnd(waiting.id, timeout: .seconds(30)).status == .killed)
            #expect(harness.hooks.calls("call") == 3)
        }
    }

    /// A second resume of a flow another resume has set running (a retried resume) answers it
    /// running, as the first did: a resume is idempotent. It answered the stale hospitalised
    /// record, retry time and error included (found by racing clients), and then 409, which a
    /// client must take as final though its first resume had worked (found from outside).
    @Test func aSecondResumeOfARunningFlowAnswersItRunning() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.failTransiently("call", times: 1)
        let engine = harness.engine(hospital: HospitalPolicy(initialDelay: .seconds(3600), maxDelay: .seconds(3600), maxAttempts: 5))
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            try await eventually("the flow waits for its retry") { try await harness.database.flows.record(started.id)?.retryAt != nil }
            #expect(try await engine.resume(started.id).status == .running)
            await harness.hooks.gate.reached()  // running again, held at the gate
            let again = try await engine.resume(started.id)
            #expect(again.status == .running && again.retryAt == nil && again.error == nil, "\(again)")
            harness.hooks.gate.release()
            #expect(try await engine.waitForEnd(started.id, timeout: .seconds(30)).status == .completed)
        }
    }

    /// A resume that comes after the hospital's retry time is in the store but before the flow's
    /// task waits for it (found by the suite under load: the resume answered `hospitalised`,
    /// changed nothing, and the flow waited its whole delay). Here the task is held in that moment.
    @Test func aResumeJustAfterTheRetryIsRecordedStillRunsTheFlowAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.failTransiently("call", times: 1)
        let (held, hold) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let store = InterceptedFlowStore(harness.database.flows) { writes in
            let stored = try await harness.database.flows.commit(writes)
            let retry = writes.contains { if case .state(_, let state, _) = $0 { state.retryAt != nil } else { false } }
            if retry {
                hold.yield()
                _ = await released.first { _ in true }
            }
            return stored
        }
        let engine = harness.engine(store: store, hospital: HospitalPolicy(initialDelay: .seconds(3600), maxDelay: .seconds(3600), maxAttempts: 5))
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            _ = await held.first { _ in true }  // the retry time is in the store; the task is held before its wait
            let resumed = try await engine.resume(started.id)
            #expect(resumed.status == .running && resumed.retryAt == nil, "\(resumed)")
            release.yield()
            let record = try await engine.waitForEnd(started.id, timeout: .seconds(30))
            #expect(record.status == .completed)
            #expect(harness.hooks.calls("call") == 2)
        }
    }

    @Test func otherErrorsParkUntilAnOperatorResumes() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.breaks("call", true)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            let parked = try await engine.waitForEnd(started.id)
            #expect(parked.status == .hospitalised)
            #expect(parked.error == "unexpected error: the service is broken")
            harness.hooks.breaks("call", false)
            _ = try await engine.resume(started.id)
            let record = try await engine.waitForEnd(started.id)
            #expect(record.status == .completed)
            await #expect(throws: FlowEngineError.notHospitalised(started.id, .completed)) { try await engine.resume(started.id) }
        }
    }

    /// An operator acting the moment a flow is parked: the store shows it parked, but its task
    /// has not yet told anyone or left the engine. A resume or kill then returned the parked
    /// record and changed nothing. Here the park's commit answers only once the command has come:
    /// once a resume has read the record, or once a kill has been issued.
    @Test(arguments: ["resume", "kill"]) func anOperatorsCommandAsAFlowIsParkedTakesEffect(_ command: String) async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        harness.hooks.breaks("call", true)
        let parkHeld = Gate()
        let releaseOnRead = Mutex(false)
        let store = InterceptedFlowStore(harness.database.flows, read: { _ in
            if releaseOnRead.withLock({ armed in defer { armed = false }; return armed }) { parkHeld.release() }
        }) { writes in
            let records = try await harness.database.flows.commit(writes)
            let parks = writes.contains {
                if case .state(_, let state, _) = $0 { return state.status == .hospitalised && state.retryAt == nil }
                return false
            }
            if parks { try await parkHeld.pass() }
            return records
        }
        let engine = harness.engine(store: store)
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            await parkHeld.reached()
            #expect(try await harness.database.flows.record(started.id)?.status == .hospitalised)
            if command == "resume" {
                releaseOnRead.withLock { $0 = true }
                #expect(try await engine.resume(started.id).status == .running)
                // Still broken: parked again (the park's commit is no longer held).
                #expect(try await engine.waitForEnd(started.id).status == .hospitalised)
            } else {
                let killed = Task { try await engine.kill(started.id) }
                parkHeld.release()
                #expect(try await killed.value.status == .killed)
            }
        }
    }

    @Test func aFlowFailureEndsTheFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(FailingFlow())
            let record = try await engine.waitForEnd(started.id)
            #expect(record.status == .failed)
            #expect(record.error == "nothing to do")
        }
    }

    @Test func killEndsARunningFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            let killed = try await engine.kill(started.id)
            #expect(killed.status == .killed)
            // A retried kill is answered as the first was (idempotent); it was 409 `flow_finished`.
            #expect(try await engine.kill(started.id) == killed)
            #expect(engine.runningCount == 0)
        }
    }

    @Test func drainingStartsNothingNewAndLetsRunningFlowsFinish() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let running = try await engine.start(StepsFlow(gated: true), clientRequestId: "before")
            await harness.hooks.gate.reached()
            engine.setDraining(true)
            await #expect(throws: FlowEngineError.draining) { try await engine.start(StepsFlow()) }
            // A retried start of an existing flow still answers.
            #expect(try await engine.start(StepsFlow(gated: true), clientRequestId: "before").id == running.id)
            harness.hooks.gate.release()
            #expect(try await engine.waitForEnd(running.id).status == .completed)
            // The flow's task leaves the running set just after it publishes its end.
            try await eventually("the flow's task has ended") { engine.runningCount == 0 }
        }
    }

    @Test func unknownFlowsAndBadArgumentsAreRefused() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        await #expect(throws: FlowEngineError.unknownFlow("Nope")) {
            try await engine.start(flowName: "Nope", arguments: Array("{}".utf8))
        }
        await #expect(throws: FlowEngineError.self) {
            try await engine.start(flowName: "Steps", arguments: Array("[1]".utf8))
        }
    }

    @Test func eventsReplayHistoryThenFollowLive() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            let events = try await engine.events(of: started.id)
            harness.hooks.gate.release()
            var seen = [String]()
            for await event in events { seen.append(event.step ?? event.status?.rawValue ?? "?") }
            #expect(seen == ["one", "two", "completed"])
            // A late observer gets the whole history and the final status.
            var late = [String]()
            for await event in try await engine.events(of: started.id) { late.append(event.step ?? event.status?.rawValue ?? "?") }
            #expect(late == ["one", "two", "completed"])
        }
    }
}

/// Waits at the gate before its first effect, so that a stop cancels it before anything is written.
struct WaitsBeforeItsFirstWrite: Flow {
    static let flowName = "WaitsBeforeItsFirstWrite"

    func run(_ context: FlowContext) async throws -> Int {
        try await context.services.service(Hooks.self)!.gate.pass()
        return try await context.external("call") { _ in 1 }
    }
}
