import ArgumentParser
import Foundation
import Sim

/// `hawser check`: checks of what a deployment did, from records any client can keep.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check records of a deployment against Hawser's promises.",
        subcommands: [HistoryCheck.self])

    /// `hawser check history FILE`: the notary's and the node's invariants over a JSON-lines
    /// history (docs/history.md). Exit status 0: none broken; 1: some broken (one line each);
    /// 2: the file cannot be read as a history.
    struct HistoryCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Check a JSON-lines history of requests and answers (docs/history.md): no double spend, no changed outcome, every flow once.")

        @Argument(help: "The history file (JSON lines), or - for standard input.")
        var file: String
        @Flag(help: "Do not report acknowledged flow starts without a result (a history cut short).")
        var allowUnfinished = false

        func run() throws {
            let (violations, summary) = try Self.check(file, allowUnfinished: allowUnfinished)
            for violation in violations { print(violation) }
            print(summary)
            if !violations.isEmpty { throw ExitCode(1) }
        }

        /// Reads the history in `file` (`-`: standard input) and checks it: the violations and a
        /// summary line. A file that cannot be read as a history is thrown as `unreadable`.
        /// `hawser bench notary --history` ends with this check too.
        static func check(_ file: String, allowUnfinished: Bool) throws -> (violations: [HistoryChecker.Violation], summary: String) {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else {
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory)
                throw Self.unreadable("cannot read \(file): " + (!exists ? "there is no such file" : isDirectory.boolValue ? "it is a directory" : "permission denied"))
            }
            guard let text = String(data: data, encoding: .utf8) else { throw Self.unreadable("\(file) is not UTF-8 text") }
            let history: History
            do { history = try History(jsonLines: text) } catch let error as History.ReadError {
                throw Self.unreadable("\(file): \(error)")
            }
            let (counts, violations) = HistoryChecker(allowUnfinished: allowUnfinished).check(history)
            return (violations, "\(counts.events) events, \(counts.notarisations) transactions answered, \(counts.flows) flows acknowledged: "
                    + (violations.isEmpty ? "no invariant broken" : "\(violations.count) violation\(violations.count == 1 ? "" : "s")"))
        }

        /// A history that cannot be read: said on standard error, exit status 2, so that scripts
        /// can tell it from a history that breaks an invariant.
        static func unreadable(_ problem: String) -> ExitCode {
            FileHandle.standardError.write(Data("Error: \(problem)\n".utf8))
            return ExitCode(2)
        }
    }
}
