import Testing
import HawserCore
import HawserTestSupport

/// One value of a random schema: what was written, and enough to read it back.
private enum Value: Equatable {
    case u8(UInt8), u32(UInt32), u64(UInt64), i64(Int64), bool(Bool)
    case raw([UInt8])
    case bytes([UInt8]), string(String)
    case hash(SecureHash), stateRef(StateRef), instant(Instant)
    case optionalHash(SecureHash?), refs([StateRef]), strings([String])
    case timeWindow(TimeWindow), outcome(NotarisationOutcome)

    static func random(using rng: inout SeededGenerator) -> Value {
        switch UInt8.random(in: 0...15, using: &rng) {
        case 0: .u8(UInt8.random(in: .min ... .max, using: &rng))
        case 1: .u32(Bool.random(using: &rng) ? rng.next32() : UInt32.random(in: 0...3, using: &rng))
        case 2: .u64(rng.next())
        case 3: .i64(Int64(bitPattern: rng.next()))
        case 4: .bool(Bool.random(using: &rng))
        case 5: .raw(rng.bytes(Int.random(in: 0...40, using: &rng)))
        case 6: .bytes(rng.bytes(Int.random(in: 0...40, using: &rng)))
        case 7: .string(rng.string(maxScalars: 12))
        case 8: .hash(rng.hash())
        case 9: .stateRef(rng.stateRef())
        case 10: .instant(Instant(microsecondsSinceEpoch: Int64(bitPattern: rng.next())))
        case 11: .optionalHash(Bool.random(using: &rng) ? rng.hash() : nil)
        case 12: .refs((0..<Int.random(in: 0...4, using: &rng)).map { _ in rng.stateRef() })
        case 13: .strings((0..<Int.random(in: 0...3, using: &rng)).map { _ in rng.string(maxScalars: 5) })
        case 14: .timeWindow(rng.timeWindow())
        default: .outcome(rng.outcome())
        }
    }

    func write(_ w: inout CanonicalWriter) {
        switch self {
        case .u8(let v): w.u8(v)
        case .u32(let v): w.u32(v)
        case .u64(let v): w.u64(v)
        case .i64(let v): w.i64(v)
        case .bool(let v): w.bool(v)
        case .raw(let v): w.raw(v)
        case .bytes(let v): w.lengthPrefixed(v)
        case .string(let v): w.string(v)
        case .hash(let v): w.hash(v)
        case .stateRef(let v): w.stateRef(v)
        case .instant(let v): w.instant(v)
        case .optionalHash(let v): w.optional(v) { $0.hash($1) }
        case .refs(let v): w.list(v) { $0.stateRef($1) }
        case .strings(let v): w.list(v) { $0.string($1) }
        case .timeWindow(let v): w.timeWindow(v)
        case .outcome(let v): w.outcome(v)
        }
    }

    /// Reads a value of the same shape as `self` (for `raw`, of the same length).
    func readSameShape(_ r: inout CanonicalReader) throws -> Value {
        switch self {
        case .u8: .u8(try r.u8())
        case .u32: .u32(try r.u32())
        case .u64: .u64(try r.u64())
        case .i64: .i64(try r.i64())
        case .bool: .bool(try r.bool())
        case .raw(let v): .raw(try r.raw(v.count))
        case .bytes: .bytes(try r.lengthPrefixed())
        case .string: .string(try r.string())
        case .hash: .hash(try r.hash())
        case .stateRef: .stateRef(try r.stateRef())
        case .instant: .instant(try r.instant())
        case .optionalHash: .optionalHash(try r.optional { try $0.hash() })
        case .refs: .refs(try r.list { try $0.stateRef() })
        case .strings: .strings(try r.list { try $0.string() })
        case .timeWindow: .timeWindow(try r.timeWindow())
        case .outcome: .outcome(try r.outcome())
        }
    }
}

private func encode(_ values: [Value]) -> [UInt8] {
    var w = CanonicalWriter()
    for v in values { v.write(&w) }
    return w.bytes
}

/// Decodes `bytes` as the schema of `shape`, requiring the input to be used up exactly.
private func decode(_ bytes: [UInt8], shape: [Value]) throws -> [Value] {
    var r = CanonicalReader(bytes)
    let values = try shape.map { try $0.readSameShape(&r) }
    try r.expectEnd()
    return values
}

