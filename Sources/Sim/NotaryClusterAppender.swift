import Coordination
import HawserCore
import HawserWire
import Notary

/// The appenders of a `NotaryClusterWorld`, driven the way `LogAppender` drives `AppenderCore`
/// (one group at a time: route, resync, append, conflict, back-off), the forwards between the
/// replicas, and the log's side of an append.
extension NotaryClusterWorld {
    /// `Notary.notarise`: refused by an unhealthy replica, else a waiter and a group to append.
    mutating func notarise(_ index: Int, client: Int, call: Int, _ transaction: SimTransaction) {
        if let refusal = health(index).refusal {
            toClient(client, from: index, .clientAnswer(client, call: call, .failure(refusal)))
            return
        }
        let txId = transaction.request.txId
        shells[index].waiters[txId, default: []].append((client, call))
        enqueue(index, Group(requests: [transaction.request], forwarded: false, origins: [.clients([(client, call, txId)])],
                             start: now, retry: AppenderCore.Retry(timeout: settings.appendTimeout)))
    }

    mutating func enqueue(_ index: Int, _ group: Group) {
        shells[index].queue.append(group)
        if !shells[index].busy { startGroup(index) }
    }

    /// `LogAppender.takeGroup`: the next entry's worth of queued groups, all forwarded or all local.
    mutating func startGroup(_ index: Int) {
        var queued = shells[index].queue
        guard var group = queued.first else { return }
        var taken = 1
        while taken < queued.count, queued[taken].forwarded == group.forwarded,
              group.requests.count + queued[taken].requests.count <= settings.maxRequestsPerEntry {
            group.requests += queued[taken].requests
            group.origins += queued[taken].origins
            taken += 1
        }
        group.start = now
        queued.removeFirst(taken)
        shells[index].queue = [group] + queued
        shells[index].busy = true
        shells[index].token += 1
        queue.schedule(.turn(index, incarnation: shells[index].incarnation, token: shells[index].token), at: now)
    }

    /// One pass of `LogAppender.route` for the group in progress (or of `sequence`, while it
    /// waits for its replica to catch up).
    mutating func turn(_ index: Int) {
        guard let group = shells[index].queue.first else { return }
        if let catching = group.catchingUp {
            // `resync`: waiting until this replica has applied what the log held.
            let head = shells[index].store.head
            guard head.position >= catching.through else {
                if now >= catching.deadline { return retry(index, after: APIError(.timeout, "catching up with the log before appending")) }
                return later(index, 2_000_000)
            }
            let confirmed = settings.mutation == .unconfirmedTail ? head.position : shells[index].confirmations.confirmed
            guard shells[index].appender.caughtUp(head, confirmed: confirmed) else {
                if now >= catching.deadline { return retry(index, after: APIError(.timeout, "a majority confirming the log's end before appending")) }
                return later(index, 2_000_000)
            }
            shells[index].queue[0].catchingUp = nil
            // After a conflict: an earlier attempt of this very entry may have landed.
            if let entry = group.entry, entry.landed(shells[index].confirmations.head(at: entry.position)) { return finish(index, nil) }
            return appendHere(index)
        }
        if let refusal = health(index).refusal { return finish(index, refusal) }
        let selfReady = status(index) == .ready
        let sequencer = shells[index].confirmations.sequencer(at: Moment(nanoseconds: now), selfReady: selfReady)
        switch shells[index].appender.target(forwarded: group.forwarded, sequencer: sequencer) {
        case .here:
            if shells[index].appender.tail == nil { return resync(index) }
            appendHere(index)
        case .forward(let target):
            let peer = shells.firstIndex { $0.id == target }!
            let (incarnation, token) = (shells[index].incarnation, shells[index].token)
            send(from: index, to: peer) { .forwardArrive(peer, from: index, incarnation: incarnation, token: token, group.requests) }
            queue.schedule(.callTimeout(index, incarnation: incarnation, token: token), at: now + min(remaining(group), 2_000_000_000))
        case .nobody:
            retry(index, after: nil)
        }
    }

