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

    /// A port is handed out once in a process, even after its taker let it go: its server may
    /// bind it only seconds later, or be down to be restarted on it.
    @Test func noPortIsHandedOutTwice() throws {
        var all: [Int] = []
        for _ in 0..<10 { all += try FreePorts.take(100) }
        #expect(Set(all).count == all.count, "\(all.count - Set(all).count) ports handed out twice")
    }
}
