import Logging

/// The node's configuration service (issue 19; design 002's configuration service): settings an
/// operator changes while the node runs, with `hawser admin config set NAME VALUE`. A setting is
/// checked where it is set (a bad value is refused and nothing recorded), recorded in the node
/// database (`node_settings`, named `config/NAME`), and applied by every process of the node
/// within a second (`RuntimeSettingsWatch`); `unset` returns each process to its own start-up value.
public enum RuntimeSettings {
    /// Every setting that may be changed at run time (docs/node.md, "Run-time settings", says what each takes).
    public static let names = ["log.level", "sessions.timeoutMillis"]

    /// What the `node_settings` names of the run-time settings begin with.
    static let prefix = "config/"
    /// The `node_settings` name a setting is recorded under.
    static func recorded(_ name: String) -> String { prefix + name }

    /// `value` as recorded, or why it is refused (an unknown setting, a bad value).
    public static func check(_ name: String, _ value: String) throws(ConfigurationError) -> String {
        switch name {
        case "log.level":
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw ConfigurationError(["log.level must be one of trace, debug, info, notice, warning, error, critical, not \"\(value)\""])
            }
            return level.rawValue
        case "sessions.timeoutMillis":
            // Digits only: `Int` also takes a sign (`+5`), which the plain decimal form has not.
            guard value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let millis = Int(value),
                  (1...86_400_000).contains(millis) else {
                throw ConfigurationError(["sessions.timeoutMillis must be 1...86400000 (a day), not \"\(value)\""])
            }
            return String(millis)
        default:
            throw ConfigurationError(["\(name) cannot be set at run time; these can: \(names.joined(separator: ", "))"])
        }
    }
}

/// Reads and records the run-time settings in a node's database (`hawser admin config`), while
/// its processes run.
public enum RuntimeSettingsStore {
    /// Every setting with the value recorded (nil: none, each process at its start-up value).
    public static func show(configuration: NodeConfiguration, baseDirectory: String, logger: Logger) async throws -> [String: String?] {
        try await NodeDatabase.reading(configuration, baseDirectory: baseDirectory, logger: logger) { database in
            let recorded = try await database.flows.settings(prefix: RuntimeSettings.prefix)
            return Dictionary(uniqueKeysWithValues: RuntimeSettings.names.map { ($0, recorded[RuntimeSettings.recorded($0)]) })
        }
    }

    /// Records `value` for `name` after checking it (nil: forgets it); returns what was recorded.
    @discardableResult
    public static func set(_ name: String, _ value: String?, configuration: NodeConfiguration, baseDirectory: String,
                           logger: Logger) async throws -> String? {
        let checked: String?
        if let value {
            checked = try RuntimeSettings.check(name, value)
        } else {
            guard RuntimeSettings.names.contains(name) else {
                throw ConfigurationError(["\(name) is not a run-time setting; these are: \(RuntimeSettings.names.joined(separator: ", "))"])
            }
            checked = nil
        }
        try await NodeDatabase.reading(configuration, baseDirectory: baseDirectory, logger: logger) { database in
            try await database.flows.setSetting(RuntimeSettings.recorded(name), to: checked)
        }
        return checked
    }
}
