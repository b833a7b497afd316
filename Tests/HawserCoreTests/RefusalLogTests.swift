import HawserCore
import Testing

/// A peer listener logs at most one refusal per code every interval, saying how many went unlogged.
struct RefusalLogTests {
    @Test func aFloodOfRefusalsIsOneLinePerCodePerInterval() {
        let log = RefusalLog(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(log.admit("not_a_member", at: start) == 0)
        for second in 1...9 { #expect(log.admit("not_a_member", at: start + .seconds(second)) == nil) }
        // Another code is logged on its own.
        #expect(log.admit("bad_signature", at: start + .seconds(5)) == 0)
        #expect(log.admit("not_a_member", at: start + .seconds(10)) == 9)
        #expect(log.admit("not_a_member", at: start + .seconds(11)) == nil)
        #expect(log.admit("not_a_member", at: start + .seconds(30)) == 1)
    }
}
