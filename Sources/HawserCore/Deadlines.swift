import Synchronization

/// Runs actions at deadlines, with one sleeping task for all of them.
///
/// Every notarisation and every long poll has a time limit that almost never expires. Given a
/// `Task.sleep` of its own, each arms and cancels a dispatch timer, and each of those wakes the
/// dispatch timer thread: at 1,000 flows/s that cost a measurable share of the CPU. Here a new
/// deadline later than the one the sleeper waits for costs a lock and a heap insert; cancelling
/// costs a dictionary removal (the heap entry is dropped when it reaches the top of the heap).
public final class Deadlines: Sendable {
    /// The process's shared instance.
    public static let shared = Deadlines()

    public struct Handle: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct State {
        var due = MinHeap()
        var actions: [UInt64: @Sendable () -> Void] = [:]
        var nextId: UInt64 = 0
        /// The deadline the sleeper waits for, and which sleeper that is.
        var sleeperTarget: ContinuousClock.Instant?
        var sleeperGeneration: UInt64 = 0
        var sleeper: Task<Void, Never>?
    }
    private let state = Mutex(State())

    public init() {}

    deinit { state.withLock { $0.sleeper?.cancel() } }

    /// Runs `action` once `duration` has passed, unless cancelled before.
    @discardableResult
    public func schedule(after duration: Duration, _ action: @escaping @Sendable () -> Void) -> Handle {
        let deadline = ContinuousClock.now + duration
        return state.withLock { state in
            state.nextId += 1
            let id = state.nextId
            state.actions[id] = action
            state.due.insert(deadline, id)
            if state.sleeperTarget.map({ deadline < $0 }) ?? true { startSleeper(until: deadline, &state) }
            return Handle(id: id)
        }
    }

    /// The action will not run (unless it is running already).
    public func cancel(_ handle: Handle) {
        _ = state.withLock { $0.actions.removeValue(forKey: handle.id) }
    }

    /// How many actions wait to run.
    public var count: Int { state.withLock { $0.actions.count } }

    private func startSleeper(until target: ContinuousClock.Instant, _ state: inout State) {
        state.sleeper?.cancel()
        state.sleeperGeneration += 1
        state.sleeperTarget = target
        let generation = state.sleeperGeneration
        state.sleeper = Task { [weak self] in
            var target = target
            while true {
                if target > .now {
                    guard (try? await Task.sleep(until: target, clock: .continuous)) != nil else { return }
                } else {
                    await Task.yield()  // a purge in several turns lets other work run between them
                }
                guard let self else { return }
                let (actions, next) = self.takeDue(generation)
                for action in actions { action() }
                guard let next else { return }
                target = next
            }
        }
    }

    /// The actions due now, and when the sleeper of `generation` should wake next (nil: it ends).
    private func takeDue(_ generation: UInt64) -> ([@Sendable () -> Void], ContinuousClock.Instant?) {
        state.withLock { state in
            guard state.sleeperGeneration == generation else { return ([], nil) }
            let now = ContinuousClock.now
            var actions = [@Sendable () -> Void]()
            // Cancelled entries are dropped here too, so the next wake-up is for a live one. They
            // pile up (every answered call leaves one), so at most 512 go per turn of the lock:
            // `schedule` callers never wait behind a long purge.
            var popped = 0
            while popped < 512, let top = state.due.min, top.deadline <= now || state.actions[top.id] == nil {
                state.due.removeMin()
                popped += 1
                if let action = state.actions.removeValue(forKey: top.id) { actions.append(action) }
            }
            state.sleeperTarget = popped == 512 ? now : state.due.min?.deadline
            if state.sleeperTarget == nil { state.sleeper = nil }
            return (actions, state.sleeperTarget)
        }
    }
}

/// A binary min-heap of (deadline, id).
private struct MinHeap {
    private var items: [(deadline: ContinuousClock.Instant, id: UInt64)] = []

    var min: (deadline: ContinuousClock.Instant, id: UInt64)? { items.first }

    mutating func insert(_ deadline: ContinuousClock.Instant, _ id: UInt64) {
        items.append((deadline, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeMin() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
