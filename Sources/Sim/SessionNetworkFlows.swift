import Flows
import HawserCore
import Sessions

/// The node's flow engine and database as the simulation runs them: commits that take time and
/// may fail or lose their answer, and each flow's life fed through the real `FlowTransition`
/// the way `FlowEngine.execute` feeds it.
extension SessionNetworkWorld {
    // MARK: Commits

    mutating func commit(_ index: Int, _ writes: [SimWrite], then: AfterCommit) {
        commitsMade += 1
        let fault = nodes[index].commitFault
        nodes[index].commitFault = nil
        nodes[index].commits[commitsMade] = Commit(writes: writes, then: then, fault: fault)
        queue.schedule(.commitDone(index, incarnation: nodes[index].incarnation, commit: commitsMade), at: now + commitTime())
        if let downtime = nodes[index].crashAtFlowCommit, writes.contains(where: \.isFlows) {
            nodes[index].crashAtFlowCommit = nil
            queue.schedule(.crash(index, incarnation: nodes[index].incarnation, restartAt: now + downtime), at: now + 1)
        }
    }

    mutating func commitDone(_ index: Int, _ id: Int) {
        guard let commit = nodes[index].commits.removeValue(forKey: id) else { return }
        var failure: (any Error)?
        if commit.fault == .failedCommit {
            failure = TransientFlowError("the flow store could not commit")
        } else if let refusal = apply(index, commit.writes) {
            failure = TransientFlowError("the flow store refused a write: \(refusal)")
        } else if commit.fault == .lostAnswer {
            failure = TransientFlowError("the flow store's answer was lost")
        }
        if let failure { record("n\(index) commit \(id): \(failure)") }
        after(index, commit.then, failure)
    }

    /// Makes `writes` durable; wakes the link for new outbox rows and flows for inbox rows.
    /// Returns why the store refused them, if it did.
    @discardableResult
    mutating func apply(_ index: Int, _ writes: [SimWrite]) -> String? {
        switch nodes[index].store.apply(writes, at: instant) {
        case .refused(let why):
            return why
        case .made(let broken):
            for problem in broken { fail("n\(index): \(problem)") }
        }
        guard nodes[index].alive else { return nil }  // a commit made as its process died
        for case .inbox(let message) in writes { wake(index, message.key) }
        if writes.contains(where: \.addsOutbox) { linkTurn(index) }
        return nil
    }

    mutating func after(_ index: Int, _ then: AfterCommit, _ failure: (any Error)?) {
        switch then {
        case .started(let number):
            let requestId = "pay-\(number)"
            guard failure == nil, let id = nodes[index].store.flow(requestId: requestId) else {
                history(.info, .start(clientRequestId: requestId, flowId: nil))
                queue.schedule(.pay(index, number: number), at: now + 100_000_000)  // the client asks again
                return
            }
            history(.ok, .start(clientRequestId: requestId, flowId: id.rawValue))
            payments[number].flow = id
            launch(index, id)
        case .body(let id, let token):
            guard var flow = nodes[index].flows[id], flow.token == token, var run = flow.run else { return }
            if let failure {
                flow.next = .failed(failure, startWritten: true)
                nodes[index].flows[id] = flow
                perform(index, id)
                return
            }
            run.pending = []
            flow.run = run
            nodes[index].flows[id] = flow
            step(index, id)
        case .action(let id, let token, let isEnd):
            guard nodes[index].flows[id]?.token == token else { return }
            if isEnd { nodes[index].flows[id]?.next = failure.map { .failed($0, startWritten: true) } ?? .committed }
            perform(index, id)
        case .accepting(let from, let incarnation, let attempt, let message, let stored):
            accepting(index, from: from, incarnation: incarnation, attempt: attempt, message, stored: stored, failure: failure)
        case .acknowledged(let peer):
            guard nodes[index].delivering[peer]?.attempt == 0 else { return }
            nodes[index].delivering[peer] = nil
            if failure == nil { nodes[index].backoff.delivered(peer) }
            linkTurn(index)
        case .none:
            break
        }
    }

    // MARK: Flows

    /// Runs a stored, unfinished flow unless it runs already (`FlowEngine.launch`).
    mutating func launch(_ index: Int, _ id: FlowID) {
        guard nodes[index].flows[id] == nil, let stored = nodes[index].store.flows[id], !stored.state.status.isTerminal else { return }
        nodes[index].flows[id] = LiveFlow(kind: stored.kind, machine: FlowTransition.State(attempts: stored.state.attempts))
        feed(index, id, .begin(journal: stored.journal))
    }

    mutating func feed(_ index: Int, _ id: FlowID, _ event: FlowTransition.Event) {
        guard var flow = nodes[index].flows[id] else { return }
        let (machine, actions) = FlowTransition.transition(event, flow.machine, now: instant, policy: settings.hospital)
        flow.machine = machine
        flow.actions += actions
        nodes[index].flows[id] = flow
        perform(index, id)
    }

