import Foundation
import HawserCore
import Sessions
import Synchronization

/// Everything a flow may do that is not pure computation. Each call is an effect: the first time
/// it runs and its result is journaled; when the flow is replayed after a crash or a retry, the
/// journaled result is returned instead, and a call that differs from the journal parks the flow
/// with a `NonDeterminismError`. Effects must be awaited one at a time.
public final class FlowContext: Sendable {
    private struct Core {
        var replay: Replay
        /// Entries recorded but not yet durable, with their local effects: written with the
        /// next durable write, which always comes before anything visible outside the node.
        var pending: [FlowWrite] = []
        /// Whether `pending` changes node state (local effects) that a read must see first.
        var pendingLocalEffects = false
    }

    public let flowId: FlowID
    public let services: FlowServices
    private let core: Mutex<Core>
    private let committer: GroupCommitter
    /// A start not yet written: it leads the pending writes, so the flow's first commit carries it.
    private let start: DeferredStart?
    private let onRecorded: @Sendable (JournalEntry) -> Void
    /// Called before the flow asks the notary (`notarise`); throws if an operator's kill came first.
    private let askingNotary: @Sendable () throws -> Void
    /// Called once a commit has cleared the flow's replay marker.
    private let markerCleared: @Sendable () -> Void
    /// The flow's sessions by id, as its journal has driven them so far (`FlowContext+Sessions`).
    let sessionCores = Mutex<[String: SessionCore]>([:])

    /// `clearsReplayMarker`: the flow was replayed at start-up with its marker set; its first
    /// durable write clears it (see `StartupReplay`), and then calls `markerCleared`.
    init(flowId: FlowID, journal: [JournalEntry], services: FlowServices, committer: GroupCommitter,
         start: DeferredStart? = nil, clearsReplayMarker: Bool = false, askingNotary: @escaping @Sendable () throws -> Void = {},
         markerCleared: @escaping @Sendable () -> Void = {}, onRecorded: @escaping @Sendable (JournalEntry) -> Void) {
        self.flowId = flowId
        self.services = services
        let first: [FlowWrite] = (start.map { [.start($0.record)] } ?? []) + (clearsReplayMarker ? [.replayMarker(flowId, false)] : [])
        self.core = Mutex(Core(replay: Replay(journal: journal), pending: first))
        self.committer = committer
        self.start = start
        self.onRecorded = onRecorded
        self.askingNotary = askingNotary
        self.markerCleared = markerCleared
    }

    /// True while the flow is still taking results from its journal.
    public var isReplaying: Bool { core.withLock { $0.replay.isReplaying } }

    /// The journal as it stands, the entries not yet durable included.
    var journal: [JournalEntry] { core.withLock { $0.replay.journal } }

    func finishReplay() throws {
        try core.withLock { try $0.replay.finish() }
    }

    /// Makes every recorded entry durable now, with `extra` writes after them in the same
    /// transaction. If the commit fails the entries stay pending: a retry must not take them
    /// for durable (a value replayed from memory would differ from the one after a crash).
    /// The commit that carries a deferred start settles it; if the start was refused, the store
    /// wrote nothing of this flow and `StartRefused` is thrown.
    func commitPending(plus extra: [FlowWrite] = []) async throws {
        let (taken, local) = core.withLock { core in
            defer {
                core.pending = []
                core.pendingLocalEffects = false
            }
            return (core.pending, core.pendingLocalEffects)
        }
        guard !(taken + extra).isEmpty else { return }
        let stored: [FlowRecord?]
        do {
            stored = try await committer.commit(taken + extra)
        } catch {
            core.withLock { core in
                core.pending = taken + core.pending
                core.pendingLocalEffects = core.pendingLocalEffects || local
            }
            throw error
        }
        if (taken + extra).contains(where: { if case .replayMarker(_, false) = $0 { true } else { false } }) { markerCleared() }
        if let start, case .start? = taken.first, let record = stored.first ?? nil {
            start.settle(.success(record))
            if record.id != flowId { throw StartRefused() }
        }
    }

    // MARK: The primitive

    /// When an effect's journal entry must be durable.
    public enum Durability: Sendable {
        /// The effect may safely run again after a crash (time, randomness, progress): its entry
        /// is written with the flow's next durable write.
        case deferred
        /// As `deferred`, for an effect that reads the node database: the flow's local effects
        /// not yet written are written first, so the flow reads its own writes.
        case read
        /// The effect only changes the node database (its `local` effects). Entry and effects
        /// are written, in one transaction, with the flow's next durable write: before anything
        /// it does outside the node, before it reads the database, and when it ends. Until then
        /// other flows do not see them; after a crash the flow makes them again on replay.
        case local
        /// The entry is durable before the call returns (a durable timer's wake-up time).
        case now
        /// The effect is seen outside the node: every earlier entry is made durable before it
        /// runs (its inputs must not change on replay); its own result is then durable too,
        /// unless `resultDeferred` (running it again gives the same result, as notarising does).
        case outside(resultDeferred: Bool)
    }

