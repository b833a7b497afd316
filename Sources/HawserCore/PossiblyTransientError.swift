/// A store's or a service's error that says whether it may go away by itself (a database that
/// cannot be reached now). The flow hospital treats a transient one as a `TransientFlowError` (a
/// flow that meets it reading the vault is retried, not parked as if it had met a bug); a notary
/// replica that meets one reading or applying its log tries again rather than stop.
public protocol PossiblyTransientError: Error {
    var isTransient: Bool { get }
}
