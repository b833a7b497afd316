import Embedded
import Foundation
@testable import HawserNode
import HawserTestSupport
import Testing

/// The configuration service (`hawser admin config`): a setting recorded in the node database while
/// the node runs is applied by its process within a second, a bad one is refused and changes
/// nothing, and `unset` returns the process to its start-up value.
@Suite(.serialized, .timeLimit(.minutes(2))) struct RuntimeSettingsTests {
    /// Numbers are taken in their plain decimal form only (found from outside: `+5` was taken).
    @Test func numbersAreTakenInTheirPlainDecimalFormOnly() throws {
        #expect(try RuntimeSettings.check("sessions.timeoutMillis", "0010") == "10")
        for value in ["+5", "-5", " 5", "5 ", "1e3", "1.5", "0x10", ""] {
            #expect(throws: ConfigurationError.self, "\(value)") { try RuntimeSettings.check("sessions.timeoutMillis", value) }
        }
    }

    @Test func aRunningNodeTakesItsLogLevelFromTheDatabaseAndRefusesBadValues() async throws {
        let dir = try TemporaryDirectory()
        _ = try Node.initialise(directory: dir.path, port: 0, parties: ["O=Alice, L=London, C=GB"], username: "ops", password: "secret")
        let config = dir.path + "/node.json"
        let log = dir.path + "/node.log"
        let (node, _) = try await HawserProcess.node(config: config, logLevel: "error", log: log)
        defer { node.kill() }
        func logged() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        let (set, said) = try await HawserProcess.run(["admin", "config", "set", "log.level", "Debug", "--config", config])
        #expect(set == 0 && said.contains("log.level is debug"), "\(said)")
        // Logged at notice, which a process at level error would not write: the level changed.
        try await eventually("the node logs at debug") { logged().contains("log.level is debug (set at run time)") }

        for (name, value, refusal) in [("log.level", "verbose", "log.level must be one of trace, debug, info, notice, warning, error, critical, not \"verbose\""),
                                       ("sessions.timeoutMillis", "0", "sessions.timeoutMillis must be 1...86400000 (a day), not \"0\""),
                                       ("ha.mode", "single", "ha.mode cannot be set at run time; these can: log.level, sessions.timeoutMillis")] {
            let (status, output) = try await HawserProcess.run(["admin", "config", "set", name, value, "--config", config])
            #expect(status != 0 && output.contains(refusal), "\(output)")
        }
        let (forget, why) = try await HawserProcess.run(["admin", "config", "unset", "ha.mode", "--config", config])
        #expect(forget != 0 && why.contains("ha.mode is not a run-time setting; these are: log.level, sessions.timeoutMillis"), "\(why)")
        let (_, shown) = try await HawserProcess.run(["admin", "config", "show", "--config", config])
        #expect(shown.contains(#""log.level" : "debug""#), "a refused value changed nothing: \(shown)")

        // A setting a later version recorded, which this one does not know: one error names it.
        try await SQLiteNodeDatabase(path: dir.path + "/data/node.sqlite").flows.setSetting("config/future.thing", to: "1")
        try await eventually("the node says it does not take the unknown setting") {
            logged().contains("refused the run-time setting future.thing: this version of Hawser does not know it")
        }

        let (unset, _) = try await HawserProcess.run(["admin", "config", "unset", "log.level", "--config", config])
        #expect(unset == 0)
        try await eventually("the node is back at its start-up level") { logged().contains("log.level is error (as at start-up)") }
        let (_, after) = try await HawserProcess.run(["admin", "config", "show", "--config", config])
        #expect(after.contains(#""log.level" : null"#), "\(after)")
    }
}
