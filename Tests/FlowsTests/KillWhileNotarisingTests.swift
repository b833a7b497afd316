import Flows
import HawserTestSupport
import HawserCore
import Synchronization
import Testing

/// A flow that has asked the notary is not killed: its transaction may be committed, and a kill
/// releases the inputs it holds, which the vault would then offer again though the ledger had
/// spent them (found from outside: a MoveTokens killed while the notary was paused, then 716 moves
/// in a row refused as conflicts on the state it had spent).
struct KillWhileNotarisingTests {
    @Test func aFlowThatAskedTheNotaryIsNotKilledWhileItWaitsOrRetriesAndEndsWhenTheNotaryAnswers() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let notary = HeldNotary(failFirst: true)
        let engine = harness.engine(notary: notary) { $0.register(NotarisingFlow.self) }
        try await running(engine) {
            let started = try await engine.start(NotarisingFlow())
            await notary.gate.reached()
            await #expect(throws: FlowEngineError.notarising(started.id)) { try await engine.kill(started.id) }
            // The first answer is lost (a transient error): the flow waits in the hospital and asks
            // again, and is not killed meanwhile either.
            notary.gate.release()
            await #expect(throws: FlowEngineError.self) { try await engine.kill(started.id) }
            let ended = try await engine.waitForEnd(started.id, timeout: .seconds(30))
            #expect(ended.status == .completed)
            #expect(notary.asked >= 2)
        }
    }

    /// What the engine knows in memory is gone once the flow is parked, or the node restarted:
    /// the store's record of the ask refuses the kill then (an operator resumes such a flow).
    @Test func aFlowThatAskedTheNotaryIsNotKilledOnceParkedNorAfterARestartAndItsRecordGoesWhenItEnds() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let id = try await Self.parkedAfterAskingTheNotary(harness) { engine, id in
            await #expect(throws: FlowEngineError.notarising(id)) { try await engine.kill(id) }
        }
        let answering = HeldNotary(failFirst: false)
        answering.gate.release()
        // A hospital that outlasts a busy moment of the suite's (the default gives up after 5
        // tries within 25 ms, and the flow would wait, hospitalised, for an operator).
        let patient = HospitalPolicy(initialDelay: .milliseconds(10), maxDelay: .milliseconds(500), maxAttempts: 20)
        let second = harness.engine(hospital: patient, notary: answering) { $0.register(NotarisingFlow.self) }
        try await running(second) {
            await #expect(throws: FlowEngineError.notarising(id)) { try await second.kill(id) }
            #expect(try await harness.database.flows.hasAskedNotary(id))
            _ = try await second.resume(id)
            let ended = try await second.waitForEnd(id, timeout: .seconds(30))
            #expect(ended.status == .completed, "\(ended)")
            #expect(try await !harness.database.flows.hasAskedNotary(id))
            await #expect(throws: FlowEngineError.finished(id, .completed)) { try await second.kill(id) }
        }
    }

    /// A flow that asked a notary that never answers, parked by an operator while it waited, in
    /// an engine that has stopped since; `then` runs while that engine still runs.
    static func parkedAfterAskingTheNotary(_ harness: EngineHarness,
                                           then: (FlowEngine, FlowID) async throws -> Void = { _, _ in }) async throws -> FlowID {
        let held = HeldNotary(failFirst: false)
        let first = harness.engine(notary: held) { $0.register(NotarisingFlow.self) }
        return try await running(first) {
            let started = try await first.start(NotarisingFlow())
            await held.gate.reached()
            #expect(try await first.park(started.id, reason: "the notary is slow").status == .hospitalised)
            try await then(first, started.id)
            return started.id
        }
    }

    @Test func aKillBeforeTheFlowAsksTheNotaryEndsItAndItNeverAsks() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let notary = HeldNotary(failFirst: false)
        notary.gate.release()
        let engine = harness.engine(notary: notary) { $0.register(NotarisingFlow.self) }
        try await running(engine) {
            let started = try await engine.start(NotarisingFlow(gatedBefore: true))
            await harness.hooks.gate.reached()
            #expect(try await engine.kill(started.id).status == .killed)
            harness.hooks.gate.release()
            #expect(notary.asked == 0)
        }
    }
}

/// Asks the notary about one transaction, after the test's gate if `gatedBefore`.
struct NotarisingFlow: Flow {
    static let flowName = "Notarising"
    var gatedBefore = false

    func run(_ context: FlowContext) async throws -> String {
        if gatedBefore {
            let hooks = context.services.service(Hooks.self)!
            _ = try await context.external("gate") { _ in
                try await hooks.gate.pass()
                return true
            }
        }
        let request = NotarisationRequest(txId: SecureHash.sha256(Array("tx".utf8)), inputs: [],
                                          requester: Party(name: "O=Alice", publicKey: HeldNotary.key.publicKey), signature: [])
        return "\(try await context.notarise(request).outcome)"
    }
}

/// A notary that holds each request at `gate`, then answers `committed` (the first request with
/// a transient error if `failFirst`); counts the requests.
final class HeldNotary: FlowNotary {
    static let key = SigningKey(seed: [UInt8](repeating: 7, count: 32))!
    let gate = Gate()
    private let failFirst: Bool
    private let count = Mutex(0)

    init(failFirst: Bool) { self.failFirst = failFirst }

    var asked: Int { count.withLock { $0 } }
    var identity: Party { Party(name: "O=Notary", publicKey: Self.key.publicKey) }
    var verifier: AnswerVerifier { AnswerVerifier(notaryKey: Self.key.publicKey) }

    func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        let n = count.withLock { $0 += 1; return $0 }
        try await gate.pass()
        if failFirst && n == 1 { throw TransientFlowError("the notary's answer was lost") }
        let leaf = NotarisationAnswer.leafHash(txId: request.txId, outcome: .committed)
        return NotarisationAnswer(txId: request.txId, outcome: .committed, proof: MerkleProof(leafIndex: 0, leafCount: 1, path: []),
                                  signature: Self.key.sign(NotarisationAnswer.batchSigningPayload(root: leaf)))
    }
}

/// As the process begins to shut down, no wait for a flow holds it (its HTTP server finishes the
/// requests under way before the engine stops): waits end, saying the engine stops (not with the
/// flow as it stands, which read as a wait run its course), and the flows run on until it does.
struct EndWaitsTests {
    @Test func waitsEndAndTheFlowRunsOn() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let notary = HeldNotary(failFirst: false)
        let engine = harness.engine(notary: notary) { $0.register(NotarisingFlow.self) }
        try await running(engine) {
            let started = try await engine.start(NotarisingFlow())
            await notary.gate.reached()
            let waiting = Task { try await engine.waitForEnd(started.id, timeout: .seconds(600)) }
            let events = try await engine.events(of: started.id)
            engine.endWaits()
            await #expect(throws: FlowEngineError.stopping) { _ = try await waiting.value }
            for await _ in events {}  // the stream ends
            await #expect(throws: FlowEngineError.stopping, "a wait begun later ends at once") {
                _ = try await engine.waitForEnd(started.id, timeout: .seconds(600))
            }
            notary.gate.release()
            try await eventually("the flow completes") { try await engine.record(started.id)?.status == .completed }
        }
    }
}
