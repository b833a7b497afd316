import ZooKeeper

/// ZooKeeper in memory, as far as the election uses it: a tree of nodes with versions and the
/// zxids of the changes that made them, ephemeral nodes owned by sessions, sequential names,
/// atomic multis, one-shot exists watches, and sessions that expire when nothing was heard from
/// them for their timeout. One request is applied at a time, at the moment it reaches the
/// server; every change takes the next zxid (a multi one zxid for all of it), as in ZooKeeper.
///
/// It answers with the client library's types (`Stat`, `ZooKeeperError`), so a simulated
/// candidate sees what a real one would.
struct SimZooKeeper {
    struct Node {
        var data: [UInt8]
        var stat: Stat
        var children: Set<String> = []
    }

    struct Session {
        var timeoutNs: Int64
        var lastHeardNs: Int64
    }

    /// A watch that fired: for `session`, on `path`.
    struct Fired: Hashable {
        var session: Int64
        var path: String
    }

    private(set) var zxid: Int64 = 0
    private(set) var nodes: [String: Node] = ["/": Node(data: [], stat: SimZooKeeper.stat(zxid: 0, owner: 0))]
    private(set) var sessions: [Int64: Session] = [:]
    private var nextSession: Int64 = 0x1000
    /// Armed exists watches: path to the sessions waiting on it.
    private var watches: [String: Set<Int64>] = [:]
    /// Watches fired by the requests applied since the world last took them.
    private(set) var fired: [Fired] = []

    // MARK: Sessions

    mutating func openSession(timeoutNs: Int64, nowNs: Int64) -> Int64 {
        nextSession += 1
        sessions[nextSession] = Session(timeoutNs: timeoutNs, lastHeardNs: nowNs)
        return nextSession
    }

    /// The session's client was heard from (a request or a ping); false if the session is gone.
    mutating func heard(_ session: Int64, nowNs: Int64) -> Bool {
        guard sessions[session] != nil else { return false }
        sessions[session]?.lastHeardNs = nowNs
        return true
    }

    /// Ends every session not heard from within its timeout, as the leader's session tracker
    /// does; returns them.
    mutating func expireIdle(nowNs: Int64) -> [Int64] {
        let idle = sessions.filter { nowNs - $0.value.lastHeardNs >= $0.value.timeoutNs }.keys.sorted()
        for session in idle { end(session) }
        return idle
    }

    /// Ends a session (closed by its client, or expired): its ephemeral nodes go, in one change.
    mutating func end(_ session: Int64) {
        guard sessions.removeValue(forKey: session) != nil else { return }
        let owned = nodes.filter { $0.value.stat.ephemeralOwner == session }.keys.sorted()
        guard !owned.isEmpty else { return }
        zxid += 1
        for path in owned { remove(path) }
        for path in watches.keys { watches[path]?.remove(session) }
    }

    // MARK: Requests (each applied for `session`, which must be alive)

    mutating func create(_ path: String, data: [UInt8], ephemeral: Bool, sequential: Bool, session: Int64) throws(ZooKeeperError) -> String {
        try check(session)
        var copy = self
        let created = try copy.applyCreate(path, data: data, owner: ephemeral ? session : 0, sequential: sequential, zxid: zxid + 1)
        self = copy
        zxid += 1
        return created
    }

    mutating func delete(_ path: String, version: Int32 = -1, session: Int64) throws(ZooKeeperError) {
        try check(session)
        var copy = self
        try copy.applyDelete(path, version: version)
        self = copy
        zxid += 1
    }

    mutating func setData(_ path: String, data: [UInt8], version: Int32 = -1, session: Int64) throws(ZooKeeperError) -> Stat {
        try check(session)
        var copy = self
        let stat = try copy.applySetData(path, data: data, version: version, zxid: zxid + 1)
        self = copy
        zxid += 1
        return stat
    }

    func exists(_ path: String, session: Int64) throws(ZooKeeperError) -> Stat? {
        try check(session)
        return nodes[path]?.stat
    }

    /// `exists` that also arms a one-shot watch on `path`: it fires when the node is created,
    /// deleted or its data changes.
    mutating func existsAndWatch(_ path: String, session: Int64) throws(ZooKeeperError) -> Stat? {
        try check(session)
        watches[path, default: []].insert(session)
        return nodes[path]?.stat
    }

    func getData(_ path: String, session: Int64) throws(ZooKeeperError) -> (data: [UInt8], stat: Stat) {
        try check(session)
        guard let node = nodes[path] else { throw .noNode }
        return (node.data, node.stat)
    }

