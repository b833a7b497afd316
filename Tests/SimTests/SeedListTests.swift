import Sim
import Testing

@Suite(.timeLimit(.minutes(10))) struct SeedListTests {
    @Test func theThreeFormsAndWhatIsRefused() {
        #expect(SeedList.parse("7") == [7])
        #expect(SeedList.parse("3-5") == [3, 4, 5])
        #expect(SeedList.parse("9,2,4") == [9, 2, 4])
        for bad in ["", "5-3", "1-", "a", "1,,2", "1-2-3", "-1"] { #expect(SeedList.parse(bad) == nil, "\(bad)") }
        // Beyond 10 million seeds: refused (1-100000000000 allocated 800 GB and aborted; the whole
        // UInt64 range trapped).
        #expect(SeedList.parse("1-10000000")?.count == 10_000_000)
        for huge in ["1-10000001", "1-100000000000", "0-18446744073709551615"] { #expect(SeedList.parse(huge) == nil, "\(huge)") }
    }
}
