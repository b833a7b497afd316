import Coordination

/// The lease election under a seeded simulation: several real `ElectionCore`s, each driven the
/// way `LeaseElection` drives it (a round loop one store call at a time, each bounded by the
/// request time-out, an expiry timer beside it), against one in-memory lease store that applies
/// the real `LeaseRules` at the moment a request reaches it. The store's clock is true time;
/// each candidate's clock drifts (`SimClock`). Faults (`SimFaults`) come at random for
/// `faulty`, then stop for `quiet`.
///
/// Checked after every event:
/// - never two candidates acting as leader at one true moment (leading, and their own clock
///   still before the end of their last confirmation);
/// - the store's epoch never goes back, and each epoch is granted once;
/// - a candidate leads only with an epoch the store granted to it;
/// - at the end of the quiet period, a candidate leads.
///
/// With `Settings.shard`, each candidate also runs a hot-warm shard shell, and the shard's
/// invariants are checked too (`ShardLayer`, docs/simulation.md).
///
/// A run depends on its seed alone: `Outcome.digest` is the same for the same seed and settings.
public enum LeaseElectionSim {
    public struct Settings: Sendable, Hashable {
        public var configuration: LeaseConfiguration
        /// The cores' timing; the configuration's unless a test plants a wrong one.
        public var timing: ElectionTiming
        public var candidates = 3
        public var faulty: Duration = .seconds(60)
        public var quiet: Duration = .seconds(20)
        public var faults = SimFaults()
        /// How many of the last events a violation shows.
        public var traceLines = 60
        /// With a shard layer: each candidate is a hot-warm shell owning the node database's flows.
        public var shard: ShardSettings?

        public init(configuration: LeaseConfiguration = LeaseConfiguration()) {
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
        /// Epochs the store granted.
        public var terms: Int
        /// Faults injected.
        public var faults: Int
        /// How many of the last events a violation shows.
        public var traceLines = 60
        /// With a shard layer: flows finished, and flows parked as poison.
        public var flowsDone: Int
        public var flowsParked: Int
        public var violation: SimViolation?
    }

    /// Runs one seed. `observe` sees every event's trace line (true time in nanoseconds, then the
    /// event) as it happens: a replay shows the run step by step.
    public static func run(seed: UInt64, settings: Settings = Settings(), observe: ((String) -> Void)? = nil) -> Outcome {
        var world = LeaseElectionWorld(seed: seed, settings: settings)
        world.trace.observe = observe
        return world.run()
    }
}
