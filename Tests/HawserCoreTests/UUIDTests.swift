import Foundation
import HawserCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct UUIDTests {
    /// The version nibble and the RFC 4122 variant bits of `id`.
    func versionAndVariant(_ id: UUID) -> (UInt8, UInt8) { (id.uuid.6 >> 4, id.uuid.8 >> 6) }

    @Test func randomIdsAreVersion4AndDistinct() {
        let ids = (0..<1_000).map { _ in randomUUID() }
        #expect(ids.allSatisfy { versionAndVariant($0) == (4, 2) })
        #expect(Set(ids).count == ids.count)
    }

    @Test func timeOrderedIdsCarryTheirMillisecondAndSortByIt() {
        let t = Date(timeIntervalSince1970: 1_790_000_000.5)   // exact in binary: 1,790,000,000,500 ms
        let id = timeOrderedUUID(now: t)
        #expect(versionAndVariant(id) == (7, 2))
        // RFC 9562: the first 48 bits are the Unix time in milliseconds, big-endian.
        #expect(id.uuidString.lowercased().hasPrefix(String(1_790_000_000_500, radix: 16).leftPadded(to: 8) + "-"))
        // Two milliseconds apart, so rounding of the seconds cannot put two in one millisecond.
        let later = (1...50).map { timeOrderedUUID(now: t.addingTimeInterval(Double($0) * 0.002)) }
        let strings = ([id] + later).map { $0.uuidString.lowercased() }
        #expect(strings == strings.sorted())
        #expect(Set(strings).count == strings.count)
    }
}

private extension String {
    /// The first 8 hex digits of a 12-digit millisecond time, as a UUID string starts.
    func leftPadded(to count: Int) -> String { String((String(repeating: "0", count: 12 - self.count) + self).prefix(count)) }
}
