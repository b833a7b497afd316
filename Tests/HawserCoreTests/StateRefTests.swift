import Testing
import HawserCore
import HawserTestSupport

@Suite(.timeLimit(.minutes(10))) struct StateRefTests {
    static let txHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    @Test func textForm() {
        let ref = StateRef(txId: SecureHash(hex: Self.txHex)!, index: 7)
        #expect(ref.description == "\(Self.txHex):7")
        #expect(StateRef("\(Self.txHex):7") == ref)
        #expect(StateRef("\(Self.txHex.uppercased()):7") == ref)
        #expect(StateRef("\(Self.txHex):0")?.index == 0)
        #expect(StateRef("\(Self.txHex):4294967295")?.index == UInt32.max)
    }

    @Test(arguments: [
        "", ":", ":0", "\(txHex)", "\(txHex):", "\(txHex)::0", "\(txHex):0:0", "\(txHex):0:",
        "\(txHex):4294967296", "\(txHex):-1", "\(txHex):-0", "\(txHex):+1", "\(txHex): 1", "\(txHex):1 ",
        " \(txHex):1", "\(txHex):01", "\(txHex):00", "\(txHex):0x1", "\(txHex):1e3", "\(txHex):١",
        "\(txHex):１", "\(txHex.dropLast()):1", "\(txHex)0:1", "g\(txHex.dropFirst()):1",
    ])
    func rejects(_ text: String) {
        #expect(StateRef(text) == nil)
    }

    @Test func randomRoundTrip() {
        var rng = SeededGenerator(seed: 4)
        for _ in 0..<1000 {
            let ref = rng.stateRef()
            #expect(StateRef(ref.description) == ref)
        }
    }

    @Test func orderIsTxIdThenIndex() {
        let a = Fixtures.hash(1), b = Fixtures.hash(2)
        #expect(StateRef(txId: a, index: 9) < StateRef(txId: b, index: 0))
        #expect(StateRef(txId: a, index: 0) < StateRef(txId: a, index: 1))
        #expect(!(StateRef(txId: a, index: 1) < StateRef(txId: a, index: 1)))
    }
}
