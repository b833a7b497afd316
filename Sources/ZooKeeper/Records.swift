import NIOCore

/// ZooKeeper request op codes (`ZooDefs.OpCode`).
enum OpCode: Int32, Sendable {
    case notification = 0
    case create = 1
    case delete = 2
    case exists = 3
    case getData = 4
    case setData = 5
    case getACL = 6
    case setACL = 7
    case getChildren = 8
    case sync = 9
    case ping = 11
    case getChildren2 = 12
    case check = 13
    case multi = 14
    case create2 = 15
    case createContainer = 19
    case auth = 100
    case setWatches = 101
    case closeSession = -11
    case error = -1
}

/// Reserved xids of requests and replies that are not matched by sequence number.
enum SpecialXid {
    static let notification: Int32 = -1
    static let ping: Int32 = -2
    static let auth: Int32 = -4
    static let setWatches: Int32 = -8
}

/// The metadata of a znode (`org.apache.zookeeper.data.Stat`).
public struct Stat: Sendable, Hashable {
    /// The zxid of the change that created the node.
    public var czxid: Int64
    /// The zxid of the change that last modified the node's data.
    public var mzxid: Int64
    /// Creation time, milliseconds since the epoch (server clock).
    public var ctime: Int64
    /// Last modification time, milliseconds since the epoch (server clock).
    public var mtime: Int64
    /// Number of changes to the data; the version `setData`/`delete`/`check` compare with.
    public var version: Int32
    /// Number of changes to the children.
    public var cversion: Int32
    /// Number of changes to the ACL.
    public var aversion: Int32
    /// The owning session of an ephemeral node, 0 otherwise.
    public var ephemeralOwner: Int64
    public var dataLength: Int32
    public var numChildren: Int32
    /// The zxid of the change that last modified the children.
    public var pzxid: Int64

    public init(czxid: Int64 = 0, mzxid: Int64 = 0, ctime: Int64 = 0, mtime: Int64 = 0, version: Int32 = 0,
                cversion: Int32 = 0, aversion: Int32 = 0, ephemeralOwner: Int64 = 0, dataLength: Int32 = 0,
                numChildren: Int32 = 0, pzxid: Int64 = 0) {
        self.czxid = czxid; self.mzxid = mzxid; self.ctime = ctime; self.mtime = mtime
        self.version = version; self.cversion = cversion; self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner; self.dataLength = dataLength
        self.numChildren = numChildren; self.pzxid = pzxid
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteLong(czxid); buffer.writeJuteLong(mzxid)
        buffer.writeJuteLong(ctime); buffer.writeJuteLong(mtime)
        buffer.writeJuteInt(version); buffer.writeJuteInt(cversion); buffer.writeJuteInt(aversion)
        buffer.writeJuteLong(ephemeralOwner)
        buffer.writeJuteInt(dataLength); buffer.writeJuteInt(numChildren)
        buffer.writeJuteLong(pzxid)
    }

    init(from buffer: inout ByteBuffer) throws {
        czxid = try buffer.readJuteLong(); mzxid = try buffer.readJuteLong()
        ctime = try buffer.readJuteLong(); mtime = try buffer.readJuteLong()
        version = try buffer.readJuteInt(); cversion = try buffer.readJuteInt(); aversion = try buffer.readJuteInt()
        ephemeralOwner = try buffer.readJuteLong()
        dataLength = try buffer.readJuteInt(); numChildren = try buffer.readJuteInt()
        pzxid = try buffer.readJuteLong()
    }
}

/// An identity an ACL entry grants permissions to: `scheme:id`.
public struct Id: Sendable, Hashable {
    public var scheme: String
    public var id: String
    public init(scheme: String, id: String) { self.scheme = scheme; self.id = id }

    /// `world:anyone`, everybody.
    public static let anyone = Id(scheme: "world", id: "anyone")
    /// `auth:`, every identity the creating session has authenticated as.
    public static let authenticated = Id(scheme: "auth", id: "")

    /// The `digest` identity of `user` with `password`: `user:base64(sha1("user:password"))`,
    /// as ZooKeeper's `DigestAuthenticationProvider` computes it.
    public static func digest(user: String, password: String) -> Id {
        let hash = SHA1.hash(Array("\(user):\(password)".utf8))
        return Id(scheme: "digest", id: "\(user):\(Base64.encode(hash))")
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteString(scheme)
        buffer.writeJuteString(id)
    }