    /// Runs `body` once and journals its result; on replay returns the journaled result.
    /// `kind` and `descriptor` name what is asked and are compared on replay. `local` effects are
    /// committed in the same transaction as the journal entry. `body` receives the effect's
    /// sequence number, unique within the flow.
    public func effect<T: Codable & Sendable>(_ kind: String, _ descriptor: String = "",
                                              durability: Durability = .outside(resultDeferred: false),
                                              local: @Sendable (Int, T) -> [LocalEffect] = { _, _ in [] },
                                              _ body: (Int) async throws -> T) async throws -> T {
        try Task.checkCancellation()
        switch try core.withLock({ try $0.replay.next(kind: kind, descriptor: descriptor) }) {
        case .replay(let bytes):
            return try FlowCoding.decode(T.self, bytes)
        case .execute(let sequence):
            do {
                switch durability {
                case .outside: try await commitPending()
                case .read: if core.withLock({ $0.pendingLocalEffects }) { try await commitPending() }
                case .deferred, .local, .now: break
                }
                let value = try await body(sequence)
                let entry = JournalEntry(sequence: sequence, kind: kind, descriptor: descriptor,
                                         result: try FlowCoding.encode(value))
                let effects = local(sequence, value)
                let write = FlowWrite.journal(flowId, entry, effects)
                let deferred: Bool
                switch durability {
                case .deferred, .read, .local: deferred = true
                case .now: deferred = false
                case .outside(let resultDeferred): deferred = resultDeferred
                }
                if deferred {
                    core.withLock { core in
                        core.pending.append(write)
                        if !effects.isEmpty { core.pendingLocalEffects = true }
                    }
                } else {
                    try await commitPending(plus: [write])
                }
                core.withLock { $0.replay.record(entry) }
                onRecorded(entry)
                return value
            } catch {
                core.withLock { $0.replay.abandon() }
                throw error
            }
        }
    }

    /// Journals a step that only changes local state: `effects` are committed with the entry.
    public func record(_ kind: String, _ descriptor: String,
                       effects: @escaping @Sendable (Int) -> [LocalEffect]) async throws {
        _ = try await effect(kind, descriptor, durability: .local, local: { sequence, _ in effects(sequence) }) { _ in Nothing() }
    }

    // MARK: Time and randomness

    public func now() async throws -> Instant {
        Instant(microsecondsSinceEpoch: try await effect(EffectKind.now, durability: .deferred) { _ in services.clock.now().microsecondsSinceEpoch })
    }

    public func random() async throws -> UInt64 {
        try await effect(EffectKind.random, durability: .deferred) { _ in UInt64.random(in: .min ... .max) }
    }

    public func randomBytes(_ count: Int) async throws -> [UInt8] {
        [UInt8](try await effect(EffectKind.random, "\(count)", durability: .deferred) { _ in
            Data((0..<count).map { _ in UInt8.random(in: .min ... .max) })
        })
    }

    /// A durable timer: the wake-up time is journaled, so after a restart the flow sleeps only
    /// what is left.
    public func sleep(for duration: Duration) async throws {
        let micros = duration.microseconds
        let wake = try await effect(EffectKind.sleep, "\(micros)us", durability: .now) { _ in
            services.clock.now().microsecondsSinceEpoch.addingSaturating(micros)
        }
        let left = wake - services.clock.now().microsecondsSinceEpoch
        guard left > 0 else { return }
        // What the flow did before it waits is written first: observers see its progress, and
        // a replay marker is cleared, however long the wait.
        try await commitPending()
        try await services.clock.sleep(for: .microseconds(left))
    }

    // MARK: Structure

    /// Reports a progress step to observers (it is journaled, so a replay does not report it twice).
    public func progress(_ step: String) async throws {
        _ = try await effect(EffectKind.progress, step, durability: .deferred) { _ in Nothing() }
    }

    /// A version marker (Temporal's `patched`): true where the flow should take the new code path.
    /// Flows that ran the old code before the patch existed replay with false.
    public func patched(_ id: String) async throws -> Bool {
        try Task.checkCancellation()
        switch core.withLock({ $0.replay.patched(id) }) {
        case .taken(let newPath):
            return newPath
        case .recordMarker(let sequence):
            let entry = JournalEntry(sequence: sequence, kind: EffectKind.patch, descriptor: id, result: Array("null".utf8))
            core.withLock { core in
                core.replay.record(entry)
                core.pending.append(.journal(flowId, entry, []))
            }
            return true
        }
    }

