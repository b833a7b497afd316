import NIOCore

/// One operation of a `multi` transaction.
public enum ZooKeeperOperation: Sendable, Hashable {
    case create(path: String, data: [UInt8] = [], acl: [ACL] = .openUnsafe, mode: CreateMode = .persistent)
    /// Delete; `version` -1 matches any version.
    case delete(path: String, version: Int32 = -1)
    /// Set data; `version` -1 matches any version.
    case setData(path: String, data: [UInt8], version: Int32 = -1)
    /// Fails the transaction unless the node's data version is `version`.
    case check(path: String, version: Int32)

    var path: String {
        switch self {
        case .create(let path, _, _, _), .delete(let path, _), .setData(let path, _, _), .check(let path, _): path
        }
    }
}

/// The result of one operation of a successful (or failed) `multi`.
public enum MultiResult: Sendable, Hashable {
    case created(path: String, stat: Stat?)
    case deleted
    case setData(Stat)
    case checked
    /// In a failed multi: the operation's error (`runtimeInconsistency` for those after the failing one,
    /// and no error code for those before it, which the server reports as code 0).
    case error(ZooKeeperError?)
}

/// A request the session sends with a sequence xid, and how its reply body is read.
enum Request: Sendable, Hashable {
    case create(path: String, data: [UInt8], acl: [ACL], mode: CreateMode)
    case delete(path: String, version: Int32)
    case exists(path: String, watch: Bool)
    case getData(path: String, watch: Bool)
    case setData(path: String, data: [UInt8], version: Int32)
    case getChildren(path: String, watch: Bool)
    case getACL(path: String)
    case setACL(path: String, acl: [ACL], version: Int32)
    case sync(path: String)
    case multi([ZooKeeperOperation])

    var opCode: OpCode {
        switch self {
        case .create(_, _, _, let mode): mode == .container ? .createContainer : .create2
        case .delete: .delete
        case .exists: .exists
        case .getData: .getData
        case .setData: .setData
        case .getChildren: .getChildren2
        case .getACL: .getACL
        case .setACL: .setACL
        case .sync: .sync
        case .multi: .multi
        }
    }

    /// Every path the request names (validated before sending).
    var paths: [String] {
        switch self {
        case .create(let path, _, _, _), .delete(let path, _), .exists(let path, _), .getData(let path, _),
             .setData(let path, _, _), .getChildren(let path, _), .getACL(let path), .setACL(let path, _, _), .sync(let path):
            [path]
        case .multi(let ops): ops.map(\.path)
        }
    }

    /// The watch the request leaves on the server when it succeeds, if it asked for one.
    var watchRegistration: (kind: WatchKind, path: String)? {
        switch self {
        case .exists(let path, true): (.data, path)  // becomes .exist when the node is missing
        case .getData(let path, true): (.data, path)
        case .getChildren(let path, true): (.child, path)
        default: nil
        }
    }

    func encodeBody(into buffer: inout ByteBuffer) {
        switch self {
        case .create(let path, let data, let acl, let mode):
            Self.encodeCreate(path: path, data: data, acl: acl, mode: mode, into: &buffer)
        case .delete(let path, let version):
            buffer.writeJuteString(path); buffer.writeJuteInt(version)
        case .exists(let path, let watch), .getData(let path, let watch), .getChildren(let path, let watch):
            buffer.writeJuteString(path); buffer.writeJuteBool(watch)
        case .setData(let path, let data, let version):
            buffer.writeJuteString(path); buffer.writeJuteBuffer(data); buffer.writeJuteInt(version)
        case .getACL(let path), .sync(let path):
            buffer.writeJuteString(path)
        case .setACL(let path, let acl, let version):
            buffer.writeJuteString(path)
            buffer.writeJuteVector(acl) { $1.encode(into: &$0) }
            buffer.writeJuteInt(version)
        case .multi(let ops):
            for op in ops {
                switch op {
                case .create(let path, let data, let acl, let mode):
                    let type: OpCode = mode == .container ? .createContainer : .create
                    MultiHeader(type: type.rawValue, done: false, err: -1).encode(into: &buffer)
                    Self.encodeCreate(path: path, data: data, acl: acl, mode: mode, into: &buffer)
                case .delete(let path, let version):
                    MultiHeader(type: OpCode.delete.rawValue, done: false, err: -1).encode(into: &buffer)
                    buffer.writeJuteString(path); buffer.writeJuteInt(version)
                case .setData(let path, let data, let version):
                    MultiHeader(type: OpCode.setData.rawValue, done: false, err: -1).encode(into: &buffer)
                    buffer.writeJuteString(path); buffer.writeJuteBuffer(data); buffer.writeJuteInt(version)
                case .check(let path, let version):
                    MultiHeader(type: OpCode.check.rawValue, done: false, err: -1).encode(into: &buffer)
                    buffer.writeJuteString(path); buffer.writeJuteInt(version)
                }
            }
            MultiHeader.end.encode(into: &buffer)
        }
    }

