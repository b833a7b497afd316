import Coordination
import Foundation
import Logging
import Synchronization
import ZooKeeper

/// The `Election` on ZooKeeper: each candidate owns an ephemeral-sequential node, the lowest
/// leads, the others each watch the node before their own. Leadership lasts only while the
/// session is known to be alive: on `suspended` the leader stops acting at once, and takes up
/// again (same epoch) only if the same session comes back with its node still first.
///
/// One task (`run()`) owns the ZooKeeper client and does every request, each bounded by
/// `requestTimeout`. `resign` and `handOver` leave requests that it acts on within `checkInterval`.
public final class ZooKeeperElection: Election {
    public let candidate: Candidate
    private let configuration: ZooKeeperElectionConfiguration
    private let health: HealthChecks
    private let logger: Logger
    private let broadcast = StatusBroadcast()
    private let requests = Mutex<Requests>(Requests())

    private struct Requests {
        var resign = false
        var handOverTo: String?
    }

    /// Why a wait ended.
    private enum Wake: Sendable {
        case tick, fired, connectionLost(ZooKeeperConnectionState)
    }

    /// The current session's node, and the epoch while leading.
    private struct Term {
        var node: String?
        var epoch: Epoch?
        var policy: PreferredMasterPolicy
        /// The watch on our predecessor, kept across checks: watches are one-shot and an armed
        /// one stays registered, so setting a new one every check would pile them up.
        var watching: (node: String, watch: ZooKeeperWatch)?
    }

    public init(candidate: Candidate, configuration: ZooKeeperElectionConfiguration,
                health: HealthChecks = HealthChecks(), logger: Logger = Logger(label: "hawser.election")) throws {
        try Candidate.validate(id: candidate.id)
        try configuration.validate()
        self.candidate = candidate
        self.configuration = configuration
        self.health = health
        self.logger = logger
    }

    public var status: ElectionStatus { broadcast.status }
    public func statuses() -> AsyncStream<ElectionStatus> { broadcast.stream() }

    public func resign() async {
        requests.withLock { $0.resign = true }
    }

    public func handOver(to id: String) async throws {
        try Candidate.validate(id: id)
        requests.withLock { $0.handOverTo = id }
    }

    public func run() async throws {
        defer { broadcast.finish() }
        while !Task.isCancelled {
            var zk = try ZooKeeperConfiguration(connectString: configuration.connectString)
            zk.sessionTimeout = configuration.sessionTimeout
            zk.initialConnectTimeout = max(configuration.sessionTimeout, .seconds(2))
            let client: ZooKeeperClient
            do {
                client = try await ZooKeeperClient.connect(configuration: zk, logger: logger)
            } catch {
                if Task.isCancelled { break }
                logger.warning("cannot reach ZooKeeper", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: configuration.checkInterval)
                continue
            }
            do {
                try await session(client)
            } catch {
                if !Task.isCancelled { logger.warning("ZooKeeper session ended", metadata: ["error": "\(error)"]) }
            }
            stepDown(reason: Task.isCancelled ? "stopping" : "session lost")
            // Deletes our node at once, so the next candidate need not wait for expiry; in a task of
            // its own (awaited here) so that our cancellation does not cancel the close.
            await Task { await client.close() }.value
        }
        broadcast.update { $0 = ElectionStatus(role: .notStanding, leader: nil) }
    }

    // MARK: One session

