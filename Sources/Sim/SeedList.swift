/// The seeds of a run as people write them: `N`, `FIRST-LAST` or `A,B,C` (`hawser sim --seeds`,
/// `HAWSER_SIM_SEEDS`, `HAWSER_FAULT_SEEDS`).
public enum SeedList {
    /// The seeds `text` names, in order; nil if it is none of the three forms or names none.
    public static func parse(_ text: String) -> [UInt64]? {
        let range = text.split(separator: "-", omittingEmptySubsequences: false)
        if range.count == 2 {
            guard let first = UInt64(range[0]), let last = UInt64(range[1]), first <= last else { return nil }
            return Array(first...last)
        }
        let list = text.split(separator: ",", omittingEmptySubsequences: false).map { UInt64($0) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else { return nil }
        return list.map { $0! }
    }
}
