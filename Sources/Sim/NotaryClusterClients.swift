import HawserCore
import HawserWire
import Notary

/// The clients of a `NotaryClusterWorld`, the signed answers and the invariants checked on them,
/// the faults, and the checks at the end of a run.
extension NotaryClusterWorld {
    /// How long a client waits for one answer before it fails over.
    var clientPatience: Int64 { (settings.requestTimeout + settings.appendTimeout).nanosecondsValue + 500_000_000 }

    /// A client sends its transaction (a new one spending one or two of the states, or the one it
    /// has not had an answer for) to its current replica.
    mutating func clientSend(_ client: Int, call: Int) {
        guard clients[client].call == call else { return }
        if clients[client].transaction == nil {
            clients[client].made += 1
            let txId = SecureHash.sha256(Array("seed \(seed) client \(client) transaction \(clients[client].made)".utf8))
            var inputs = [pool[Int.random(in: pool.indices, using: &random)]]
            if Bool.random(using: &random) {
                let other = pool[Int.random(in: pool.indices, using: &random)]
                if other != inputs[0] { inputs.append(other) }
            }
            let request = NotarisationRequest(txId: txId, inputs: inputs, requester: requester, signature: [])
            clients[client].transaction = SimTransaction(request: request)
            inputsOf[txId] = inputs
        }
        let transaction = clients[client].transaction!
        let replica = clients[client].replica
        history(.invoke, .notarise(txId: transaction.request.txId, inputs: transaction.request.inputs, outcome: nil))
        record("client \(client) asks r\(replica) for \(transaction.request.txId.hex.prefix(8)) spending \(transaction.request.inputs.map(\.index))")
        if shells[replica].cutOffUntil <= now { deliver(.clientArrive(replica, client: client, call: call, transaction)) }
        queue.schedule(.clientTimeout(client, call: call), at: now + clientPatience)
    }

    mutating func clientAnswer(_ client: Int, call: Int, _ result: Result<NotarisationOutcome, APIError>) {
        guard clients[client].call == call, let transaction = clients[client].transaction else { return }
        let txId = transaction.request.txId
        switch result {
        case .success(let outcome):
            history(.ok, .notarise(txId: txId, inputs: nil, outcome: Self.historyOutcome(outcome)))
            record("client \(client) told \(txId.hex.prefix(8)): \(outcome.kindName)")
            if quiet { answeredInQuiet += 1 }
            renew(transaction.request.inputs, outcome, txId)
            clients[client].transaction = nil
            clients[client].call += 1
            queue.schedule(.clientSend(client, call: clients[client].call), at: now + Int64.random(in: 1_000_000...50_000_000, using: &random))
        case .failure(let error):
            history(.info, .notarise(txId: txId, inputs: nil, outcome: nil))
            record("client \(client) told \(txId.hex.prefix(8)): \(error.code.rawValue)")
            failOver(client)
        }
    }

    mutating func clientTimeout(_ client: Int, call: Int) {
        guard clients[client].call == call, let transaction = clients[client].transaction else { return }
        history(.info, .notarise(txId: transaction.request.txId, inputs: nil, outcome: nil))
        record("client \(client) gave up waiting for r\(clients[client].replica)")
        failOver(client)
    }

    /// The slots whose states the answer shows spent get new ones: the transaction's first
    /// output if it committed, else a newly issued state.
    mutating func renew(_ inputs: [StateRef], _ outcome: NotarisationOutcome, _ txId: SecureHash) {
        let spent: [StateRef]
        switch outcome {
        case .committed: spent = inputs
        case .conflict(let conflicts): spent = conflicts.map(\.ref)
        case .timeWindowInvalid: spent = []
        }
        for (slot, state) in pool.enumerated() where spent.contains(state) {
            if outcome == .committed {
                pool[slot] = StateRef(txId: txId, index: UInt32(slot))
            } else {
                pool[slot] = StateRef(txId: issue, index: issued)
                issued += 1
            }
        }
    }

