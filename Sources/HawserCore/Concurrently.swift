/// `body(0..<count)`, at most `width` at a time (all at once by default); the results in order.
/// The first error cancels the rest and is thrown.
public func concurrently<T: Sendable>(_ count: Int, width: Int? = nil, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var out = [T?](repeating: nil, count: count), next = 0
        while next < min(width ?? count, count) { let i = next; group.addTask { (i, try await body(i)) }; next += 1 }
        while let (i, value) = try await group.next() {
            out[i] = value
            if next < count { let j = next; group.addTask { (j, try await body(j)) }; next += 1 }
        }
        return out.map { $0! }
    }
}
