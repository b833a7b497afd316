import Testing
import HawserCore
import HawserTestSupport

@Suite(.timeLimit(.minutes(10))) struct HexTests {
    @Test func encodesLowerCase() {
        #expect(Hex.encode([]) == "")
        #expect(Hex.encode([0x00, 0x01, 0x7f, 0x80, 0xab, 0xff]) == "00017f80abff")
    }

    @Test func decodesEitherCase() {
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("00017F80aBfF") == [0x00, 0x01, 0x7f, 0x80, 0xab, 0xff])
    }

    @Test(arguments: ["0", "abc", "0g", "g0", " 00", "00 ", "0x00", "-1", "é0", "０0", "zz", "\u{0}0"])
    func rejectsBadHex(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test func roundTripsRandomBytes() {
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<500 {
            let bytes = rng.bytes(Int.random(in: 0...80, using: &rng))
            let hex = Hex.encode(bytes)
            #expect(hex.utf8.count == 2 * bytes.count)
            #expect(hex == hex.lowercased())
            #expect(Hex.decode(hex) == bytes)
            #expect(Hex.decode(hex.uppercased()) == bytes)
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct SecureHashTests {
    @Test func sha256KnownAnswers() {
        // FIPS 180-2 examples.
        #expect(SecureHash.sha256([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SecureHash.sha256(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func bytesAndHexRoundTrip() {
        var rng = SeededGenerator(seed: 2)
        for _ in 0..<500 {
            let bytes = rng.bytes(32)
            let h = SecureHash(bytes: bytes)!
            #expect(h.bytes == bytes)
            #expect(h.hex == Hex.encode(bytes))
            #expect(h.description == h.hex)
            #expect(SecureHash(hex: h.hex) == h)
            #expect(SecureHash(hex: h.hex.uppercased()) == h)
            #expect(SecureHash(bytes: bytes[...]) == h)
        }
    }

    @Test func rejectsWrongLengths() {
        for n in [0, 1, 31, 33, 64] {
            #expect(SecureHash(bytes: [UInt8](repeating: 7, count: n)) == nil)
        }
        let good = String(repeating: "ab", count: 32)
        #expect(SecureHash(hex: good) != nil)
        #expect(SecureHash(hex: String(good.dropLast())) == nil)
        #expect(SecureHash(hex: good + "a") == nil)
        #expect(SecureHash(hex: good + "ab") == nil)
        #expect(SecureHash(hex: "") == nil)
        #expect(SecureHash(hex: String(good.dropLast()) + "g") == nil)
        #expect(SecureHash(hex: String(good.dropLast(2)) + "é") == nil)
        #expect(SecureHash(hex: " " + String(good.dropFirst())) == nil)
    }

    @Test func orderIsByteOrder() {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<1000 {
            // Share a random-length prefix so that every word position gets compared.
            var a = rng.bytes(32), b = rng.bytes(32)
            let shared = Int.random(in: 0...32, using: &rng)
            b.replaceSubrange(0..<shared, with: a[0..<shared])
            if Bool.random(using: &rng) { a = b }
            let ha = SecureHash(bytes: a)!, hb = SecureHash(bytes: b)!
            #expect((ha < hb) == a.lexicographicallyPrecedes(b))
            #expect((ha == hb) == (a == b))
        }
        #expect(SecureHash.zero.bytes == [UInt8](repeating: 0, count: 32))
        #expect(SecureHash.zero < Fixtures.hash(1))
    }
}
