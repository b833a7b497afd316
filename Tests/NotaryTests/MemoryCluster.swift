import Foundation
import HawserCore
import HawserTestSupport
import Metrics
import Notary
import Embedded
import Synchronization

/// A log in memory that misbehaves on demand, as a replicated bus can: it can hold a reader back,
/// show one reader another entry at a position (a fork between servers), and lose its tail
/// (acknowledged entries lost). Appends are conditional on the end, like JetStream's.
final class MemoryBus: Sendable {
    private struct State {
        var entries: [[UInt8]] = []
        var forks: [String: [UInt64: [UInt8]]] = [:]
        var heldAt: [String: UInt64] = [:]
        /// Appends and questions about the end wait, unanswered, until `answer()` (JetStream
        /// while its servers have no majority).
        var silent = false
        /// Answers about the end are held, each as it was when asked (a slow answer), until
        /// `releaseEnds()`; `endsAsked` counts the questions held.
        var endsHeld = false
        var endsAsked = 0
    }
    private let state = Mutex(State())
    /// Bumped on every change, so that readers wait for an event rather than poll.
    private let changes = PositionSignal(0)
    private let version = Mutex<UInt64>(0)

    func log(for reader: String) -> MemoryLog { MemoryLog(bus: self, reader: reader) }

    var end: UInt64 { state.withLock { UInt64($0.entries.count) } }
    func entry(at position: UInt64) -> [UInt8] { state.withLock { $0.entries[Int(position) - 1] } }

    /// `reader` reads no further than `position` until released.
    func hold(_ reader: String, at position: UInt64) { change { $0.heldAt[reader] = position } }
    func release(_ reader: String) { change { $0.heldAt[reader] = nil } }
    /// The bus loses its entries after `position`.
    func truncate(to position: UInt64) { change { $0.entries.removeLast($0.entries.count - Int(position)) } }
    /// `reader` is shown `payload` at `position` instead of what the others see.
    func fork(_ reader: String, at position: UInt64, _ payload: [UInt8]) { change { $0.forks[reader, default: [:]][position] = payload } }

    func fallSilent() { change { $0.silent = true } }
    func answer() { change { $0.silent = false } }

    /// Returns once the bus answers again (at once unless `fallSilent()`).
    fileprivate func waitWhileSilent() async throws {
        while true {
            let seen = changes.value
            if !state.withLock({ $0.silent }) { return }
            try await changes.wait(beyond: seen)
        }
    }

    func holdEnds() { change { $0.endsHeld = true } }
    func releaseEnds() { change { $0.endsHeld = false } }
    var endsAsked: Int { state.withLock { $0.endsAsked } }

    /// Returns once `endsAsked` reaches `count`.
    func waitUntilEndsAsked(_ count: Int) async throws {
        while true {
            let seen = changes.value
            if endsAsked >= count { return }
            try await changes.wait(beyond: seen)
        }
    }

    /// The end as it is now, answered once the ends are no longer held.
    fileprivate func endAnswer() async throws -> UInt64 {
        try await waitWhileSilent()
        var held = false
        let end = try change { state -> UInt64 in
            held = state.endsHeld
            if held { state.endsAsked += 1 }
            return UInt64(state.entries.count)
        }
        while held {
            let seen = changes.value
            held = state.withLock { $0.endsHeld }
            if held { try await changes.wait(beyond: seen) }
        }
        return end
    }

    fileprivate func append(_ payload: [UInt8], after last: UInt64) throws {
        try change { state in
            guard state.entries.count == Int(last) else { throw LogAppendConflict(expected: last) }
            state.entries.append(payload)
        }
    }

    fileprivate func read(_ reader: String, after position: UInt64, limit: Int) async throws -> [LogEntry] {
        while true {
            let seen = changes.value
            let entries = state.withLock { s -> [LogEntry] in
                let end = min(UInt64(s.entries.count), s.heldAt[reader] ?? .max)
                guard end > position else { return [] }
                return (position + 1...min(end, position + UInt64(limit))).map { p in
                    LogEntry(position: p, payload: s.forks[reader]?[p] ?? s.entries[Int(p) - 1])
                }
            }
            if !entries.isEmpty { return entries }
            try await changes.wait(beyond: seen)
        }
    }

    @discardableResult
    private func change<T>(_ body: (inout State) throws -> T) rethrows -> T {
        let value = try state.withLock { try body(&$0) }
        changes.advance(to: version.withLock { $0 += 1; return $0 })
        return value
    }
}