    func getChildren(_ path: String, session: Int64) throws(ZooKeeperError) -> [String] {
        try check(session)
        guard let node = nodes[path] else { throw .noNode }
        return node.children.sorted()
    }

    /// All of `operations` in one change, or none of them (`multiFailed` names the first that failed).
    mutating func multi(_ operations: [ZooKeeperOperation], session: Int64) throws(ZooKeeperError) -> [MultiResult] {
        try check(session)
        var copy = self
        var results: [MultiResult] = []
        for (index, operation) in operations.enumerated() {
            do {
                results.append(try copy.apply(operation, session: session, zxid: zxid + 1))
            } catch {
                throw .multiFailed(index: index, error: error, results: [])
            }
        }
        self = copy
        zxid += 1
        return results
    }

    /// Takes the watches fired since the last call.
    mutating func takeFired() -> [Fired] {
        defer { fired = [] }
        return fired
    }

    // MARK: Internals

    private func check(_ session: Int64) throws(ZooKeeperError) {
        guard sessions[session] != nil else { throw .sessionExpired }
    }

    private mutating func apply(_ operation: ZooKeeperOperation, session: Int64, zxid: Int64) throws(ZooKeeperError) -> MultiResult {
        switch operation {
        case .create(let path, let data, _, let mode):
            let ephemeral = mode == .ephemeral || mode == .ephemeralSequential
            let sequential = mode == .persistentSequential || mode == .ephemeralSequential
            let created = try applyCreate(path, data: data, owner: ephemeral ? session : 0, sequential: sequential, zxid: zxid)
            return .created(path: created, stat: nodes[created]?.stat)
        case .delete(let path, let version):
            try applyDelete(path, version: version)
            return .deleted
        case .setData(let path, let data, let version):
            return .setData(try applySetData(path, data: data, version: version, zxid: zxid))
        case .check(let path, let version):
            guard let node = nodes[path] else { throw .noNode }
            guard version == -1 || version == node.stat.version else { throw .badVersion }
            return .checked
        }
    }

    private mutating func applyCreate(_ path: String, data: [UInt8], owner: Int64, sequential: Bool, zxid: Int64) throws(ZooKeeperError) -> String {
        let parent = Self.parent(of: path)
        guard var parentNode = nodes[parent] else { throw .noNode }
        guard parentNode.stat.ephemeralOwner == 0 else { throw .noChildrenForEphemerals }
        // ZooKeeper's sequence number is the parent's child-change count, ten digits.
        let sequence = String(parentNode.stat.cversion)
        let name = sequential ? path + String(repeating: "0", count: max(0, 10 - sequence.count)) + sequence : path
        guard nodes[name] == nil else { throw .nodeExists }
        nodes[name] = Node(data: data, stat: Self.stat(zxid: zxid, owner: owner))
        parentNode.children.insert(Self.leaf(of: name))
        parentNode.stat.cversion += 1
        nodes[parent] = parentNode
        fire(name)
        return name
    }

    private mutating func applyDelete(_ path: String, version: Int32) throws(ZooKeeperError) {
        guard let node = nodes[path] else { throw .noNode }
        guard version == -1 || version == node.stat.version else { throw .badVersion }
        guard node.children.isEmpty else { throw .notEmpty }
        remove(path)
    }

    private mutating func applySetData(_ path: String, data: [UInt8], version: Int32, zxid: Int64) throws(ZooKeeperError) -> Stat {
        guard var node = nodes[path] else { throw .noNode }
        guard version == -1 || version == node.stat.version else { throw .badVersion }
        node.data = data
        node.stat.mzxid = zxid
        node.stat.version += 1
        nodes[path] = node
        fire(path)
        return node.stat
    }

    private mutating func remove(_ path: String) {
        nodes[path] = nil
        let parent = Self.parent(of: path)
        nodes[parent]?.children.remove(Self.leaf(of: path))
        nodes[parent]?.stat.cversion += 1
        fire(path)
    }

    private mutating func fire(_ path: String) {
        guard let sessions = watches.removeValue(forKey: path) else { return }
        fired += sessions.sorted().map { Fired(session: $0, path: path) }
    }

    private static func stat(zxid: Int64, owner: Int64) -> Stat {
        Stat(czxid: zxid, mzxid: zxid, ephemeralOwner: owner, pzxid: zxid)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func leaf(of path: String) -> String {
        String(path[path.index(after: path.lastIndex(of: "/")!)...])
    }
}
