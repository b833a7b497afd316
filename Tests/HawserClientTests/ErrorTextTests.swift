import Foundation
import HawserClient
import NIOCore
import Testing

/// NIO's text for a refused connection is garbled ("connection reset (error set): Connection
/// refused) (errno: 111)", found from outside); clients and the CLI say it from the errno.
struct ErrorTextTests {
    @Test func aRefusedConnectionIsSaidPlainly() {
        #expect(errorText(IOError(errnoCode: ECONNREFUSED, reason: "connection reset (error set)")) == "connection refused")
        #expect(errorText(IOError(errnoCode: ETIMEDOUT, reason: "connect")) == "Connection timed out (errno \(ETIMEDOUT))")
        struct Other: Error, CustomStringConvertible { var description: String { "as it says" } }
        #expect(errorText(Other()) == "as it says")
    }
}
