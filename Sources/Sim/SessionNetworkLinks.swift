import Flows
import HawserCore
import Sessions

/// Between the nodes: each node's link manager delivering its outbox (each recipient's messages
/// one at a time, oldest first, the recipients side by side; a recipient that does not answer put
/// off by the real `LinkBackoff`), each node's hub taking what arrives (the real `SessionInbound`:
/// responder started once per session, then the inbox row, then the answer), the network's
/// losses, delays and duplicates, and the faults.
extension SessionNetworkWorld {
    // MARK: The link manager (`LinkManager`)

    /// Delivers the oldest outbox row of each recipient neither put off nor being delivered to.
    mutating func linkTurn(_ index: Int) {
        guard nodes[index].alive, nodes[index].pausedUntil <= now else { return }
        let putOff = nodes[index].backoff.putOff(now: instant)
        var seen = Set<String>()
        for row in nodes[index].store.outbox where seen.insert(row.message.recipient).inserted {
            let recipient = row.message.recipient
            guard !putOff.contains(recipient), nodes[index].delivering[recipient] == nil else { continue }
            guard let peer = node(of: recipient) else {
                return fail("n\(index) holds a message for \(recipient), whom no node hosts")
            }
            attempts += 1
            let incarnation = nodes[index].incarnation
            nodes[index].delivering[recipient] = (attempts, row.id)
            send(.arrive(peer, from: index, incarnation: incarnation, attempt: attempts, row.message), from: index, to: peer)
            queue.schedule(.deliveryTimeout(index, incarnation: incarnation, attempt: attempts),
                           at: now + settings.deliveryTimeout.nanosecondsValue)
        }
    }

    /// The recipient of try `attempt`, if that try is still waiting for its answer.
    func waiting(_ index: Int, attempt: Int) -> (peer: String, id: String)? {
        nodes[index].delivering.first { $0.value.attempt == attempt }.map { ($0.key, $0.value.id) }
    }

    /// The recipient's node answered: the row is deleted (a refused `initiate` is answered to the
    /// sending flow as the counterparty's error first, `SessionInbound.refusal`).
    mutating func answered(_ index: Int, attempt: Int, _ answer: DeliveryAnswer) {
        guard let (peer, id) = waiting(index, attempt: attempt) else { return }
        nodes[index].delivering[peer] = (0, id)
        record("n\(index) delivery of \(id) answered")
        var writes: [SimWrite] = [.acknowledge(id)]
        if case .refused(let error) = answer {
            record("n\(index) delivery of \(id) refused: \(error)")
            if let sent = nodes[index].store.outbox.first(where: { $0.id == id })?.message, let refusal = SessionInbound.refusal(of: sent, error) {
                writes.insert(.inbox(refusal), at: 0)
            }
        }
        commit(index, writes, then: .acknowledged(peer: peer))
    }

    /// No answer in time: the recipient is put off, and its messages wait with it.
    mutating func unanswered(_ index: Int, attempt: Int) {
        guard let (peer, id) = waiting(index, attempt: attempt) else { return }
        nodes[index].delivering[peer] = nil
        if settings.mutation == .forgetUnanswered {
            commit(index, [.acknowledge(id)], then: .none)
        } else {
            let retryAt = nodes[index].backoff.failed(peer, now: instant)
            record("n\(index) delivery of \(id) unanswered; \(peer) put off until \(retryAt.microsecondsSinceEpoch) us")
        }
        linkTurn(index)
    }

    // MARK: The receiving node's hub (`SessionHub.accept`)