    private static func encodeCreate(path: String, data: [UInt8], acl: [ACL], mode: CreateMode, into buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteBuffer(data)
        buffer.writeJuteVector(acl) { $1.encode(into: &$0) }
        buffer.writeJuteInt(mode.flags)
    }

    /// Reads the reply body of a successful request (header `err` 0).
    func decodeResponse(from buffer: inout ByteBuffer) throws -> Response {
        switch self {
        case .create:
            let path = try buffer.readJuteString() ?? ""
            let stat = buffer.readableBytes > 0 ? try Stat(from: &buffer) : nil
            return .created(path: path, stat: stat)
        case .delete:
            return .none
        case .exists, .setData, .setACL:
            return .stat(try Stat(from: &buffer))
        case .getData:
            let data = try buffer.readJuteBuffer() ?? []
            return .data(data, try Stat(from: &buffer))
        case .getChildren:
            let children = try buffer.readJuteVector { try $0.readJuteString() ?? "" } ?? []
            return .children(children, try Stat(from: &buffer))
        case .getACL:
            let acl = try buffer.readJuteVector { try ACL(from: &$0) } ?? []
            return .acl(acl, try Stat(from: &buffer))
        case .sync:
            return .synced(try buffer.readJuteString() ?? "")
        case .multi:
            return .multi(try Self.decodeMultiResults(from: &buffer))
        }
    }

    static func decodeMultiResults(from buffer: inout ByteBuffer) throws -> [MultiResult] {
        var results: [MultiResult] = []
        while true {
            let header = try MultiHeader(from: &buffer)
            if header.done { break }
            switch header.type {
            case OpCode.create.rawValue:
                results.append(.created(path: try buffer.readJuteString() ?? "", stat: nil))
            case OpCode.create2.rawValue, OpCode.createContainer.rawValue:
                let path = try buffer.readJuteString() ?? ""
                results.append(.created(path: path, stat: try Stat(from: &buffer)))
            case OpCode.delete.rawValue:
                results.append(.deleted)
            case OpCode.setData.rawValue:
                results.append(.setData(try Stat(from: &buffer)))
            case OpCode.check.rawValue:
                results.append(.checked)
            case OpCode.error.rawValue:
                let err = try buffer.readJuteInt()
                results.append(.error(ZooKeeperError(code: err)))
            default:
                throw JuteDecodingError("unknown multi result type \(header.type)")
            }
        }
        return results
    }
}

/// A reply body, read according to the request it answers.
enum Response: Sendable, Hashable {
    case none
    case created(path: String, stat: Stat?)
    case stat(Stat)
    /// `exists` on a missing node (error NoNode turned into a value).
    case noStat
    case data([UInt8], Stat)
    case children([String], Stat)
    case acl([ACL], Stat)
    case synced(String)
    case multi([MultiResult])
}

/// Checks a node path as ZooKeeper's `PathUtils.validatePath` does (without the character rules).
func isValidPath(_ path: String, sequential: Bool = false) -> Bool {
    guard path.hasPrefix("/") else { return false }
    if path == "/" { return !sequential }
    if path.hasSuffix("/") && !sequential { return false }
    let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    for (index, component) in components.enumerated() {
        let isLast = index == components.count - 1
        if component.isEmpty && !(isLast && sequential) { return false }
        if component == "." || component == ".." { return false }
        if component.contains("\u{0}") { return false }
    }
    return true
}
