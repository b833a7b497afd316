import Foundation
import Sim
import HawserCore

/// A temporary directory, removed when the value is dropped.
public struct TemporaryDirectory: ~Copyable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A deterministic stream of distinct hashes for transaction ids and state refs.
public struct Ids: Sendable {
    private var counter: UInt64

    public init(seed: UInt64) { counter = seed << 32 }

    public mutating func hash() -> SecureHash {
        counter += 1
        return SecureHash.sha256(withUnsafeBytes(of: counter.bigEndian, Array.init))
    }

    public mutating func ref() -> StateRef { StateRef(txId: hash(), index: 0) }
}

/// The simulator's SplitMix64, so that every property test replays exactly from its seed.
public typealias SeededGenerator = Sim.SeededGenerator

/// Polls `condition` until it holds, for state that no event announces (another process's, a
/// server's); throws after `timeout`.
public func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        if ContinuousClock.now > deadline { throw EventuallyTimedOut(description: "no \(what) within \(timeout)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

public struct EventuallyTimedOut: Error, CustomStringConvertible {
    public let description: String
}