    mutating func arrive(_ index: Int, from: Int, incarnation: Int, attempt: Int, _ message: SessionMessage) {
        deliveries += 1
        record("n\(index) <- n\(from) \(message.kind.rawValue) \(message.key)")
        if settings.mutation == .earlyAccept { reply(index, to: from, incarnation: incarnation, attempt: attempt, .accepted) }
        let decision = SessionInbound.decide(message) { initiator in
            initiator.flowName == SimPaymentFlows.payName && initiator.version == 1 ? "PayResponder" : nil
        }
        switch decision {
        case .refuse(let error):
            reply(index, to: from, incarnation: incarnation, attempt: attempt, .refused(error))
        case .startResponder(_, let session):
            let requestId = SessionInbound.responderRequestId(session.id)
            let id = nodes[index].store.startsAlways ? newFlowId(index) : nodes[index].store.flow(requestId: requestId) ?? newFlowId(index)
            commit(index, [.start(id, requestId: requestId, .receive(session))],
                   then: .accepting(from: from, incarnation: incarnation, attempt: attempt, message, stored: false))
        case .store:
            commit(index, [.inbox(message)], then: .accepting(from: from, incarnation: incarnation, attempt: attempt, message, stored: true))
        }
    }

    /// After the responder's start, the inbox row; after the inbox row, the answer.
    mutating func accepting(_ index: Int, from: Int, incarnation: Int, attempt: Int, _ message: SessionMessage, stored: Bool,
                            failure: (any Error)?) {
        guard failure == nil else { return }  // no answer: the sender tries again
        if !stored {
            if let id = nodes[index].store.flow(requestId: SessionInbound.responderRequestId(message.session)) { launch(index, id) }
            commit(index, [.inbox(message)], then: .accepting(from: from, incarnation: incarnation, attempt: attempt, message, stored: true))
        } else if settings.mutation != .earlyAccept {
            reply(index, to: from, incarnation: incarnation, attempt: attempt, .accepted)
        }
    }

    mutating func reply(_ index: Int, to sender: Int, incarnation: Int, attempt: Int, _ answer: DeliveryAnswer) {
        send(.answer(sender, incarnation: incarnation, attempt: attempt, answer), from: index, to: sender)
    }

    // MARK: The network

    /// Sends `event` from one node to another: lost, slow, duplicated, or on time (and reordered
    /// by its delay). Once quiet, the network is healthy: what is still on the wire arrives, and
    /// every node must have delivered its outbox by the end.
    mutating func send(_ event: Event, from: Int, to: Int) {
        guard nodes[from].cutOffUntil <= now, nodes[to].cutOffUntil <= now else { return }
        let roll = quiet ? 1 : Double.random(in: 0..<1, using: &random)
        guard roll >= settings.loss else { return }
        let timeout = settings.deliveryTimeout.nanosecondsValue
        let delay = roll < settings.loss + settings.slow ? Int64.random(in: timeout / 2...timeout * 2, using: &random)
            : Int64.random(in: 100_000...5_000_000, using: &random)
        queue.schedule(event, at: now + delay)
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.duplicate {
            queue.schedule(event, at: now + Int64.random(in: 100_000...50_000_000, using: &random))
        }
    }

    // MARK: Faults

    mutating func injectFault() {
        guard !quiet else { return }
        queue.schedule(.fault, at: now + gap())
        let index = Int.random(in: 0..<nodes.count, using: &random)
        let kinds = SessionFault.allCases.filter { settings.faults.contains($0) }
        let fault = kinds[Int.random(in: 0..<kinds.count, using: &random)]
        guard nodes[index].alive else { return }
        faults += 1
        let until = now + Int64.random(in: 100_000_000...settings.longest.nanosecondsValue, using: &random)
        record("fault: \(fault.rawValue) n\(index)")
        switch fault {
        case .pause: nodes[index].pausedUntil = max(nodes[index].pausedUntil, until)
        case .crash:
            // Half the crashes come while a flow's commit is under way: where durable writes go wrong.
            if Bool.random(using: &random) { crash(index, restartAt: until) } else { nodes[index].crashAtFlowCommit = until - now }
        case .partition: nodes[index].cutOffUntil = max(nodes[index].cutOffUntil, until)
        case .lostAnswer, .failedCommit: nodes[index].commitFault = fault
        }
    }

