/// The seeds of a run as people write them: `N`, `FIRST-LAST` or `A,B,C` (`hawser sim --seeds`,
/// `HAWSER_SIM_SEEDS`, `HAWSER_FAULT_SEEDS`).
public enum SeedList {
    /// The most seeds one run takes: a range is made into a list, and 1-100000000000 asked for
    /// 800 GB (a run of that many would not end either).
    public static let maxSeeds: UInt64 = 10_000_000

    /// The seeds `text` names, in order; nil if it is none of the three forms, names none, or
    /// more than `maxSeeds`.
    public static func parse(_ text: String) -> [UInt64]? {
        let range = text.split(separator: "-", omittingEmptySubsequences: false)
        if range.count == 2 {
            guard let first = UInt64(range[0]), let last = UInt64(range[1]), first <= last, last - first < maxSeeds else { return nil }
            return Array(first...last)
        }
        let list = text.split(separator: ",", omittingEmptySubsequences: false).map { UInt64($0) }
        guard !list.isEmpty, UInt64(list.count) <= maxSeeds, list.allSatisfy({ $0 != nil }) else { return nil }
        return list.map { $0! }
    }
}
