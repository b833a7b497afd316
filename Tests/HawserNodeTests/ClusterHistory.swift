import Foundation
import HawserCore
import Sim
import Synchronization

/// Every answer clients of a cluster were given, by transaction id (the last one), and all of them
/// in order as a history (docs/history.md) for `HistoryChecker`.
final class ClusterHistory: Sendable {
    struct Answer: Sendable {
        var inputs: [StateRef]
        var outcome: NotarisationOutcome
    }
    private struct State {
        var answers: [SecureHash: Answer] = [:]
        var answered = 0
        var errors: [String] = []
        /// Every answer in the order recorded, in the form of docs/history.md.
        var lines: [String] = []
        var marks: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    func record(_ request: NotarisationRequest, _ outcome: NotarisationOutcome) {
        let due = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.answers[request.txId] = Answer(inputs: request.inputs, outcome: outcome)
            s.lines += Self.lines(request, outcome)
            s.answered += 1
            let answered = s.answered
            let due = s.marks.filter { $0.count <= answered }.map(\.continuation)
            s.marks.removeAll { $0.count <= answered }
            return due
        }
        for continuation in due { continuation.resume() }
    }

    func recordError(_ error: any Error) { state.withLock { $0.errors.append("\(error)") } }

    /// The history as JSON lines (docs/history.md): an invoke and an ok for every answer.
    var jsonLines: String { state.withLock { $0.lines.joined(separator: "\n") } }

    /// What `hawser check history` finds in it.
    func violations() throws -> [HistoryChecker.Violation] {
        try HistoryChecker().check(History(jsonLines: jsonLines)).violations
    }

    /// The invoke and the answer, in the one form of `HistoryEvent`.
    static func lines(_ request: NotarisationRequest, _ outcome: NotarisationOutcome) -> [String] {
        [HistoryEvent.notariseInvoke(txId: request.txId, inputs: request.inputs).line(),
         HistoryEvent.notariseOk(txId: request.txId, outcome: outcome).line()]
    }

    /// Answers given so far (retries included).
    var answered: Int { state.withLock { $0.answered } }
    var answers: [SecureHash: Answer] { state.withLock { $0.answers } }
    var errors: [String] { state.withLock { $0.errors } }

    /// Waits until `more` answers beyond the current count have been recorded; false if `limit` passed first.
    func awaitAnswers(_ more: Int, within limit: Duration) async -> Bool {
        let target = answered + more
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { s -> Bool in
                        if s.answered >= target { return true }
                        s.marks.append((target, continuation))
                        return false
                    }
                    if now { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next()!
            if !first { releaseAll() }
            group.cancelAll()
            await group.waitForAll()
            return first
        }
    }

    /// Ends every pending wait (the timer of `awaitAnswers` fired).
    private func releaseAll() {
        let all = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.marks = [] }
            return s.marks.map(\.continuation)
        }
        for continuation in all { continuation.resume() }
    }
}
