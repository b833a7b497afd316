import Testing
import HawserCore
import HawserTestSupport

@Suite(.timeLimit(.minutes(10))) struct InstantTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (1, "1970-01-01T00:00:00.000001Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (-1_000_000, "1969-12-31T23:59:59.000000Z"),
        (-86_400_000_000, "1969-12-31T00:00:00.000000Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
        (1_709_164_800_123_456, "2024-02-29T00:00:00.123456Z"),
        (1_767_225_600_000_000, "2026-01-01T00:00:00.000000Z"),
        (-2_208_988_800_000_000, "1900-01-01T00:00:00.000000Z"),
        (Fixtures.minRFC3339Micros, "0000-01-01T00:00:00.000000Z"),
        (Fixtures.maxRFC3339Micros, "9999-12-31T23:59:59.999999Z"),
    ])
    func formatsAndParses(_ micros: Int64, _ text: String) {
        let instant = Instant(microsecondsSinceEpoch: micros)
        #expect(instant.rfc3339 == text)
        #expect(instant.description == text)
        #expect(Instant(rfc3339: text) == instant)
    }

    @Test(arguments: [
        ("2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00.000000Z"),
        ("2025-12-31T18:30:00-05:30", "2026-01-01T00:00:00.000000Z"),
        ("2026-01-01T00:00:00-00:00", "2026-01-01T00:00:00.000000Z"),
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000000Z"),
        ("2026-03-01T00:30:00+01:00", "2026-02-28T23:30:00.000000Z"),
        ("2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00.000000Z"),
        ("1970-01-01T00:00:00+23:59", "1969-12-31T00:01:00.000000Z"),
        ("2026-01-01t00:00:00z", "2026-01-01T00:00:00.000000Z"),
        ("2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500000Z"),
        ("2026-01-01T00:00:00.05Z", "2026-01-01T00:00:00.050000Z"),
        ("2026-01-01T00:00:00.123456Z", "2026-01-01T00:00:00.123456Z"),
        ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
        ("2026-01-01T00:00:00.25+02:00", "2025-12-31T22:00:00.250000Z"),
        ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"),
        ("0000-01-01T01:00:00+01:00", "0000-01-01T00:00:00.000000Z"),
        ("9999-12-31T22:59:59.999999-01:00", "9999-12-31T23:59:59.999999Z"),
    ])
    func parsesOffsetsAndFractions(_ input: String, _ utc: String) {
        #expect(Instant(rfc3339: input)?.rfc3339 == utc)
    }

    @Test(arguments: [
        "", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00Z", "2026-01-01T00:00:00ZZ",
        "2026-01-01T00:00:00Z ", " 2026-01-01T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01X00:00:00Z",
        "2026-1-01T00:00:00Z", "2026-01-1T00:00:00Z", "26-01-01T00:00:00Z", "+2026-01-01T00:00:00Z",
        "-2026-01-01T00:00:00Z", "20260-01-01T00:00:00Z", "2026/01/01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z", "2016-12-31T23:59:60Z",
        "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567Z", "2026-01-01T00:00:00,5Z",
        "2026-01-01T00:00:00+01", "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60", "2026-01-01T00:00:00+1:00", "2026-01-01T00:00:00+01:00Z",
        "2026-01-01T00:00:00UTC", "2026-01-01T00:00:00GMT", "２026-01-01T00:00:00Z", "2026-01-01T0a:00:00Z",
        "2026-01-01T00:00:00.12a4Z",
        // Valid text whose offset takes the time out of the years 0000 to 9999 (UTC), which the
        // text form could not write back.
        "0000-01-01T00:30:00+01:00", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999-00:01",
    ])
    func rejects(_ text: String) {
        #expect(Instant(rfc3339: text) == nil)
    }

    @Test func theTextRangeIsWhatTheTextFormWrites() {
        #expect(Instant.textRange.lowerBound.microsecondsSinceEpoch == Fixtures.minRFC3339Micros)
        #expect(Instant.textRange.upperBound.microsecondsSinceEpoch == Fixtures.maxRFC3339Micros)
    }

    @Test func leapYears() {
        for year in [1600, 2000, 2004, 2024, 2400, 0, 4, 9996] {
            let text = "\(String(repeating: "0", count: 4 - String(year).count))\(year)-02-29T12:00:00Z"
            let instant = Instant(rfc3339: text)
            #expect(instant != nil, "\(text)")
            // The next day is 1 March.
            if let instant {
                let next = Instant(microsecondsSinceEpoch: instant.microsecondsSinceEpoch + 86_400_000_000)
                #expect(next.rfc3339.dropFirst(4).hasPrefix("-03-01T12:00:00"), "\(next)")
            }
        }
        for year in [1700, 1800, 1900, 2023, 2025, 2100, 2200, 2300, 9999] {
            #expect(Instant(rfc3339: "\(year)-02-29T00:00:00Z") == nil, "\(year)")
            #expect(Instant(rfc3339: "\(year)-02-28T00:00:00Z") != nil, "\(year)")
        }
        // A leap year has 366 days, a common year 365.
        func start(_ year: Int) -> Int64 { Instant(rfc3339: "\(year)-01-01T00:00:00Z")!.microsecondsSinceEpoch }
        #expect(start(2025) - start(2024) == 366 * 86_400_000_000)
        #expect(start(2101) - start(2100) == 365 * 86_400_000_000)
        #expect(start(2001) - start(2000) == 366 * 86_400_000_000)
        #expect(start(1969) - start(1968) == 366 * 86_400_000_000)
    }

    @Test func everyDayOfSomeYearsRoundTrips() {
        // Walk day by day across the epoch and two century boundaries; dates must be consecutive.
        for startYear in ["1899", "1968", "1999", "2099"] {
            var t = Instant(rfc3339: "\(startYear)-01-01T00:00:00Z")!.microsecondsSinceEpoch
            var previous = ""
            for _ in 0..<(3 * 366) {
                let text = Instant(microsecondsSinceEpoch: t).rfc3339
                #expect(Instant(rfc3339: text)?.microsecondsSinceEpoch == t)
                #expect(text > previous)
                previous = text
                t += 86_400_000_000
            }
        }
    }

    @Test func randomRoundTrip() {
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<5000 {
            let instant = rng.instant()
            let text = instant.rfc3339
            #expect(text.utf8.count == 27)
            #expect(Instant(rfc3339: text) == instant, "\(text)")
        }
        // Times close to the epoch, on both sides.
        for _ in 0..<2000 {
            let instant = Instant(microsecondsSinceEpoch: Int64.random(in: -10_000_000_000...10_000_000_000, using: &rng))
            #expect(Instant(rfc3339: instant.rfc3339) == instant)
        }
    }

    @Test func formattingOutsideRFC3339RangeDoesNotTrap() {
        // Such instants have no RFC 3339 form; formatting must still not crash.
        for micros in [Int64.min, Int64.min + 1, Fixtures.minRFC3339Micros - 1, Fixtures.maxRFC3339Micros + 1, Int64.max] {
            let text = Instant(microsecondsSinceEpoch: micros).rfc3339
            #expect(Instant(rfc3339: text) == nil, "\(text)")
        }
    }

    @Test func orderFollowsMicroseconds() {
        let a = Instant(microsecondsSinceEpoch: -5), b = Instant(microsecondsSinceEpoch: 3)
        #expect(a < b)
        #expect(!(b < a))
        #expect(Instant(rfc3339: "2026-01-01T00:00:00.000001Z")! > Instant(rfc3339: "2026-01-01T00:00:00Z")!)
        #expect(Instant(rfc3339: "2026-01-01T01:00:00+01:00")! == Instant(rfc3339: "2026-01-01T00:00:00Z")!)
    }
}