@Suite(.timeLimit(.minutes(10))) struct CanonicalEncodingTests {
    @Test func primitiveLayouts() {
        var w = CanonicalWriter()
        w.u8(0xab)
        w.u32(0x0102_0304)
        w.u64(0x0102_0304_0506_0708)
        w.i64(-2)
        w.bool(true)
        w.bool(false)
        w.raw([9, 8])
        w.lengthPrefixed([7])
        w.string("é")
        w.optional(nil as UInt8?) { $0.u8($1) }
        w.optional(UInt8(5)) { $0.u8($1) }
        w.list([UInt8(1), 2]) { $0.u8($1) }
        #expect(Hex.encode(w.bytes) == "ab" + "01020304" + "0102030405060708" + "fffffffffffffffe" + "01" + "00"
            + "0908" + "0000000107" + "00000002c3a9" + "00" + "0105" + "000000020102")
    }

    @Test func ledgerTypeLayouts() {
        let tx = SecureHash(hex: String(repeating: "0f", count: 32))!
        var w = CanonicalWriter()
        w.hash(tx)
        #expect(w.bytes == tx.bytes)
        w = CanonicalWriter()
        w.stateRef(StateRef(txId: tx, index: 258))
        #expect(w.bytes == tx.bytes + [0, 0, 1, 2])
        w = CanonicalWriter()
        w.instant(Instant(microsecondsSinceEpoch: -1))
        #expect(w.bytes == [UInt8](repeating: 0xff, count: 8))
        w = CanonicalWriter()
        w.timeWindow(TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 1))!)
        #expect(w.bytes == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
        w = CanonicalWriter()
        w.outcome(.committed)
        #expect(w.bytes == [0])
        w = CanonicalWriter()
        w.outcome(.conflict([]))
        #expect(w.bytes == [1, 0, 0, 0, 0])
        w = CanonicalWriter()
        w.outcome(.conflict([Conflict(ref: StateRef(txId: tx, index: 1), kind: .reference, consumingTxIdHash: .zero)]))
        #expect(w.bytes == [1, 0, 0, 0, 1] + tx.bytes + [0, 0, 0, 1] + [1] + [UInt8](repeating: 0, count: 32))
        w = CanonicalWriter()
        w.outcome(.timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: 2),
                                     window: TimeWindow(from: Instant(microsecondsSinceEpoch: 3), until: nil)!))
        #expect(w.bytes == [2, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0])
    }

    @Test func randomSchemasRoundTrip() throws {
        var rng = SeededGenerator(seed: 10)
        for _ in 0..<2000 {
            let values = (0..<Int.random(in: 0...8, using: &rng)).map { _ in Value.random(using: &rng) }
            let bytes = encode(values)
            #expect(try decode(bytes, shape: values) == values)
        }
    }

    @Test func everyTruncationIsAnError() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<300 {
            let values = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Value.random(using: &rng) }
            let bytes = encode(values)
            for cut in 0..<bytes.count {
                #expect(throws: CanonicalDecodingError.self) { try decode(Array(bytes[..<cut]), shape: values) }
            }
        }
    }

    @Test func trailingBytesAreAnError() {
        var rng = SeededGenerator(seed: 12)
        for _ in 0..<1000 {
            let values = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Value.random(using: &rng) }
            let bytes = encode(values) + rng.bytes(Int.random(in: 1...5, using: &rng))
            #expect(throws: CanonicalDecodingError.self) { try decode(bytes, shape: values) }
        }
    }

    /// One value, one encoding: whatever a corrupted input decodes to re-encodes to that same input.
    @Test func corruptedInputFailsOrIsCanonical() {
        var rng = SeededGenerator(seed: 13)
        var decodedSome = 0, failed = 0
        for _ in 0..<5000 {
            let values = (0..<Int.random(in: 1...5, using: &rng)).map { _ in Value.random(using: &rng) }
            var bytes = encode(values)
            guard !bytes.isEmpty else { continue }
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: .min ... .max, using: &rng)
            }
            if let decoded = try? decode(bytes, shape: values) {
                decodedSome += 1
                #expect(encode(decoded) == bytes)
            } else {
                failed += 1
            }
        }
        // The test is only meaningful if both branches were exercised.
        #expect(decodedSome > 100 && failed > 100)
    }

    @Test func garbageOutcomesFailOrAreCanonical() {
        var rng = SeededGenerator(seed: 14)
        var decodedSome = 0
        for _ in 0..<20_000 {
            var bytes = rng.bytes(Int.random(in: 0...60, using: &rng))
            // Bias the first bytes towards valid tags and flags so that decoding gets somewhere.
            if !bytes.isEmpty, Bool.random(using: &rng) { bytes[0] = UInt8.random(in: 0...3, using: &rng) }
            if bytes.count > 9, Bool.random(using: &rng) { bytes[9] = UInt8.random(in: 0...2, using: &rng) }
            var r = CanonicalReader(bytes)
            guard let outcome = try? r.outcome(), r.isAtEnd else { continue }
            decodedSome += 1
            var w = CanonicalWriter()
            w.outcome(outcome)
            #expect(w.bytes == bytes)
        }
        #expect(decodedSome > 0)
    }

    @Test func specificErrors() {
        func fails(_ bytes: [UInt8], _ read: (inout CanonicalReader) throws -> Void) {
            var r = CanonicalReader(bytes)
            #expect(throws: CanonicalDecodingError.self) { try read(&r) }
        }
        fails([]) { _ = try $0.u8() }
        fails([0, 0, 0]) { _ = try $0.u32() }
        fails([0, 0, 0, 0, 0, 0, 0]) { _ = try $0.u64() }
        fails([0, 0, 0, 0, 0, 0, 0]) { _ = try $0.i64() }
        fails([2]) { _ = try $0.bool() }
        fails([0xff]) { _ = try $0.bool() }
        fails([2, 0]) { _ = try $0.optional { try $0.u8() } }
        fails([1]) { _ = try $0.optional { try $0.u8() } }
        fails([0, 0, 0, 2, 0xc3]) { _ = try $0.lengthPrefixed() }
        fails([0xff, 0xff, 0xff, 0xff, 0]) { _ = try $0.lengthPrefixed() }
        fails([0, 0, 0, 2, 0xc3, 0x28]) { _ = try $0.string() }  // invalid UTF-8
        fails([0, 0, 0, 1, 0x80]) { _ = try $0.string() }
        fails([0, 0, 0, 3, 0xed, 0xa0, 0x80]) { _ = try $0.string() }  // a UTF-16 surrogate
        fails([0, 0, 0, 2, 0xc0, 0x80]) { _ = try $0.string() }  // overlong NUL
        // A huge count is refused before anything is allocated.
        fails([0xff, 0xff, 0xff, 0xff]) { _ = try $0.list { try $0.u8() } }
        fails([0xff, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 100)) { _ = try $0.list { try $0.hash() } }
        fails([0, 0, 0, 2, 7]) { _ = try $0.list { try $0.u8() } }
        fails([UInt8](repeating: 0, count: 31)) { _ = try $0.hash() }
        fails([UInt8](repeating: 0, count: 35)) { _ = try $0.stateRef() }
        fails([5]) { _ = try $0.raw(2) }
        // Outcomes.
        fails([3]) { _ = try $0.outcome() }
        fails([0xff]) { _ = try $0.outcome() }
        fails([1, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 36) + [2] + [UInt8](repeating: 0, count: 32)) {
            _ = try $0.outcome()  // ref kind 2
        }
        // Time windows: no bound, or from not before until.
        fails([0, 0]) { _ = try $0.timeWindow() }
        fails([1, 0, 0, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 5]) { _ = try $0.timeWindow() }
        fails([1, 0, 0, 0, 0, 0, 0, 0, 6, 1, 0, 0, 0, 0, 0, 0, 0, 5]) { _ = try $0.timeWindow() }
        fails([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) { _ = try $0.outcome() }
    }

    @Test func readerTracksTheEnd() throws {
        var r = CanonicalReader([1, 2])
        #expect(!r.isAtEnd)
        #expect(throws: CanonicalDecodingError.self) { try r.expectEnd() }
        #expect(try r.raw(0) == [])
        #expect(try r.u8() == 1)
        #expect(try r.u8() == 2)
        #expect(r.isAtEnd)
        try r.expectEnd()
        #expect(throws: CanonicalDecodingError.self) { _ = try r.u8() }
    }
}