    init(from buffer: inout ByteBuffer) throws {
        scheme = try buffer.readJuteString() ?? ""
        id = try buffer.readJuteString() ?? ""
    }
}

/// ACL permission bits (`ZooDefs.Perms`).
public struct Permissions: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1)
    public static let write = Permissions(rawValue: 2)
    public static let create = Permissions(rawValue: 4)
    public static let delete = Permissions(rawValue: 8)
    public static let admin = Permissions(rawValue: 16)
    public static let all: Permissions = [.read, .write, .create, .delete, .admin]
}

/// One ACL entry: permissions granted to an identity.
public struct ACL: Sendable, Hashable {
    public var permissions: Permissions
    public var id: Id
    public init(permissions: Permissions, id: Id) { self.permissions = permissions; self.id = id }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(permissions.rawValue)
        id.encode(into: &buffer)
    }

    init(from buffer: inout ByteBuffer) throws {
        permissions = Permissions(rawValue: try buffer.readJuteInt())
        id = try Id(from: &buffer)
    }
}

extension ACL: CustomStringConvertible {
    /// As zkCli.sh writes it: `scheme:id:perms`, e.g. `world:anyone:cdrwa`.
    public var description: String {
        let letters: [(Permissions, Character)] = [(.create, "c"), (.delete, "d"), (.read, "r"), (.write, "w"), (.admin, "a")]
        return "\(id.scheme):\(id.id):" + String(letters.filter { permissions.contains($0.0) }.map(\.1))
    }
}

extension Array where Element == ACL {
    /// `world:anyone` with every permission (`Ids.OPEN_ACL_UNSAFE`).
    public static var openUnsafe: [ACL] { [ACL(permissions: .all, id: .anyone)] }
    /// `world:anyone` may read (`Ids.READ_ACL_UNSAFE`).
    public static var readUnsafe: [ACL] { [ACL(permissions: .read, id: .anyone)] }
    /// Every permission for the identities the creating session authenticated as (`Ids.CREATOR_ALL_ACL`).
    public static var creatorAll: [ACL] { [ACL(permissions: .all, id: .authenticated)] }
}

/// How a node is created (`CreateMode`).
public enum CreateMode: Sendable, Hashable {
    case persistent
    case persistentSequential
    case ephemeral
    case ephemeralSequential
    /// A container node: the server deletes it some time after its last child goes.
    case container

    var flags: Int32 {
        switch self {
        case .persistent: 0
        case .ephemeral: 1
        case .persistentSequential: 2
        case .ephemeralSequential: 3
        case .container: 4
        }
    }
}

/// `ConnectRequest`, the first frame a client sends on a connection.
struct ConnectRequest: Hashable {
    var protocolVersion: Int32 = 0
    var lastZxidSeen: Int64
    var timeOut: Int32
    var sessionId: Int64
    var passwd: [UInt8]
    var readOnly: Bool

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(protocolVersion)
        buffer.writeJuteLong(lastZxidSeen)
        buffer.writeJuteInt(timeOut)
        buffer.writeJuteLong(sessionId)
        buffer.writeJuteBuffer(passwd)
        buffer.writeJuteBool(readOnly)
    }

    init(protocolVersion: Int32 = 0, lastZxidSeen: Int64, timeOut: Int32, sessionId: Int64, passwd: [UInt8], readOnly: Bool) {
        self.protocolVersion = protocolVersion; self.lastZxidSeen = lastZxidSeen; self.timeOut = timeOut
        self.sessionId = sessionId; self.passwd = passwd; self.readOnly = readOnly
    }

    init(from buffer: inout ByteBuffer) throws {
        protocolVersion = try buffer.readJuteInt()
        lastZxidSeen = try buffer.readJuteLong()
        timeOut = try buffer.readJuteInt()
        sessionId = try buffer.readJuteLong()
        passwd = try buffer.readJuteBuffer() ?? []
        readOnly = buffer.readableBytes > 0 ? try buffer.readJuteBool() : false
    }
}