@Suite(.timeLimit(.minutes(10))) struct TimeWindowTests {
    let t0 = Instant(microsecondsSinceEpoch: 1_000)
    let t1 = Instant(microsecondsSinceEpoch: 2_000)

    @Test func needsABoundAndFromBeforeUntil() {
        #expect(TimeWindow(from: nil, until: nil) == nil)
        #expect(TimeWindow(from: t0, until: t0) == nil)
        #expect(TimeWindow(from: t1, until: t0) == nil)
        #expect(TimeWindow(from: t0, until: t1) != nil)
        #expect(TimeWindow(from: t0, until: nil) != nil)
        #expect(TimeWindow(from: nil, until: t0) != nil)
        let w = TimeWindow(from: t0, until: Instant(microsecondsSinceEpoch: 1_001))!
        #expect(w.from == t0 && w.until?.microsecondsSinceEpoch == 1_001)
    }

    @Test func fromIsInclusiveUntilIsExclusive() {
        let w = TimeWindow(from: t0, until: t1)!
        func at(_ m: Int64) -> Bool { w.contains(Instant(microsecondsSinceEpoch: m)) }
        #expect(!at(999))
        #expect(at(1_000))
        #expect(at(1_500))
        #expect(at(1_999))
        #expect(!at(2_000))
        #expect(!at(2_001))
    }

    @Test func openEnded() {
        let fromOnly = TimeWindow(from: t0, until: nil)!
        #expect(!fromOnly.contains(Instant(microsecondsSinceEpoch: 999)))
        #expect(fromOnly.contains(t0))
        #expect(fromOnly.contains(Instant(microsecondsSinceEpoch: .max)))
        let untilOnly = TimeWindow(from: nil, until: t1)!
        #expect(untilOnly.contains(Instant(microsecondsSinceEpoch: .min)))
        #expect(untilOnly.contains(Instant(microsecondsSinceEpoch: 1_999)))
        #expect(!untilOnly.contains(t1))
    }

    @Test func randomContainsMatchesDefinition() {
        var rng = SeededGenerator(seed: 6)
        for _ in 0..<2000 {
            let w = rng.timeWindow()
            let probes = [w.from, w.until].compactMap { $0 }.flatMap { b in
                [-1, 0, 1].map { Instant(microsecondsSinceEpoch: b.microsecondsSinceEpoch + $0) }
            } + [rng.instant()]
            for t in probes {
                let expected = (w.from.map { t >= $0 } ?? true) && (w.until.map { t < $0 } ?? true)
                #expect(w.contains(t) == expected)
            }
        }
    }
}
