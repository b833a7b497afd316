import Coordination
import ZooKeeperElection

/// The ZooKeeper election under a seeded simulation: several real `ElectionCore`s, each driven
/// the way `ZooKeeperElection` drives it (a round loop that performs each core action's
/// `ZooKeeperProgram` one request at a time, each bounded by the request time-out, woken by its
/// predecessor's watch or after a check interval), on sessions with an in-memory ZooKeeper
/// (`SimZooKeeper`) that expires a session not heard from within its timeout and deletes its
/// ephemeral nodes. A client that hears nothing from the server for two thirds of the session
/// timeout is suspended (the core steps down at once); back in touch, it finds its session alive
/// or expired, and after an expiry stands again on a new session. Faults (`SimFaults`) come at
/// random for `faulty`, then stop for `quiet`.
///
/// Checked after every event:
/// - never two candidates acting as leader at one true moment (leading, and their own clock
///   still before the end of their last confirmation);
/// - a candidate leads only with an epoch it claimed (the `mzxid` of its own claim);
/// - at the end of the quiet period, a candidate leads.
///
/// A run depends on its seed alone: `Outcome.digest` is the same for the same seed and settings.
public enum ZooKeeperElectionSim {
    public struct Settings: Sendable {
        public var configuration: ZooKeeperElectionConfiguration
        /// The cores' timing; the configuration's unless a test plants a wrong one.
        public var timing: ElectionTiming
        public var candidates = 3
        public var faulty: Duration = .seconds(60)
        public var quiet: Duration = .seconds(20)
        public var faults = SimFaults()
        /// How many of the last events a violation shows.
        public var traceLines = 60

        public init(configuration: ZooKeeperElectionConfiguration = ZooKeeperElectionConfiguration(
            connectString: "simulated", credentials: ZooKeeperCredentials(user: "sim", password: "sim"))) {
            self.configuration = configuration
            self.timing = configuration.timing
        }
    }

    public struct Outcome: Sendable {
        public var seed: UInt64
        /// Events handled.
        public var events: Int
        /// Of every trace line: equal for equal seeds.
        public var digest: UInt64
        /// Epochs claimed.
        public var terms: Int
        /// Faults injected.
        public var faults: Int
        /// Sessions the server expired.
        public var expiredSessions: Int
        public var violation: SimViolation?
    }

    /// Runs one seed. `observe` sees every event's trace line as it happens.
    public static func run(seed: UInt64, settings: Settings = Settings(), observe: ((String) -> Void)? = nil) -> Outcome {
        var world = ZooKeeperElectionWorld(seed: seed, settings: settings)
        world.trace.observe = observe
        return world.run()
    }
}
