extension Int {
    /// `text` as a whole number written in 1 to 18 decimal digits and nothing else (no sign, space
    /// or `_`): the form the APIs' patterns name (`[0-9]{1,18}`), which always fits. `Int(_:)`
    /// also takes `+3` and 19 digits, which the documents refuse.
    public init?(digits text: some StringProtocol) {
        let utf8 = text.utf8
        guard (1...18).contains(utf8.count), utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        self = utf8.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }
}
