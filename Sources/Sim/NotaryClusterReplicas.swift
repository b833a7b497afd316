import Coordination
import HawserCore
import Notary

/// The replicas of a `NotaryClusterWorld` as `Replica`, `Quorum` and `AnswerGate` run them: start
/// from the store's head, read and apply with `ReplicaStep`, hold answers until `Confirmations`
/// confirms their position, report to the peers.
extension NotaryClusterWorld {
    /// A process starts: from its store's head, with a new instance; everything else is new.
    mutating func start(_ index: Int) {
        let instance = UInt64.random(in: 1...UInt64.max, using: &random)
        let members = shells[index].confirmations.members, id = shells[index].id, head = shells[index].store.head
        shells[index].confirmations = Confirmations(members: members, me: id, instance: instance, head: head, memory: 4_096)
        shells[index].appender = AppenderCore(me: id, codec: codec)
        shells[index].broken = nil
        shells[index].catchUpTarget = log.end
        shells[index].caughtUp = head.position >= shells[index].catchUpTarget
        shells[index].queue = []
        shells[index].busy = false
        shells[index].held = []
        shells[index].waiters = [:]
        shells[index].reading = true
        shells[index].token += 1
        let incarnation = shells[index].incarnation
        queue.schedule(.read(index, incarnation: incarnation), at: now + 1_000_000)
        queue.schedule(.heartbeat(index, incarnation: incarnation), at: now + 1_000_000)
    }

    mutating func read(_ index: Int) {
        // In place (`shells[index]`): a copy of the shell would copy its store at each write.
        guard shells[index].broken == nil else { shells[index].reading = false; return }
        let head = shells[index].store.head
        let entries = log.read(for: index, after: head.position, limit: settings.maxEntriesPerApply, now: now)
        guard !entries.isEmpty else { shells[index].reading = false; return }
        let step: ReplicaStep
        if settings.mutation == .skipChainCheck {
            step = ReplicaStep(entries, after: head, codec: codec) { entry, batch, hash, head in
                batch == nil ? LogChain.check(entry, batch, entryHash: hash, after: head) : .next
            }
        } else {
            step = ReplicaStep(entries, after: head, codec: codec)
        }
        let id = shells[index].id
        if !step.consumed.isEmpty {
            let result = shells[index].store.apply(step)
            record("\(id) applied \(step.consumed[0].position)...\(result.head.position): \(step.items.count) requests, head \(result.head)")
            for (txId, outcome) in zip(step.requested, result.decision.outcomes) where shells[index].waiters[txId] != nil {
                shells[index].held.append((result.head.position, txId, outcome))
            }
            shells[index].confirmations.applied(result.heads, at: Moment(nanoseconds: now))
            if result.head.position >= shells[index].catchUpTarget { shells[index].caughtUp = true }
        }
        if let broken = step.broken {
            shells[index].broken = broken
            record("\(id) STOPS (log_diverged): \(broken)")
        }
        releaseConfirmed(index)
        publish(index)
        queue.schedule(.read(index, incarnation: shells[index].incarnation), at: now + Int64.random(in: 100_000...2_000_000, using: &random))
    }

    /// Signs what the quorum confirmed (with the mutation: everything held).
    mutating func releaseConfirmed(_ index: Int) {
        let confirmed = settings.mutation == .earlyAnswers ? shells[index].store.head.position : shells[index].confirmations.confirmed
        let due = shells[index].held.prefix { $0.position <= confirmed }
        guard !due.isEmpty else { return }
        shells[index].held.removeFirst(due.count)
        for answer in due { sign(index, answer.txId, answer.outcome, position: answer.position) }
    }

    mutating func publish(_ index: Int) {
        let report = shells[index].confirmations.report(status: status(index)), incarnation = shells[index].incarnation
        for peer in shells.indices where peer != index {
            send(from: index, to: peer) { .report(peer, from: index, incarnation: incarnation, report) }
        }
    }

    func status(_ index: Int) -> ReplicaReport.Status {
        shells[index].confirmations.status(broken: shells[index].broken != nil, caughtUp: shells[index].caughtUp, at: Moment(nanoseconds: now))
    }

    func health(_ index: Int) -> QuorumHealth {
        shells[index].confirmations.health(broken: shells[index].broken, caughtUp: shells[index].caughtUp, at: Moment(nanoseconds: now))
    }

    mutating func received(_ index: Int, _ report: ReplicaReport) {
        let before = status(index)
        shells[index].confirmations.received(report, at: Moment(nanoseconds: now))
        releaseConfirmed(index)
        if status(index) != before { publish(index) }
    }
}
