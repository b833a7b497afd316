@testable import JetStreamLog
import Testing

/// An end of the stream before what this process has seen is believed only after answers below it
/// have come for the bound of time the process observed: a pause of the process (the case that made
/// a replica of `DivergedStreamFaultTests` stop with `truncated` while its entries were in the
/// stream) starts the bound again.
struct StaleEndWatchTests {
    let start = ContinuousClock.now

    func at(_ ms: Int) -> ContinuousClock.Instant { start + .milliseconds(ms) }

    @Test func anEndAtOrAfterTheFloorIsBelievedAtOnce() {
        var watch = StaleEndWatch(floor: 10, bound: .seconds(10), maxGap: .seconds(2))
        let (exact, after) = (watch.believes(end: 10, at: at(0)), watch.believes(end: 12, at: at(0)))
        #expect(exact && after)
    }

    @Test func anEndBeforeTheFloorIsBelievedOnceItStaysForTheBound() {
        var watch = StaleEndWatch(floor: 10, bound: .seconds(10), maxGap: .seconds(2))
        for ms in stride(from: 0, to: 10_000, by: 100) {
            let believed = watch.believes(end: 9, at: at(ms))
            #expect(!believed, "at \(ms) ms")
        }
        let believed = watch.believes(end: 9, at: at(10_000))
        #expect(believed)
    }

    /// Callers with other floors share the watch: one whose floor the end reaches leaves it alone,
    /// one with a higher floor keeps it. Before, each started it again, and a replica's check of a
    /// majority's position (a higher floor) never reached the bound while requests (the applied
    /// position's floor, which the end reached) came in between.
    @Test func callersWithOtherFloorsDoNotStartTheWatchAgain() {
        var stored: StaleEndWatch?
        var believedAt = [Int]()
        for ms in stride(from: 0, through: 10_000, by: 100) {
            // A request's caller: its floor (what this process applied) is reached.
            #expect(StaleEndWatch.shared(&stored, floor: 7, end: 7, at: at(ms), bound: .seconds(10), maxGap: .seconds(2)))
            if StaleEndWatch.shared(&stored, floor: 9, end: 7, at: at(ms), bound: .seconds(10), maxGap: .seconds(2)) { believedAt.append(ms) }
            // A lookup whose floor is higher still: the watch of floor 9 is evidence for it too.
            if ms == 5_000 { #expect(!StaleEndWatch.shared(&stored, floor: 12, end: 7, at: at(ms), bound: .seconds(10), maxGap: .seconds(2))) }
        }
        #expect(believedAt == [10_000], "\(believedAt)")
    }

    @Test func aGapLongerThanMaxGapStartsTheBoundAgain() {
        var watch = StaleEndWatch(floor: 10, bound: .seconds(10), maxGap: .seconds(2))
        // Answers at 0 and 1 s; then paused 7 s: the 8 s since the first are not 8 s observed;
        // then every second from 8 s: believed 10 s after the pause, not 10 s after the first.
        var believedAt = [Int]()
        for ms in [0, 1_000] + Array(stride(from: 8_000, through: 19_000, by: 1_000)) where watch.believes(end: 9, at: at(ms)) {
            believedAt.append(ms)
        }
        #expect(believedAt.first == 18_000, "\(believedAt)")
        // An answer that catches up is believed whatever came before.
        var again = StaleEndWatch(floor: 10, bound: .seconds(10), maxGap: .seconds(2))
        let (stale, caughtUp) = (again.believes(end: 9, at: at(0)), again.believes(end: 10, at: at(100)))
        #expect(!stale && caughtUp)
    }
}
