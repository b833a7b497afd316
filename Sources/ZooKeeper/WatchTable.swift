/// Identifies one caller's watch registration (allocated by the client).
typealias WatchID = UInt64

/// Which server-side watch list a registration lives in (as `SetWatches` names them).
enum WatchKind: Sendable, Hashable {
    /// Left by `getData`, or by `exists` on an existing node.
    case data
    /// Left by `exists` on a missing node.
    case exist
    /// Left by `getChildren`.
    case child
}

/// One-shot watch bookkeeping: which registrations a notification fires, and what to re-register.
struct WatchTable {
    private var data: [String: [WatchID]] = [:]
    private var exist: [String: [WatchID]] = [:]
    private var child: [String: [WatchID]] = [:]

    var isEmpty: Bool { data.isEmpty && exist.isEmpty && child.isEmpty }
    var count: Int { (data.values.map(\.count) + exist.values.map(\.count) + child.values.map(\.count)).reduce(0, +) }

    mutating func register(_ id: WatchID, kind: WatchKind, path: String) {
        switch kind {
        case .data: data[path, default: []].append(id)
        case .exist: exist[path, default: []].append(id)
        case .child: child[path, default: []].append(id)
        }
    }

    /// Removes and returns the registrations an event fires (ZooKeeper's `ZKWatchManager.materialize`).
    mutating func trigger(_ type: WatchEventType, path: String) -> [WatchID] {
        var fired: [WatchID] = []
        switch type {
        case .nodeCreated, .nodeDataChanged:
            fired += data.removeValue(forKey: path) ?? []
            fired += exist.removeValue(forKey: path) ?? []
        case .nodeDeleted:
            fired += data.removeValue(forKey: path) ?? []
            fired += exist.removeValue(forKey: path) ?? []
            fired += child.removeValue(forKey: path) ?? []
        case .nodeChildrenChanged:
            fired += child.removeValue(forKey: path) ?? []
        case .other:
            break
        }
        return fired
    }

    /// Removes and returns every registration (on expiry or close).
    mutating func removeAll() -> [WatchID] {
        let all = data.keys.sorted().flatMap { data[$0]! } + exist.keys.sorted().flatMap { exist[$0]! }
            + child.keys.sorted().flatMap { child[$0]! }
        data = [:]; exist = [:]; child = [:]
        return all
    }

    /// The paths to re-register after a reconnect, sorted, as SetWatches records of at most
    /// `maxBytes` of paths each (the server refuses frames over `jute.maxbuffer`).
    func setWatches(relativeZxid: Int64, maxBytes: Int = 128 * 1024) -> [SetWatches] {
        var batches: [SetWatches] = []
        var current = SetWatches(relativeZxid: relativeZxid, dataWatches: [], existWatches: [], childWatches: [])
        var size = 0
        func add(_ path: String, _ keyPath: WritableKeyPath<SetWatches, [String]>) {
            let cost = path.utf8.count + 4
            if size > 0 && size + cost > maxBytes {
                batches.append(current)
                current = SetWatches(relativeZxid: relativeZxid, dataWatches: [], existWatches: [], childWatches: [])
                size = 0
            }
            current[keyPath: keyPath].append(path)
            size += cost
        }
        for path in data.keys.sorted() { add(path, \.dataWatches) }
        for path in exist.keys.sorted() { add(path, \.existWatches) }
        for path in child.keys.sorted() { add(path, \.childWatches) }
        if size > 0 { batches.append(current) }
        return batches
    }
}
