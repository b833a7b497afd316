import Flows

/// How every vault store chooses states for a holder (`VaultStore.reserve(choosing:...)`): the
/// states available to the holder, in the query's order, offered one by one to `pick` until it
/// says the states taken are enough. Pages grow from 2 states, twice as large each time, to the
/// query's limit: most choices need a state or two, and reading a thousand each time made a large
/// vault slow to spend from (and a first page of 16, read and decoded to spend one state, was
/// most of a choice's cost). The store reads the pages and reserves what is chosen, in one
/// transaction; this decides which page comes next and when the choice is made.
public struct VaultSelection<Tally: Sendable> {
    public enum Step {
        /// Read this page next and pass it to `consider`.
        case read(VaultQuery)
        /// These states are the choice: reserve them for the holder.
        case reserve([VaultState])
        /// The available states are not enough.
        case notEnough
    }

    /// The first page to read.
    public let firstPage: VaultQuery
    private let limit: Int
    private var tally: Tally
    private let pick: @Sendable (inout Tally, VaultState) throws -> VaultPick
    private var taken = [VaultState]()

    public init(choosing query: VaultQuery, for holder: String, from start: Tally,
                pick: @escaping @Sendable (inout Tally, VaultState) throws -> VaultPick) {
        var first = query
        first.consumption = .unconsumed
        first.availableTo = holder
        limit = query.limit
        first.limit = min(query.limit, 2)
        firstPage = first
        tally = start
        self.pick = pick
    }

    /// Offers the states of `page` (read for the query of the last step) to `pick`.
    public mutating func consider(_ page: VaultPage, of query: VaultQuery) throws -> Step {
        for state in page.states {
            switch try pick(&tally, state) {
            case .skip: continue
            case .take: taken.append(state)
            case .takeAndStop:
                taken.append(state)
                return .reserve(taken)
            }
        }
        guard let next = page.next else { return .notEnough }
        var following = query
        following.after = next
        following.limit = min(limit, query.limit * 2)
        return .read(following)
    }
}