    /// Asks the next replica; after six tries the client leaves the transaction undecided (to it).
    mutating func failOver(_ client: Int) {
        clients[client].transaction!.attempts += 1
        if clients[client].transaction!.attempts >= 6 { clients[client].transaction = nil }
        clients[client].replica = (clients[client].replica + 1) % shells.count
        clients[client].call += 1
        queue.schedule(.clientSend(client, call: clients[client].call), at: now + Int64.random(in: 10_000_000...100_000_000, using: &random))
    }

    /// `Notary.notarise`'s wait ended: no answer within the request time-out.
    mutating func answerTimeout(_ index: Int, client: Int, call: Int, txId: SecureHash) {
        guard shells[index].waiters[txId]?.contains(where: { $0 == (client, call) }) == true else { return }
        shells[index].waiters[txId]!.removeAll { $0 == (client, call) }
        toClient(client, from: index, .clientAnswer(client, call: call, .failure(APIError(.timeout, "no answer within the request time-out"))))
    }

    /// The gate signs an answer: checked at once, then handed to whoever waits for it here.
    mutating func sign(_ index: Int, _ txId: SecureHash, _ outcome: NotarisationOutcome, position: UInt64) {
        let by = shells[index].id
        if let prior = signed[txId] {
            if prior.outcome != outcome {
                fail("transaction \(txId.hex.prefix(16)) signed \(prior.outcome.kindName) by \(prior.by) (position \(prior.position)), then \(outcome.kindName) by \(by) (position \(position))")
            }
        } else {
            signed[txId] = (outcome, position, by)
            if outcome == .committed {
                for ref in inputsOf[txId] ?? [] {
                    if let other = committedBy[ref], other != txId {
                        fail("state \(ref.index) committed by two signed answers: \(other.hex.prefix(16)) and \(txId.hex.prefix(16)) (by \(by), position \(position))")
                    }
                    committedBy[ref] = txId
                }
            }
        }
        for (client, call) in shells[index].waiters.removeValue(forKey: txId) ?? [] {
            toClient(client, from: index, .clientAnswer(client, call: call, .success(outcome)))
        }
    }

    mutating func history(_ kind: History.Kind, _ op: History.Op) {
        history.append(History.Event(line: history.count + 1, kind: kind, op: op))
    }

    static func historyOutcome(_ outcome: NotarisationOutcome) -> History.Outcome {
        switch outcome {
        case .committed: .committed
        case .conflict(let conflicts): .conflict(Dictionary(conflicts.map { ($0.ref, [$0.consumingTxIdHash]) }, uniquingKeysWith: { $0.union($1) }))
        case .timeWindowInvalid: .timeWindowInvalid
        }
    }

    // MARK: Faults

    mutating func gap() -> Int64 { Int64.random(in: 1...settings.meanGap.nanosecondsValue * 2, using: &random) }

    mutating func injectFault() {
        let kinds = ClusterFault.allCases.filter(settings.faults.contains)
        let fault = kinds[Int.random(in: kinds.indices, using: &random)]
        let spell = Int64.random(in: 50_000_000...settings.longest.nanosecondsValue, using: &random)
        var index = Int.random(in: shells.indices, using: &random)
        if fault == .lostTail || fault == .diverge { index = unlucky }
        let next = now + gap()
        if next < settings.faulty.nanosecondsValue { queue.schedule(.fault, at: next) }
        if fault == .truncate {
            // Once, late: it may halt the cluster (rightly), which ends what else a run shows.
            guard truncatedAt == nil, now >= settings.faulty.nanosecondsValue * 3 / 4 else { return }
        }
        guard shells[index].alive, shells[index].pausedUntil <= now else { return }
        faults += 1
        let id = shells[index].id
        switch fault {
        case .pause:
            shells[index].pausedUntil = now + spell
            record("fault: \(id) paused for \(spell / 1_000_000) ms")
        case .crash:
            shells[index].alive = false
            shells[index].incarnation += 1
            record("fault: \(id) killed for \(spell / 1_000_000) ms")
            queue.schedule(.heal(index, .crash), at: now + spell)
        case .partition:
            shells[index].cutOffUntil = now + spell
            record("fault: \(id) cut off for \(spell / 1_000_000) ms")
        case .lostTail:
            let lost = UInt64.random(in: 1...3, using: &random)
            log.followers[index].shortEnd = log.end > lost ? log.end - lost : 0
            log.followers[index].shortUntil = now + spell
            record("fault: \(id)'s log server lost its tail after \(log.followers[index].shortEnd) for \(spell / 1_000_000) ms")
            queue.schedule(.heal(index, .lostTail), at: now + spell)
        case .diverge:
            log.followers[index].divergeNext = true
            record("fault: \(id)'s log server will hold another entry at the next position")
        case .race:
            log.unconditionalUntil = now + spell
            record("fault: the log ignores expected last positions for \(spell / 1_000_000) ms")
        case .truncate:
            let lost = min(log.end, UInt64.random(in: 1...3, using: &random))
            log.truncate(lost)
            truncatedAt = now
            record("fault: the log lost its last \(lost) entries (now ends at \(log.end))")
        }
    }

