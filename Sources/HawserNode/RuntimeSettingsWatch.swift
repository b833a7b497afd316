import Flows
import Logging
import ServiceLifecycle

/// Applies the node's run-time settings (`RuntimeSettings`) in this process: reads them from the
/// node database every `interval` (one query, through the pool), and applies each that changed,
/// saying so in the log. A value or a setting recorded by another version that this one does not
/// take is refused here too, with one error, and the process keeps what it has.
struct RuntimeSettingsWatch: Service {
    let store: any NodeFlowStore
    /// The node's flow sessions, if it is a network member (`sessions.timeoutMillis`).
    let sessions: SessionHub?
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // Every setting is at its start-up value until a recorded one is read.
            var applied: [String: String?] = Dictionary(uniqueKeysWithValues: RuntimeSettings.names.map { ($0, String?.none) })
            var refused: Set<String> = []
            while !Task.isCancelled {
                let settings: [String: String]
                do { settings = try await store.settings(prefix: RuntimeSettings.prefix) } catch {
                    logger.debug("could not read the run-time settings", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: interval)
                    continue
                }
                for name in RuntimeSettings.names {
                    let recorded = settings[RuntimeSettings.recorded(name)]
                    guard applied[name] != .some(recorded) else { continue }
                    applied[name] = recorded
                    do {
                        try apply(name, recorded)
                    } catch {
                        if refused.insert("\(name)=\(recorded ?? "")").inserted {
                            logger.error("refused the run-time setting \(name): \(error)")
                        }
                    }
                }
                // A setting this version does not know (recorded by a newer one): said once.
                let known = Set(RuntimeSettings.names.map(RuntimeSettings.recorded))
                for key in settings.keys.sorted() where !known.contains(key) && refused.insert(key).inserted {
                    logger.error("refused the run-time setting \(key.dropFirst(RuntimeSettings.prefix.count)): this version of Hawser does not know it")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Applies `value` (nil: the start-up value) and says what the setting is now.
    private func apply(_ name: String, _ value: String?) throws {
        let checked = try value.map { try RuntimeSettings.check(name, $0) }
        let now: String
        switch name {
        case "log.level":
            ProcessLogLevel.shared.set(checked.flatMap(Logger.Level.init(rawValue:)))
            now = "\(ProcessLogLevel.shared.current)"
        case "sessions.timeoutMillis":
            sessions?.setTimeout(checked.flatMap(Int.init).map { .milliseconds($0) })
            now = sessions.map { "\($0.timeout.millisecondsValue) ms" } ?? "of no use (this node has no network)"
        default:
            return
        }
        // At least at the level it may have set, so that it shows in the log it changes.
        logger.log(level: max(ProcessLogLevel.shared.current, .notice), "\(name) is \(now) (\(value == nil ? "as at start-up" : "set at run time"))")
    }
}