    /// Performs the flow's actions in order until one must wait; then feeds the machine the event
    /// they produced (`FlowEngine.execute`).
    mutating func perform(_ index: Int, _ id: FlowID) {
        while var flow = nodes[index].flows[id], !flow.actions.isEmpty {
            let action = flow.actions.removeFirst()
            nodes[index].flows[id] = flow
            switch action {
            case .readDurable:
                let durable = nodes[index].store.durable(id)
                nodes[index].flows[id]?.next = .read(durable)
            case .run(let journal, _, _):
                nodes[index].flows[id]?.run = SimFlowRun(journal: journal)
                step(index, id)
                return
            case .commitEnd(let final):
                let run = flow.run ?? SimFlowRun(journal: [])
                commit(index, run.pending + [.state(id, final, SimFlowContext.farewell(run.cores, final))],
                       then: .action(id, token: flow.token, isEnd: true))
                return
            case .keepRecorded:
                if let pending = flow.run?.pending, !pending.isEmpty {
                    commit(index, pending, then: .action(id, token: flow.token, isEnd: false))
                    return
                }
            case .record(let state):
                commit(index, [.state(id, state, [])], then: .action(id, token: flow.token, isEnd: false))
                return
            case .recordIfUnfinished(let state):
                if !(nodes[index].store.flows[id]?.state.status.isTerminal ?? true) {
                    commit(index, [.state(id, state, [])], then: .action(id, token: flow.token, isEnd: false))
                    return
                }
            case .recordEnd(let state, let ifUnfinished):
                if ifUnfinished, nodes[index].store.flows[id]?.state.status.isTerminal ?? true {
                    nodes[index].flows[id]?.next = .committed
                } else {
                    commit(index, [.state(id, state, SimFlowContext.farewell(flow.run?.cores ?? [:], state))],
                           then: .action(id, token: flow.token, isEnd: true))
                    return
                }
            case .wait(let delay):
                flow.token += 1
                nodes[index].flows[id] = flow
                queue.schedule(.flowTimer(index, incarnation: nodes[index].incarnation, id, token: flow.token),
                               at: now + delay.nanosecondsValue)
                return
            case .end:
                record("n\(index) flow \(id) leaves the engine: \(nodes[index].store.flows[id]?.state.status.rawValue ?? "absent")")
                nodes[index].flows[id] = nil
                return
            case .failStart, .announce, .announceStored, .cancel:
                break
            }
        }
        guard let next = nodes[index].flows[id]?.next else { return }
        nodes[index].flows[id]?.next = nil
        feed(index, id, next)
    }

    /// Runs the flow's body from its start over what it has recorded, until it ends or must wait.
    mutating func step(_ index: Int, _ id: FlowID) {
        guard var flow = nodes[index].flows[id], let run = flow.run else { return }
        let inbox = nodes[index].store.inbox
        let context = SimFlowContext(flowId: id, party: nodes[index].party, run: run, inbox: { inbox[$0] },
                                     effectsApart: settings.mutation == .effectsApart)
        if case .receive(let session) = flow.kind { context.adopt(session) }
        let outcome = Result { try SimPaymentFlows.body(flow.kind, context) }
        flow.run = context.run
        if !context.apart.isEmpty { apply(index, [.apart(context.apart)]) }
        switch (outcome, context.need) {
        case (.failure(is SimFlowContext.Suspended), .commit(let writes)?):
            flow.token += 1
            nodes[index].flows[id] = flow
            commit(index, writes, then: .body(id, token: flow.token))
        case (.failure(is SimFlowContext.Suspended), .message(let key)?):
            flow.token += 1
            flow.waitingFor = key
            nodes[index].flows[id] = flow
            queue.schedule(.flowTimer(index, incarnation: nodes[index].incarnation, id, token: flow.token),
                           at: now + settings.sessionTimeout.nanosecondsValue)
        case (.success(let output), _):
            flow.next = .returned(output)
            nodes[index].flows[id] = flow
            perform(index, id)
        case (.failure(let error), _):
            record("n\(index) flow \(id) threw: \(error)")
            flow.next = .failed(error, startWritten: true)
            nodes[index].flows[id] = flow
            perform(index, id)
        }
    }

    /// A flow's wait is over: its receive's session timeout, or its hospital delay.
    mutating func flowTimer(_ index: Int, _ id: FlowID) {
        guard var flow = nodes[index].flows[id] else { return }
        if let key = flow.waitingFor {
            record("n\(index) flow \(id): no \(key) within the session timeout")
            flow.waitingFor = nil
            flow.run?.timedOut = key
            nodes[index].flows[id] = flow
            step(index, id)
        } else {
            feed(index, id, .timerFired)
        }
    }

    /// A message is in the inbox: the flow waiting for it goes on (`InboxWaiters`).
    mutating func wake(_ index: Int, _ key: SessionMessageKey) {
        for id in nodes[index].flows.keys.sorted() where nodes[index].flows[id]?.waitingFor == key {
            nodes[index].flows[id]?.waitingFor = nil
            nodes[index].flows[id]?.token += 1
            step(index, id)
        }
    }
}
