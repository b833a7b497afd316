import Sim
import Testing

@Suite(.timeLimit(.minutes(10))) struct SeedListTests {
    @Test func theThreeFormsAndWhatIsRefused() {
        #expect(SeedList.parse("7") == [7])
        #expect(SeedList.parse("3-5") == [3, 4, 5])
        #expect(SeedList.parse("9,2,4") == [9, 2, 4])
        for bad in ["", "5-3", "1-", "a", "1,,2", "1-2-3", "-1"] { #expect(SeedList.parse(bad) == nil, "\(bad)") }
    }
}