    /// Stands in the election for the life of one session; returns when the session expired.
    private func session(_ client: ZooKeeperClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Stops leadership the moment the connection is lost, whatever the loop is doing.
            group.addTask {
                for await state in client.states() where state != .connected && state != .reconnected {
                    self.stepDown(reason: "connection to ZooKeeper \(state)")
                }
            }
            defer { group.cancelAll() }
            try await standInSession(client)
        }
    }

    private func standInSession(_ client: ZooKeeperClient) async throws {
        try await ensurePaths(client)
        var term = Term(node: nil, epoch: nil, policy: PreferredMasterPolicy(holdDown: configuration.holdDown))
        while !Task.isCancelled {
            if status.role.epoch == nil { term.epoch = nil }  // the monitor stepped down
            switch client.state {
            case .expired, .closed: return
            case .suspended:
                stepDown(reason: "connection to ZooKeeper suspended")
                term.epoch = nil
                if case .connectionLost(let state) = await waitForReconnection(client), state == .expired || state == .closed { return }
                continue
            case .connected, .reconnected:
                break
            }
            do {
                if let problem = await health.problem() {
                    try await withdraw(client, &term, reason: "unhealthy: \(problem)", role: .notStanding)
                    _ = await wait(client, for: nil)
                    continue
                }
                if term.epoch != nil {
                    try await lead(client, &term)
                } else {
                    try await stand(client, &term)
                }
            } catch let error as ZooKeeperError where error == .sessionExpired || error == .closed {
                return
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // A request timed out or the connection dropped: judge again from the state.
                if term.epoch != nil, client.state != .connected, client.state != .reconnected {
                    stepDown(reason: "connection to ZooKeeper suspended")
                    term.epoch = nil
                }
                logger.debug("election step failed", metadata: ["error": "\(error)"])
                if client.state == .connected || client.state == .reconnected {
                    try? await Task.sleep(for: configuration.checkInterval)
                }
            }
        }
    }

    /// Not leading: make sure our node exists, then lead, defer or watch our predecessor.
    private func stand(_ client: ZooKeeperClient, _ term: inout Term) async throws {
        if requests.withLock({ $0.resign }) {
            requests.withLock { $0.resign = false }  // nothing to resign from
        }
        if let id = requests.withLock({ r in defer { r.handOverTo = nil }; return r.handOverTo }), id != candidate.id {
            try await setSwitchover(client, id)
        }
        if term.node == nil { term.node = try await createNode(client) }
        let children = try await call { try await client.getChildren(self.configuration.candidatesPath).children }
        let target = try await readString(client, configuration.switchoverPath)
        broadcast.update { status in
            if status.role == .notStanding { status.role = .follower }
            status.leader = ElectionRules.expectedLeader(children: children, target: target)
        }
        switch ElectionRules.decide(children: children, mine: term.node!, target: target) {
        case .missing:
            term.node = nil
        case .deferTo(let target):
            logger.info("deferring to switchover target", metadata: ["target": "\(target)"])
            try await requeue(client, &term)
        case .watch(let predecessor):
            if term.watching?.node != predecessor {
                let (stat, watch) = try await call { try await client.existsAndWatch("\(self.configuration.candidatesPath)/\(predecessor)") }
                guard stat != nil else { return }  // already gone: decide again
                term.watching = (predecessor, watch)
            }
            if case .fired = await wait(client, for: term.watching!.watch) { term.watching = nil }
        case .lead:
            try await claimEpoch(client, &term)
        }
    }

    /// Takes the next epoch (or keeps ours after a connection loss) atomically with checking that
    /// our node still exists, so an epoch is never handed to a candidate that lost its place.
    private func claimEpoch(_ client: ZooKeeperClient, _ term: inout Term) async throws {
        let node = term.node!
        let (data, stat) = try await call { try await client.getData(self.configuration.epochPath) }
        let (epoch, isNew) = EpochRecord.claim(after: EpochRecord.decode(data), node: node)
        let record = EpochRecord(epoch: epoch, leader: candidate.id, node: node)
        do {
            _ = try await call {
                try await client.multi([
                    .check(path: "\(self.configuration.candidatesPath)/\(node)", version: -1),
                    .setData(path: self.configuration.epochPath, data: record.bytes, version: stat.version),
                ])
            }
        } catch ZooKeeperError.multiFailed(let index, let error, _) {
            if index == 0 { term.node = nil }  // our node is gone: stand again
            logger.debug("epoch claim lost a race", metadata: ["error": "\(error)"])
            return
        }
        term.policy.reset()
        // Published only while connected: if the connection was lost meanwhile, the monitor's
        // step-down either already happened (we do not lead) or comes after this.
        var published = false
        broadcast.update { status in
            guard client.state == .connected || client.state == .reconnected else { return }
            status = ElectionStatus(role: .leader(epoch), leader: candidate.id)
            published = true
        }
        guard published else { return }
        term.epoch = epoch
        logger.info(isNew ? "leading" : "leading again after a connection loss", metadata: ["epoch": "\(epoch)"])
        if try await readString(client, configuration.switchoverPath) == candidate.id {
            try await call { _ = try await client.setData(self.configuration.switchoverPath, data: []) }
        }
    }

    /// Leading: every `checkInterval`, check health, resignation, switchover and the preferred
    /// master. A lost connection ends leadership at once.
    private func lead(_ client: ZooKeeperClient, _ term: inout Term) async throws {
        if case .connectionLost = await wait(client, for: nil) {
            stepDown(reason: "connection to ZooKeeper suspended")
            term.epoch = nil
            return
        }
        if let problem = await health.problem() {
            try await withdraw(client, &term, reason: "unhealthy: \(problem)", role: .notStanding)
            return
        }
        let request = requests.withLock { r in defer { r = Requests() }; return r }
        if let id = request.handOverTo, id != candidate.id { try await setSwitchover(client, id) }
        if request.resign {
            try await requeue(client, &term, reason: "resigned")
            return
        }
        let children = try await call { try await client.getChildren(self.configuration.candidatesPath).children }
        let standing = Set(ElectionRules.queue(children).map(\.id))
        if let target = try await readString(client, configuration.switchoverPath), target != candidate.id {
            if standing.contains(target) {
                try await requeue(client, &term, reason: "switchover to \(target)")
                return
            }
            // A switchover to a candidate that is not standing is dropped.
            try await call { _ = try await client.setData(self.configuration.switchoverPath, data: []) }
        }
        let preferred = try await readString(client, configuration.preferredPath)
        if let to = term.policy.observe(now: .now(), me: candidate.id, preferred: preferred,
                                        preferredStanding: preferred.map(standing.contains) ?? false) {
            try await setSwitchover(client, to)
            try await requeue(client, &term, reason: "preferred master \(to) is back")
        }
    }

    // MARK: Steps

    /// Stops acting (first), then deletes our node and creates a new one at the back of the queue.
    private func requeue(_ client: ZooKeeperClient, _ term: inout Term, reason: String = "deferring") async throws {
        stepDown(reason: reason)
        term.epoch = nil
        if let node = term.node {
            try await call { try await client.delete("\(self.configuration.candidatesPath)/\(node)") }
            term.node = nil
        }
        term.node = try await createNode(client)
    }

    /// Stops acting and takes our node away (unhealthy candidates do not stand).
    private func withdraw(_ client: ZooKeeperClient, _ term: inout Term, reason: String, role: Role) async throws {
        if term.epoch != nil { stepDown(reason: reason) }
        term.epoch = nil
        broadcast.update { $0.role = role }
        if let node = term.node {
            try await call { try await client.delete("\(self.configuration.candidatesPath)/\(node)") }
            term.node = nil
        }
    }

    private func stepDown(reason: String) {
        guard status.role.epoch != nil else { return }
        logger.info("stepped down", metadata: ["reason": "\(reason)"])
        broadcast.update { status in
            status.role = .follower
            status.leader = nil
        }
    }

    /// Creates our ephemeral-sequential node. After a connection loss during the create, the node
    /// may exist without our knowing its name: adopt the one our session owns.
    private func createNode(_ client: ZooKeeperClient) async throws -> String {
        let data = Array((try? JSONEncoder().encode(candidate)) ?? Data())
        let prefix = "\(configuration.candidatesPath)/\(ElectionRules.nodePrefix(for: candidate.id))"
        do {
            let path = try await call { try await client.create(prefix, data: data, mode: .ephemeralSequential) }
            return String(path.split(separator: "/").last!)
        } catch ZooKeeperError.connectionLoss {
            let children = try await call { try await client.getChildren(self.configuration.candidatesPath).children }
            for node in ElectionRules.queue(children) where node.id == candidate.id {
                if let stat = try await call({ try await client.exists("\(self.configuration.candidatesPath)/\(node.name)") }),
                   stat.ephemeralOwner == client.sessionID {
                    return node.name
                }
            }
            throw ZooKeeperError.connectionLoss
        }
    }

    private func setSwitchover(_ client: ZooKeeperClient, _ id: String) async throws {
        try await call { _ = try await client.setData(self.configuration.switchoverPath, data: Array(id.utf8)) }
    }

    private func readString(_ client: ZooKeeperClient, _ path: String) async throws -> String? {
        let data = try await call { try await client.getData(path).data }
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }

    private func ensurePaths(_ client: ZooKeeperClient) async throws {
        try await ZooKeeperPaths.ensure(client, configuration)
    }

    /// One ZooKeeper request, bounded by `requestTimeout`.
    private func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(configuration.requestTimeout, "a ZooKeeper request", body)
    }

    /// Waits for the watch to fire, the connection to be lost, or `checkInterval`, whichever is first.
    private func wait(_ client: ZooKeeperClient, for watch: ZooKeeperWatch?) async -> Wake {
        await withTaskGroup(of: Wake?.self) { group in
            group.addTask {
                for await state in client.states() where state != .connected && state != .reconnected {
                    return .connectionLost(state)
                }
                return nil
            }
            group.addTask { [interval = configuration.checkInterval] in
                try? await Task.sleep(for: interval)
                return .tick
            }
            if let watch {
                group.addTask {
                    _ = try? await watch.event()
                    return .fired
                }
            }
            defer { group.cancelAll() }
            while let next = await group.next() {
                if let wake = next { return wake }
            }
            return .tick
        }
    }

    /// Waits (up to a session timeout per round) until the connection is back or the session is gone.
    private func waitForReconnection(_ client: ZooKeeperClient) async -> Wake {
        for await state in client.states() {
            switch state {
            case .reconnected, .connected: return .tick
            case .expired, .closed: return .connectionLost(state)
            case .suspended: continue
            }
        }
        return .tick
    }
}

/// The persistent nodes of an election.
enum ZooKeeperPaths {
    static func ensure(_ client: ZooKeeperClient, _ configuration: ZooKeeperElectionConfiguration) async throws {
        var path = ""
        for part in configuration.base.split(separator: "/") {
            path += "/\(part)"
            try await createIfMissing(client, path)
        }
        for child in [configuration.candidatesPath, configuration.epochPath, configuration.preferredPath, configuration.switchoverPath] {
            try await createIfMissing(client, child)
        }
    }

    private static func createIfMissing(_ client: ZooKeeperClient, _ path: String) async throws {
        do {
            try await client.create(path)
        } catch ZooKeeperError.nodeExists {
        }
    }
}
