import Foundation

/// One health check. An unhealthy leader resigns; an unhealthy candidate does not stand.
public protocol HealthCheck: Sendable {
    var name: String { get }
    /// nil when healthy, else a sentence saying what is wrong. Should return within a second.
    func problem() async -> String?
}

/// A check from a closure (for embedding applications and tests).
public struct ClosureHealthCheck: HealthCheck {
    public let name: String
    private let body: @Sendable () async -> String?
    public init(name: String, _ body: @escaping @Sendable () async -> String?) {
        self.name = name
        self.body = body
    }
    public func problem() async -> String? { await body() }
}

/// Unhealthy while a file exists: lets an operator (or a test) drain a node by touching a file.
public struct FileAbsentHealthCheck: HealthCheck {
    public let path: String
    public var name: String { "file-absent" }
    public init(path: String) { self.path = path }
    public func problem() async -> String? {
        FileManager.default.fileExists(atPath: path) ? "\(path) exists" : nil
    }
}

/// All checks of a candidate: healthy when every one is.
public struct HealthChecks: Sendable {
    public var checks: [any HealthCheck]
    public init(_ checks: [any HealthCheck] = []) { self.checks = checks }

    /// The first problem found, as "name: problem", or nil when healthy.
    public func problem() async -> String? {
        for check in checks {
            if let problem = await check.problem() { return "\(check.name): \(problem)" }
        }
        return nil
    }
}
