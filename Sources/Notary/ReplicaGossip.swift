import HawserCore
import HawserWire
import Logging
import ServiceLifecycle

/// The replicas' conversation over the link: publishes this replica's report whenever it changes
/// and every `heartbeat`, feeds the peers' authentic reports to the quorum, and appends the
/// batches other replicas forward to this one as their sequencer. A link failure only delays
/// progress (confirmations, forwards); each loop starts again after a pause.
public struct ReplicaGossip: Service {
    let link: any ReplicaLink
    let codec: ReplicaCodec
    let quorum: Quorum
    let appender: LogAppender
    let heartbeat: Duration
    let logger: Logger
    /// Peers' heartbeats come four times a second: one line each would flood the log.
    private let reportProblems = RefusalLog(interval: .seconds(10))

    public init(link: any ReplicaLink, codec: ReplicaCodec, quorum: Quorum, appender: LogAppender,
                heartbeat: Duration = .milliseconds(250), logger: Logger) {
        self.link = link
        self.codec = codec
        self.quorum = quorum
        self.appender = appender
        self.heartbeat = heartbeat
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.repeating("receiving reports", self.listen) }
                group.addTask { await self.repeating("serving forwarded batches", self.serve) }
                group.addTask { await self.repeating("publishing reports", self.publishChanges) }
                group.addTask { await self.repeating("publishing heartbeats", self.publishHeartbeats) }
            }
        }
    }

    private func listen() async throws {
        for try await bytes in try await link.reports() {
            guard let report = codec.report(bytes) else {
                let claimed = codec.claimedReplica(bytes) ?? ""
                quorum.unauthentic(claimed: claimed)
                if let unlogged = reportProblems.admit("unauthentic", at: .now) {
                    logger.warning("ignored a replica report that is not authentic (another notary key, or not a report)",
                                   metadata: ["claimed": "\(claimed.prefix(64))", "unlogged": "\(unlogged)"])
                }
                continue
            }
            quorum.received(report)
            if case .otherMembers(let other, _) = quorum.health, let unlogged = reportProblems.admit("members", at: .now) {
                logger.error("a replica of this notary runs with another log.members list: this replica takes no requests until the lists agree",
                             metadata: ["replica": "\(other.replica)", "theirs": "\(other.members)",
                                        "mine": "\(quorum.membership.members)", "unlogged": "\(unlogged)"])
            }
        }
    }

    private func serve() async throws {
        let codec = self.codec, appender = self.appender
        try await link.serveForwards(as: quorum.membership.me) { bytes in
            guard let requests = codec.requests(fromForwarded: bytes) else {
                return codec.forwardReply(APIError(.malformedRequest, "not an authentic forwarded batch"))
            }
            do {
                try await appender.append(requests, forwarded: true)
                return codec.forwardReply(nil)
            } catch {
                return codec.forwardReply(Notary.apiError(error))
            }
        }
    }

    private func publishChanges() async throws {
        for await report in quorum.outbox {
            try await link.publish(report: codec.message(report))
        }
    }

    private func publishHeartbeats() async throws {
        var said = quorum.health.status
        while true {
            try await Task.sleep(for: heartbeat)
            sayHealth(since: &said)
            if let report = quorum.report { try await link.publish(report: codec.message(report)) }
        }
    }

    /// Logs a change of the replica's health: a cluster without a quorum for a minute, or a
    /// second process running as this replica, showed only in metrics and health (found from
    /// outside). Each state is logged at most once per 10 s, so a flapping quorum cannot flood.
    private func sayHealth(since said: inout String) {
        let health = quorum.health
        guard health.status != said else { return }
        defer { said = health.status }
        guard let unlogged = reportProblems.admit("health \(health.status)", at: .now) else { return }
        let metadata: Logger.Metadata = ["was": "\(said)", "now": "\(health.status)", "unlogged": "\(unlogged)"]
        if let refusal = health.refusal {
            logger.error("the replica takes no requests: \(refusal.message)", metadata: metadata)
        } else if case .noQuorum(let live) = health {
            logger.warning("fewer than a majority of the replicas are heard from and agree: nothing can be confirmed; requests wait",
                           metadata: metadata.merging(["live": "\(live)"]) { $1 })
        } else {
            logger.notice("the replica's health changed", metadata: metadata)
        }
    }

    /// Runs `body` until cancelled, starting it again after a failure.
    private func repeating(_ what: String, _ body: @Sendable () async throws -> Void) async {
        while !Task.isCancelled {
            do {
                try await body()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("replica link: \(what) failed; trying again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
