import Foundation
import HawserTestSupport
import Testing
import Glibc

/// The ports test servers are told to use: distinct, free, and outside the range the kernel
/// hands to outgoing connections.
@Suite(.timeLimit(.minutes(1)))
struct FreePortsTests {
    @Test func portsAreDistinctFreeAndOutsideTheEphemeralRange() throws {
        let ports = try FreePorts.take(40)
        #expect(Set(ports).count == 40)
        let range = FreePorts.outsideEphemeralRange()
        #expect(ports.allSatisfy(range.contains), "\(ports) not all in \(range)")
        for port in ports {
            let fd = FreePorts.socket(boundTo: port)
            #expect(fd != nil, "port \(port) is free once taken")
            fd.map { _ = close($0) }
        }
    }
}