    /// Kills the node's process: a commit under way may or may not have been made; nothing else it held survives.
    mutating func crash(_ index: Int, restartAt: Int64) {
        nodes[index].alive = false
        nodes[index].incarnation += 1
        for id in nodes[index].commits.keys.sorted() {
            let commit = nodes[index].commits[id]!
            if Bool.random(using: &random) { apply(index, commit.writes) }
            // A client whose start was under way sees its connection close, and asks again.
            if case .started(let number) = commit.then {
                history(.info, .start(clientRequestId: "pay-\(number)", flowId: nil))
                queue.schedule(.pay(index, number: number), at: now + 200_000_000)
            }
        }
        nodes[index].commits = [:]
        nodes[index].flows = [:]
        nodes[index].delivering = [:]
        nodes[index].commitFault = nil
        nodes[index].crashAtFlowCommit = nil
        nodes[index].pausedUntil = 0
        nodes[index].backoff = LinkBackoff(policy: settings.backoff)
        queue.schedule(.restart(index), at: restartAt)
    }

    /// A new process: the link polls again, and every unfinished flow runs from its journal.
    mutating func restart(_ index: Int) {
        nodes[index].alive = true
        record("n\(index) restarts")
        queue.schedule(.linkPoll(index, incarnation: nodes[index].incarnation), at: now)
        queue.schedule(.prune(index, incarnation: nodes[index].incarnation), at: now + settings.inboxPruneInterval.nanosecondsValue)
        for id in nodes[index].store.unfinished { launch(index, id) }
    }

    // MARK: The checks at the end

    mutating func finalChecks() {
        for (index, node) in nodes.enumerated() {
            guard node.alive else { return fail("n\(index) is down at the end") }
            if let id = node.store.unfinished.first {
                return fail("n\(index): flow \(id) has not ended \(settings.quiet) after the faults stopped")
            }
            if let row = node.store.outbox.first {
                return fail("n\(index) still holds \(node.store.outbox.count) undelivered messages, the first \(row.id)")
            }
            // Every flow has ended, long enough ago for a pruning to have come since.
            if let key = node.store.inbox.keys.map(\.description).min() {
                return fail("n\(index)'s inbox still holds \(node.store.inbox.count) messages of ended flows, \(key) among them")
            }
        }
        for (number, payment) in payments.enumerated() {
            guard let id = payment.flow else { return fail("payment \(number) was never started") }
            let payer = nodes[payment.payer].store, payee = nodes[payment.payee].store
            guard let state = payer.flows[id]?.state, state.status == .completed else {
                return fail("payment \(number) (\(id)) did not complete: \(payer.flows[id]?.state.error ?? "no record")")
            }
            let responder = payee.responders.first { $0.key.hasPrefix("\(id.rawValue)/") }?.value
            let debit = payer.applied["debit:\(id)"], refund = payer.applied["refund:\(id)"]
            let credit = responder.flatMap { payee.applied["credit:\($0)"] }
            let expected: (credit: Int?, refund: Int?) = state.result == SimPaymentFlows.paid ? (payment.amount, nil)
                : payment.amount % SimPaymentFlows.refusedDivisor == 0 ? (nil, payment.amount) : (-1, -1)
            guard debit == -payment.amount, credit == expected.credit, refund == expected.refund else {
                return fail("payment \(number) of \(payment.amount) (\(id)) ended \(String(decoding: state.result ?? [], as: UTF8.self)) "
                            + "with debit \(debit.map(String.init) ?? "none"), credit \(credit.map(String.init) ?? "none"), "
                            + "refund \(refund.map(String.init) ?? "none")")
            }
        }
        // What the clients were told, with each payment's end as they would read it.
        for payment in payments {
            guard let id = payment.flow, let state = nodes[payment.payer].store.flows[id]?.state else { continue }
            history(.ok, .result(flowId: id.rawValue, status: state.status.rawValue, result: state.result.map { String(decoding: $0, as: UTF8.self) }))
        }
        if let first = HistoryChecker().check(History(events: history)).violations.first { return fail("history: \(first)") }
        let total = nodes.reduce(0) { $0 + $1.store.balance }
        if total != settings.balance * nodes.count {
            fail("tokens not conserved: \(total) across the network, \(settings.balance * nodes.count) at the start")
        }
    }
}
