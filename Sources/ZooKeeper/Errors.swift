/// Errors of ZooKeeper operations: the server's `KeeperException.Code`s plus client-side conditions.
public indirect enum ZooKeeperError: Error, Sendable, Hashable {
    // Server error codes (KeeperException.Code).
    case systemError                 // -1
    case runtimeInconsistency        // -2
    case dataInconsistency           // -3
    /// The connection was lost before the answer arrived; the operation may or may not have been applied.
    case connectionLoss              // -4
    case marshallingError            // -5
    case unimplemented               // -6
    case operationTimeout            // -7
    case badArguments                // -8
    case unknownSession              // -12
    case newConfigNoQuorum           // -13
    case reconfigInProgress          // -14
    case apiError                    // -100
    case noNode                      // -101
    case noAuth                      // -102
    case badVersion                  // -103
    case noChildrenForEphemerals     // -108
    case nodeExists                  // -110
    case notEmpty                    // -111
    /// The session is gone; ephemeral nodes and watches are lost. Create a new client.
    case sessionExpired              // -112
    case invalidCallback             // -113
    case invalidACL                  // -114
    case authFailed                  // -115
    case sessionMoved                // -118
    case notReadOnly                 // -119
    case ephemeralOnLocalSession     // -120
    case noWatcher                   // -121
    case requestTimeout              // -122
    case reconfigDisabled            // -123
    case sessionClosedRequireSaslAuth // -124
    case quotaExceeded               // -125
    case throttled                   // -127
    /// A server code this client does not name.
    case unknown(code: Int32)

    // Client-side conditions.
    /// The client was closed.
    case closed
    /// The peer sent bytes this client cannot parse, or a frame over the size limit.
    case protocolError(String)
    /// A multi failed as a whole: the operation at `index` failed with `error`; nothing was applied.
    case multiFailed(index: Int, error: ZooKeeperError, results: [MultiResult])

    /// Maps a server error code; nil for 0 (OK).
    init?(code: Int32) {
        switch code {
        case 0: return nil
        case -1: self = .systemError
        case -2: self = .runtimeInconsistency
        case -3: self = .dataInconsistency
        case -4: self = .connectionLoss
        case -5: self = .marshallingError
        case -6: self = .unimplemented
        case -7: self = .operationTimeout
        case -8: self = .badArguments
        case -12: self = .unknownSession
        case -13: self = .newConfigNoQuorum
        case -14: self = .reconfigInProgress
        case -100: self = .apiError
        case -101: self = .noNode
        case -102: self = .noAuth
        case -103: self = .badVersion
        case -108: self = .noChildrenForEphemerals
        case -110: self = .nodeExists
        case -111: self = .notEmpty
        case -112: self = .sessionExpired
        case -113: self = .invalidCallback
        case -114: self = .invalidACL
        case -115: self = .authFailed
        case -118: self = .sessionMoved
        case -119: self = .notReadOnly
        case -120: self = .ephemeralOnLocalSession
        case -121: self = .noWatcher
        case -122: self = .requestTimeout
        case -123: self = .reconfigDisabled
        case -124: self = .sessionClosedRequireSaslAuth
        case -125: self = .quotaExceeded
        case -127: self = .throttled
        default: self = .unknown(code: code)
        }
    }

    /// The server error code, or nil for client-side conditions.
    public var code: Int32? {
        switch self {
        case .systemError: -1
        case .runtimeInconsistency: -2
        case .dataInconsistency: -3
        case .connectionLoss: -4
        case .marshallingError: -5
        case .unimplemented: -6
        case .operationTimeout: -7
        case .badArguments: -8
        case .unknownSession: -12
        case .newConfigNoQuorum: -13
        case .reconfigInProgress: -14
        case .apiError: -100
        case .noNode: -101
        case .noAuth: -102
        case .badVersion: -103
        case .noChildrenForEphemerals: -108
        case .nodeExists: -110
        case .notEmpty: -111
        case .sessionExpired: -112
        case .invalidCallback: -113
        case .invalidACL: -114
        case .authFailed: -115
        case .sessionMoved: -118
        case .notReadOnly: -119
        case .ephemeralOnLocalSession: -120
        case .noWatcher: -121
        case .requestTimeout: -122
        case .reconfigDisabled: -123
        case .sessionClosedRequireSaslAuth: -124
        case .quotaExceeded: -125
        case .throttled: -127
        case .unknown(let code): code
        case .closed, .protocolError, .multiFailed: nil
        }
    }
}
