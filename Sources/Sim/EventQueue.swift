/// A simulation's pending events in true-time order (nanoseconds). Events due at the same time
/// come out in the order they were scheduled, so a run depends on its seed alone.
struct EventQueue<Event> {
    private struct Entry {
        var at: Int64
        var order: UInt64
        var event: Event
        func precedes(_ other: Entry) -> Bool { (at, order) < (other.at, other.order) }
    }

    private var heap: [Entry] = []
    private var scheduled: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }

    mutating func schedule(_ event: Event, at: Int64) {
        heap.append(Entry(at: at, order: scheduled, event: event))
        scheduled += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest event and its time.
    mutating func pop() -> (at: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = parent * 2 + 1, right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (first.at, first.event)
    }
}

/// A simulated process as the event loop sees it: running or dead, which start it is in, and
/// until when it is paused.
protocol SimProcess {
    var alive: Bool { get }
    var incarnation: Int { get }
    var pausedUntil: Int64 { get }
}

extension EventQueue {
    /// Whether `event` is for `process` as it runs now (`incarnation`, when given, must be its
    /// current one): a paused process gets the event once resumed (put back, in order), a dead
    /// or restarted one never.
    mutating func deliverable(_ event: Event, to process: some SimProcess, incarnation: Int? = nil, now: Int64) -> Bool {
        guard process.alive, incarnation == nil || incarnation == process.incarnation else { return false }
        if process.pausedUntil > now {
            schedule(event, at: process.pausedUntil)
            return false
        }
        return true
    }
}
