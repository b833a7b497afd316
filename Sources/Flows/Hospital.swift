import HawserCore
import Sessions

/// The flow hospital's policy (sans-I/O): what to do with a flow whose run threw.
public struct HospitalPolicy: Sendable, Equatable {
    /// The first retry's delay; each further retry doubles it, up to `maxDelay`.
    public var initialDelay: Duration
    public var maxDelay: Duration
    /// After this many retries of a transient error the flow is parked for an operator.
    public var maxAttempts: Int

    public init(initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(60), maxAttempts: Int = 20) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    public enum Treatment: Sendable, Equatable {
        /// Run the flow again (replaying its journal) after this delay.
        case retry(after: Duration)
        /// Keep the flow for an operator, who may resume or kill it.
        case park(String)
        /// The flow failed for good with this message.
        case fail(String)
    }

    /// `attempts` counts the retries already made.
    public func treat(_ error: any Error, attempts: Int) -> Treatment {
        switch error {
        case let failure as FlowFailure:
            return .fail(failure.message)
        case let session as SessionError:
            // The counterparty's answer (or silence) will not change on a retry.
            return .fail(session.description)
        case let transient as TransientFlowError:
            guard attempts < maxAttempts else {
                return .park("still failing after \(attempts) retries: \(transient.message)")
            }
            return .retry(after: delay(attempt: attempts))
        case let transient as any PossiblyTransientError where transient.isTransient:
            guard attempts < maxAttempts else { return .park("still failing after \(attempts) retries: \(transient)") }
            return .retry(after: delay(attempt: attempts))
        case let divergence as NonDeterminismError:
            return .park(divergence.description)
        default:
            return .park("unexpected error: \(error)")
        }
    }

    /// The delay before retry number `attempt + 1`: initialDelay · 2^attempt, capped.
    public func delay(attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 0..<min(attempt, 62) {
            delay = delay * 2
            if delay >= maxDelay { return maxDelay }
        }
        return min(delay, maxDelay)
    }

    /// The longest delay: a longer one is a typing mistake, and would overflow a clock reading.
    static let longest = Duration.seconds(86_400)

    /// One sentence per invalid value; empty when all are valid.
    public var problems: [String] {
        var out = [String]()
        if initialDelay <= .zero || initialDelay > Self.longest { out.append("hospital.initialDelayMillis must be 1...86400000 (a day)") }
        if maxDelay < initialDelay || maxDelay > Self.longest {
            out.append("hospital.maxDelayMillis must be hospital.initialDelayMillis...86400000 (a day)")
        }
        if maxAttempts < 0 { out.append("hospital.maxAttempts must not be negative") }
        return out
    }
}