    /// `LogAppender.sequence`: the entry at the tail, appended if the log ends there.
    mutating func appendHere(_ index: Int) {
        let tail = shells[index].appender.tail!
        let time = Instant(microsecondsSinceEpoch: 1_800_000_000_000_000 + now / 1_000)
        let requests = shells[index].queue[0].requests
        let entry = shells[index].appender.entry(requests, time: time)
        carried[entry.hash] = (requests, time, shells[index].id, tail.entryHash)
        shells[index].queue[0].entry = entry
        appendIds += 1
        // A try of its own: a late or duplicated answer to an earlier append is not this one's.
        shells[index].token += 1
        let (id, incarnation, token) = (appendIds, shells[index].incarnation, shells[index].token)
        toLog(.logAppend(index, incarnation: incarnation, token: token, entry, id: id))
        queue.schedule(.callTimeout(index, incarnation: incarnation, token: token), at: now + min(remaining(shells[index].queue[0]), 1_000_000_000))
    }

    func remaining(_ group: Group) -> Int64 {
        max(1, settings.appendTimeout.nanosecondsValue - (now - group.start))
    }

    mutating func later(_ index: Int, _ delay: Int64) {
        queue.schedule(.turn(index, incarnation: shells[index].incarnation, token: shells[index].token), at: now + delay)
    }

    /// `LogAppender.resync`: where the log ends, as its leader says (as `JetStreamLog` asks it).
    mutating func resync(_ index: Int) {
        let end = log.end
        switch AppenderCore.resync(logEnd: end, applied: shells[index].store.head) {
        case .diverged(let evidence):
            shells[index].broken = evidence
            record("\(shells[index].id) STOPS (log_diverged) before appending: \(evidence)")
            publish(index)
            finish(index, AppenderCore.diverged(evidence))
        case .catchUp(let through):
            shells[index].queue[0].catchingUp = (through, now + remaining(shells[index].queue[0]))
            turn(index)
        }
    }

    /// The log takes an append (also of a process that has died since).
    mutating func logAppend(_ index: Int, incarnation: Int, token: Int, _ entry: AppenderCore.Entry, id: UInt64) {
        let unconditional = settings.mutation == .unconditionalAppend
        let result = log.append(entry.payload, after: entry.after, id: id, now: now, unconditional: unconditional)
        if case .at(let position) = result, position == log.end {
            record("log: \(shells[index].id)'s entry \(entry.hash.hex.prefix(8)) at \(position) (claims \(entry.position))")
            if log.followers[unlucky].divergeNext { divergeFollower(at: position, of: entry) }
            wakeReaders()
        }
        toLog(.logAck(index, incarnation: incarnation, token: token, result))
    }

    /// The unlucky replica's server holds another entry at `position`: the same place in the
    /// chain, sequencer and time, but first a conflicting spend of the inputs of a request that
    /// a client asked the unlucky replica for (so that it decides that request otherwise). Waits
    /// for such an entry.
    mutating func divergeFollower(at position: UInt64, of entry: AppenderCore.Entry) {
        guard let carried = carried[entry.hash],
              let victim = carried.requests.first(where: { shells[unlucky].waiters[$0.txId] != nil }) else { return }
        log.followers[unlucky].divergeNext = false
        let rival = NotarisationRequest(txId: SecureHash.sha256(Array("rival at \(position) of seed \(seed)".utf8)),
                                        inputs: victim.inputs, requester: requester, signature: [])
        var ghost = AppenderCore(me: carried.sequencer, codec: codec)
        _ = ghost.caughtUp(ChainHead(position: entry.after, entryHash: carried.previous, stateHash: .zero), confirmed: entry.after)
        log.followers[unlucky].other[position] = ghost.entry([rival] + carried.requests, time: carried.time).payload
        record("fault: r\(unlucky)'s log server holds another entry at \(position), spending \(victim.txId.hex.prefix(8))'s inputs first")
    }