/// `ConnectResponse`, the server's first frame. A `timeOut` of 0 means the session expired.
struct ConnectResponse: Hashable {
    var protocolVersion: Int32
    var timeOut: Int32
    var sessionId: Int64
    var passwd: [UInt8]
    var readOnly: Bool

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(protocolVersion)
        buffer.writeJuteInt(timeOut)
        buffer.writeJuteLong(sessionId)
        buffer.writeJuteBuffer(passwd)
        buffer.writeJuteBool(readOnly)
    }

    init(protocolVersion: Int32 = 0, timeOut: Int32, sessionId: Int64, passwd: [UInt8], readOnly: Bool = false) {
        self.protocolVersion = protocolVersion; self.timeOut = timeOut; self.sessionId = sessionId
        self.passwd = passwd; self.readOnly = readOnly
    }

    /// `readOnly` is optional on the wire: old servers do not send it.
    init(from buffer: inout ByteBuffer) throws {
        protocolVersion = try buffer.readJuteInt()
        timeOut = try buffer.readJuteInt()
        sessionId = try buffer.readJuteLong()
        passwd = try buffer.readJuteBuffer() ?? []
        readOnly = buffer.readableBytes > 0 ? try buffer.readJuteBool() : false
    }
}

/// `RequestHeader`, in front of every request after the handshake.
struct RequestHeader: Hashable {
    var xid: Int32
    var type: Int32

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(xid)
        buffer.writeJuteInt(type)
    }

    init(xid: Int32, type: Int32) { self.xid = xid; self.type = type }
    init(xid: Int32, op: OpCode) { self.init(xid: xid, type: op.rawValue) }

    init(from buffer: inout ByteBuffer) throws {
        xid = try buffer.readJuteInt()
        type = try buffer.readJuteInt()
    }
}

/// `ReplyHeader`, in front of every reply and notification after the handshake.
struct ReplyHeader: Hashable {
    var xid: Int32
    var zxid: Int64
    var err: Int32

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(xid)
        buffer.writeJuteLong(zxid)
        buffer.writeJuteInt(err)
    }

    init(xid: Int32, zxid: Int64, err: Int32) { self.xid = xid; self.zxid = zxid; self.err = err }

    init(from buffer: inout ByteBuffer) throws {
        xid = try buffer.readJuteInt()
        zxid = try buffer.readJuteLong()
        err = try buffer.readJuteInt()
    }
}

/// `MultiHeader`, in front of each operation of a multi request and each result of its reply.
struct MultiHeader: Hashable {
    var type: Int32
    var done: Bool
    var err: Int32

    static let end = MultiHeader(type: -1, done: true, err: -1)

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type)
        buffer.writeJuteBool(done)
        buffer.writeJuteInt(err)
    }

    init(type: Int32, done: Bool, err: Int32) { self.type = type; self.done = done; self.err = err }

    init(from buffer: inout ByteBuffer) throws {
        type = try buffer.readJuteInt()
        done = try buffer.readJuteBool()
        err = try buffer.readJuteInt()
    }
}

/// `WatcherEvent`, the body of a notification (xid -1).
struct WatcherEvent: Hashable {
    var type: Int32
    var state: Int32
    var path: String

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type)
        buffer.writeJuteInt(state)
        buffer.writeJuteString(path)
    }

    init(type: Int32, state: Int32, path: String) { self.type = type; self.state = state; self.path = path }

    init(from buffer: inout ByteBuffer) throws {
        type = try buffer.readJuteInt()
        state = try buffer.readJuteInt()
        path = try buffer.readJuteString() ?? ""
    }
}

/// `SetWatches`, sent after a reconnect to re-register the session's watches.
struct SetWatches: Hashable {
    var relativeZxid: Int64
    var dataWatches: [String]
    var existWatches: [String]
    var childWatches: [String]

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteLong(relativeZxid)
        buffer.writeJuteVector(dataWatches) { $0.writeJuteString($1) }
        buffer.writeJuteVector(existWatches) { $0.writeJuteString($1) }
        buffer.writeJuteVector(childWatches) { $0.writeJuteString($1) }
    }

    init(relativeZxid: Int64, dataWatches: [String], existWatches: [String], childWatches: [String]) {
        self.relativeZxid = relativeZxid; self.dataWatches = dataWatches
        self.existWatches = existWatches; self.childWatches = childWatches
    }

    init(from buffer: inout ByteBuffer) throws {
        relativeZxid = try buffer.readJuteLong()
        dataWatches = try buffer.readJuteVector { try $0.readJuteString() ?? "" } ?? []
        existWatches = try buffer.readJuteVector { try $0.readJuteString() ?? "" } ?? []
        childWatches = try buffer.readJuteVector { try $0.readJuteString() ?? "" } ?? []
    }
}

/// `AuthPacket` (xid -4, op 100).
struct AuthPacket: Hashable {
    var type: Int32 = 0
    var scheme: String
    var auth: [UInt8]

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type)
        buffer.writeJuteString(scheme)
        buffer.writeJuteBuffer(auth)
    }
}