struct MemoryLog: ReplicatedLog {
    let bus: MemoryBus
    let reader: String

    func append(_ payload: [UInt8], after last: UInt64) async throws {
        try await bus.waitWhileSilent()
        try bus.append(payload, after: last)
    }
    func read(after position: UInt64, limit: Int) async throws -> [LogEntry] { try await bus.read(reader, after: position, limit: limit) }
    func lastPosition(applied: UInt64) async throws -> UInt64 { try await bus.endAnswer() }
}

/// The replicas' link in memory: every report reaches every replica, forwards reach the named one.
final class MemoryLink: Sendable {
    private let subscribers = Mutex<[UUID: AsyncThrowingStream<[UInt8], any Error>.Continuation]>([:])
    private let servers = Mutex<[String: @Sendable ([UInt8]) async -> [UInt8]]>([:])

    struct Endpoint: ReplicaLink {
        let hub: MemoryLink

        func publish(report: [UInt8]) async throws {
            for continuation in hub.subscribers.withLock({ Array($0.values) }) { continuation.yield(report) }
        }

        func reports() async throws -> AsyncThrowingStream<[UInt8], any Error> {
            let id = UUID()
            let (stream, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
            hub.subscribers.withLock { $0[id] = continuation }
            continuation.onTermination = { [hub] _ in hub.subscribers.withLock { $0[id] = nil } }
            return stream
        }

        func forward(_ batch: [UInt8], to replica: String, timeout: Duration) async throws -> [UInt8] {
            guard let handle = hub.servers.withLock({ $0[replica] }) else { throw NoResponders() }
            return await handle(batch)
        }

        func serveForwards(as replica: String, _ handle: @escaping @Sendable ([UInt8]) async -> [UInt8]) async throws {
            hub.servers.withLock { $0[replica] = handle }
            defer { hub.servers.withLock { $0[replica] = nil } }
            // Served until cancelled (iterating a stream nobody finishes ends on cancellation).
            let (forever, keep) = AsyncStream.makeStream(of: Never.self)
            for await _ in forever {}
            keep.finish()
            throw CancellationError()
        }
    }

    var endpoint: Endpoint { Endpoint(hub: self) }

    /// Nobody serves the replica a batch was forwarded to (yet).
    struct NoResponders: Error {}
}

/// Three replicas of one notary in this process, on a `MemoryBus` and a `MemoryLink`.
struct MemoryCluster {
    let bus: MemoryBus
    let link: MemoryLink
    let replicas: [NotaryAssembly]
    let stores: [SQLiteNotaryStore]
    static let members = ["r0", "r1", "r2"]

    /// `liveness`: how long a silent replica still counts as up (a test that needs r0 to stay
    /// the sequencer on a loaded machine makes it long).
    /// `key` and `membersOf`: each replica's notary key and member list (a test gives one another);
    /// `sequencer`: the member every replica with the notary's key sees appending before `body`
    /// runs (nil: `body` runs at once).
    static func with<T: Sendable>(directory: String, requestTimeout: Duration = .seconds(5), liveness: Duration = .milliseconds(1_500),
                                  key: (String) -> SigningKey = { _ in notaryKey }, membersOf: (String) -> [String] = { _ in members },
                                  sequencer: String? = "r0",
                                  _ body: (MemoryCluster) async throws -> T) async throws -> T {
        let bus = MemoryBus(), link = MemoryLink()
        var limits = NotaryLimits()
        limits.requestTimeout = requestTimeout
        var replicas = [NotaryAssembly](), stores = [SQLiteNotaryStore]()
        for id in members {
            let store = try SQLiteNotaryStore(path: "\(directory)/\(id).sqlite", durable: true)
            stores.append(store)
            replicas.append(NotaryAssembly(name: "O=Test Notary", signer: key(id), authorisedParties: parties, limits: limits,
                                           log: bus.log(for: id), store: store, link: link.endpoint,
                                           membership: ReplicaMembership(me: id, members: membersOf(id)),
                                           appendTimeout: requestTimeout, metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance),
                                           logger: quietLogger, liveness: liveness))
        }
        let cluster = MemoryCluster(bus: bus, link: link, replicas: replicas, stores: stores)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for replica in replicas {
                for service in replica.services { group.addTask { try await service.run() } }
            }
            defer { group.cancelAll() }
            for (id, replica) in zip(members, replicas) where sequencer != nil && key(id).publicKey == notaryKey.publicKey {
                try await replica.quorum.waitUntil { $0.sequencer() == sequencer }
            }
            return try await body(cluster)
        }
    }
}