    mutating func heal(_ index: Int, _ fault: ClusterFault) {
        switch fault {
        case .crash:
            shells[index].alive = true
            record("\(shells[index].id) restarts from its store's head \(shells[index].store.head)")
            start(index)
        case .lostTail:
            record("\(shells[index].id)'s log server has caught up again")
            wakeReaders()
        case .pause, .partition, .diverge, .race, .truncate:
            break
        }
    }

    // MARK: The checks at the end

    /// After the quiet period: replicas agree, a majority goes on, acknowledged outcomes are
    /// kept, the quiet period answered a transaction, and the history checker is content.
    mutating func finalChecks() {
        // Agreement: a replica that applied another entry than a peer must have stopped (being
        // outvoted is not enough: it would go on applying a log that is not the chain). Not after
        // `truncate`: a replica that applied a lost entry and one that applied its successor at
        // that position cannot tell which is right; neither confirms (checked above and below).
        let applying = shells.indices.filter { shells[$0].broken == nil }
        for a in applying where truncatedAt == nil {
            for b in applying where b > a {
                let heads = zip(shells[a].store.heads, shells[b].store.heads)
                if let (x, y) = heads.first(where: { $0.0 != $0.1 }) {
                    return fail("\(shells[a].id) and \(shells[b].id) differ at position \(x.position) and neither stopped: \(x) and \(y)")
                }
            }
        }
        let going = applying.filter { !shells[$0].confirmations.isOutvoted }
        let ready = shells.indices.filter { status($0) == .ready }
        // A log that lost entries a majority applied halts the cluster: that is the right answer.
        if truncatedAt == nil {
            if ready.count < shells.count / 2 + 1 {
                return fail("after the quiet period only \(ready.map { shells[$0].id }) are ready (stopped: \(shells.filter { $0.broken != nil }.map(\.id)))")
            }
            if answeredInQuiet == 0 { return fail("no transaction was answered in the quiet period") }
        }
        for (txId, answer) in signed.sorted(by: { $0.key < $1.key }) {
            // A replica that confirmed past the answer's position has it: it was not lost.
            for index in going where shells[index].confirmations.confirmed >= answer.position {
                let kept = shells[index].store.outcomes[txId]
                if kept != answer.outcome {
                    return fail("\(shells[index].id) confirmed position \(shells[index].confirmations.confirmed) but holds \(kept?.kindName ?? "no outcome") for \(txId.hex.prefix(16)), signed \(answer.outcome.kindName) at position \(answer.position)")
                }
            }
            // Asked again, as a client would: the history must show the same answer.
            if let index = ready.first, let kept = shells[index].store.outcomes[txId] {
                history(.ok, .notarise(txId: txId, inputs: nil, outcome: Self.historyOutcome(kept)))
            }
        }
        let (_, violations) = HistoryChecker(allowUnfinished: true).check(History(events: history))
        if let first = violations.first { fail("history: \(first)") }
    }
}
