import Foundation
import NIOCore

/// An error as a sentence for people. NIO's `IOError` reads "connection reset (error set):
/// Connection refused) (errno: 111)" for a refused connection (found from outside); it is said
/// from its errno instead.
public func errorText(_ error: any Error) -> String {
    guard let io = error as? IOError else { return "\(error)" }
    return io.errnoCode == ECONNREFUSED ? "connection refused" : "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
}