    mutating func logAck(_ index: Int, _ appended: SimNotaryLog.Appended) {
        guard let entry = shells[index].queue.first?.entry else { return }
        switch appended {
        case .at(let position) where position == entry.position || settings.mutation == .unconditionalAppend:
            shells[index].appender.appended(entry)
            finish(index, nil)
        case .at, .conflict:
            // A conflict, or (the adapter's rule) an entry stored elsewhere than it expected.
            record("\(shells[index].id): append conflict at \(entry.position)")
            resync(index)
        }
    }

    mutating func forwardReply(_ index: Int, _ refusal: APIError?) {
        guard let refusal else { return finish(index, nil) }
        retry(index, after: refusal)
    }

    /// A try failed (`error`) or found nobody to append (nil): give up, or try again after the back-off.
    mutating func retry(_ index: Int, after error: APIError?) {
        guard !shells[index].queue.isEmpty else { return }
        if let error {
            if let fatal = AppenderCore.fatal(error) { return finish(index, fatal) }
            shells[index].appender.forget()
        }
        shells[index].queue[0].catchingUp = nil
        shells[index].queue[0].entry = nil
        shells[index].token += 1
        switch shells[index].queue[0].retry.next(after: error, elapsed: .nanoseconds(now - shells[index].queue[0].start)) {
        case .wait(let backoff): later(index, backoff.nanosecondsValue)
        case .giveUp(let failure): finish(index, failure)
        }
    }

    /// The group in progress is appended (`error` nil) or failed: tell who waits, take the next.
    mutating func finish(_ index: Int, _ error: APIError?) {
        guard !shells[index].queue.isEmpty else { return }
        let group = shells[index].queue.removeFirst()
        shells[index].busy = false
        shells[index].token += 1
        for origin in group.origins {
            switch origin {
            case .clients(let calls):
                for (client, call, txId) in calls {
                    if let error {
                        shells[index].waiters[txId]?.removeAll { $0 == (client, call) }
                        toClient(client, from: index, .clientAnswer(client, call: call, .failure(error)))
                    } else {
                        queue.schedule(.answerTimeout(index, incarnation: shells[index].incarnation, client: client, call: call, txId: txId),
                                       at: now + settings.requestTimeout.nanosecondsValue)
                    }
                }
            case .forward(let from, let incarnation, let token):
                send(from: index, to: from) { .forwardReply(from, incarnation: incarnation, token: token, error) }
            }
        }
        if !shells[index].queue.isEmpty { startGroup(index) }
    }

    mutating func wakeReaders() {
        for index in shells.indices where shells[index].alive && !shells[index].reading && shells[index].broken == nil {
            shells[index].reading = true
            queue.schedule(.read(index, incarnation: shells[index].incarnation), at: now + Int64.random(in: 200_000...3_000_000, using: &random))
        }
    }

    // MARK: The network

    /// A message between two replicas: lost when either is cut off, else like any message.
    mutating func send(from: Int, to: Int, _ make: () -> Event) {
        guard shells[from].cutOffUntil <= now, shells[to].cutOffUntil <= now else { return }
        deliver(make())
    }

    mutating func toClient(_ client: Int, from index: Int, _ event: Event) {
        guard shells[index].cutOffUntil <= now else { return }
        deliver(event)
    }

    mutating func toLog(_ event: Event) { deliver(event) }

    /// Lost, slow (half to twice the request time-out), duplicated, or on time (0.2-20 ms), at
    /// random until the quiet period; random delays reorder messages.
    mutating func deliver(_ event: Event) {
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.loss { return }
        queue.schedule(event, at: now + delay())
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.duplicate { queue.schedule(event, at: now + delay()) }
    }

    mutating func delay() -> Int64 {
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.slow {
            return Int64(Double(settings.requestTimeout.nanosecondsValue) * Double.random(in: 0.5...2, using: &random))
        }
        return Int64.random(in: 200_000...20_000_000, using: &random)
    }
}