    /// Runs another flow inline: its effects join this flow's journal.
    public func subFlow<F: Flow>(_ flow: F) async throws -> F.Output {
        _ = try await effect(EffectKind.subFlow, F.flowName, durability: .deferred) { _ in Nothing() }
        return try await flow.run(self)
    }

    /// Calls something outside the node exactly once per flow step. `body` receives a dedup id,
    /// stable across replays and retries, to hand to the external system so it can drop repeats
    /// (the call may run again if the node crashes before its result is journaled).
    public func external<T: Codable & Sendable>(_ name: String, _ body: (String) async throws -> T) async throws -> T {
        try await effect(EffectKind.external, name) { sequence in try await body("\(flowId.rawValue)/\(sequence)") }
    }

    // MARK: Ledger

    /// Notarises a transaction through the node's notary. Asking again about the same transaction
    /// id returns the first outcome, so a retry after a crash is safe.
    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        guard let notary = services.notary else { throw MissingServiceError("notary") }
        try transactionMayCommit()
        let recorded = try await effect(EffectKind.notarise, request.txId.hex, durability: .outside(resultDeferred: true)) { _ in
            RecordedAnswer(try await notary.notarise(request))
        }
        return try recorded.answer()
    }

    /// Says that from here a transaction spending what this flow holds may be committed at the
    /// notary whatever becomes of this run: this flow is about to ask (`notarise` says so), or is
    /// about to give a counterparty what lets it notarise (its agreement to a swap). The engine
    /// then refuses to kill the flow (a kill releases inputs the ledger may have spent), and so
    /// does any engine after a restart: the store records it with the flow's next durable write,
    /// which comes before anything leaves the node. Throws if an operator's kill came first.
    public func transactionMayCommit() throws {
        try askingNotary()
        core.withLock { core in
            if !core.replay.isReplaying { core.pending.append(.notaryAsked(flowId)) }
        }
    }

    public func notaryIdentity() throws -> Party {
        guard let notary = services.notary else { throw MissingServiceError("notary") }
        return notary.identity
    }

    /// Checks answers of the node's notary that a counterparty presents (`FlowNotary.verifier`).
    public func notaryVerifier() throws -> AnswerVerifier {
        guard let notary = services.notary else { throw MissingServiceError("notary") }
        return notary.verifier
    }

    /// Signs `bytes` with the key of `party`, a party this node hosts.
    public func sign(_ bytes: [UInt8], as party: String) async throws -> [UInt8] {
        guard let keys = services.keys else { throw MissingServiceError("keys") }
        // Journaled as Data (base64 in JSON), far cheaper to encode than an array of numbers.
        return [UInt8](try await effect(EffectKind.sign, "\(party):\(SecureHash.sha256(bytes).hex)", durability: .deferred) { _ in
            Data(try keys.sign(bytes, as: party))
        })
    }
}

// Saturating: a flow that sleeps "for ever", or a hospital delay configured huge, must not crash
// the node on the arithmetic.
extension Int64 {
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }
}

extension Duration {
    var microseconds: Int64 {
        let (seconds, attos) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : whole.addingSaturating(attos / 1_000_000_000_000)
    }
}

/// The journaled result of an effect that returns nothing.
public struct Nothing: Codable, Sendable, Equatable {
    public init() {}
}

/// A notary answer in a journal-friendly form.
struct RecordedAnswer: Codable, Sendable {
    var txId: String
    var outcome: Data
    var leafIndex: UInt32
    var leafCount: UInt32
    var path: [String]
    var signature: Data

    init(_ answer: NotarisationAnswer) {
        txId = answer.txId.hex
        var w = CanonicalWriter()
        w.outcome(answer.outcome)
        outcome = Data(w.bytes)
        leafIndex = answer.proof.leafIndex
        leafCount = answer.proof.leafCount
        path = answer.proof.path.map(\.hex)
        signature = Data(answer.signature)
    }

    func answer() throws -> NotarisationAnswer {
        var reader = CanonicalReader([UInt8](outcome))
        let decoded = try reader.outcome()
        guard let id = SecureHash(hex: txId) else { throw CanonicalDecodingError("journaled transaction id is malformed") }
        let hashes = try path.map { hex -> SecureHash in
            guard let hash = SecureHash(hex: hex) else { throw CanonicalDecodingError("journaled proof is malformed") }
            return hash
        }
        return NotarisationAnswer(txId: id, outcome: decoded,
                                  proof: MerkleProof(leafIndex: leafIndex, leafCount: leafCount, path: hashes),
                                  signature: [UInt8](signature))
    }
}
