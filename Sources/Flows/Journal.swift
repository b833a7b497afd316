/// One completed effect of a flow: its position in the flow's sequence of effects, what was asked
/// (`kind` and `descriptor`, compared on replay) and the result the flow received (JSON).
public struct JournalEntry: Sendable, Equatable, Codable {
    public var sequence: Int
    public var kind: String
    public var descriptor: String
    public var result: [UInt8]

    public init(sequence: Int, kind: String, descriptor: String, result: [UInt8]) {
        self.sequence = sequence
        self.kind = kind
        self.descriptor = descriptor
        self.result = result
    }
}

/// The kinds of effect the context journals. The kind and the descriptor together must be
/// deterministic functions of the flow's arguments and earlier results.
public enum EffectKind {
    public static let now = "now"
    public static let random = "random"
    public static let sleep = "sleep"
    public static let progress = "progress"
    public static let patch = "patch"
    public static let subFlow = "subflow"
    public static let notarise = "notarise"
    public static let sign = "sign"
    public static let external = "external"
    public static let initiate = "initiate"
    public static let send = "send"
    public static let close = "close"
    public static let receive = "receive"
    public static let record = "record"
}
