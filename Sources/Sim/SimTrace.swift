/// What a simulation did, line by line: a digest of every line (two runs of one seed must give
/// the same), the last lines kept to explain a violation, and the first violation. Every world
/// records through it.
struct SimTrace {
    private(set) var digest: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a offset basis
    private var recent: [String] = []
    private var next = 0
    let keep: Int
    /// Sees every line as it is recorded (a replay prints them).
    var observe: ((String) -> Void)?
    /// The first broken invariant; a run stops at it.
    private(set) var violation: SimViolation?

    init(keep: Int = 60) { self.keep = keep }

    /// Records `line` at true time `now` (nanoseconds).
    mutating func record(_ line: String, at now: Int64) {
        let text = "\(now) \(line)"
        append(text)
        observe?(text)
    }

    /// Records the first broken invariant of seed `seed`'s run, with the lines that led to it.
    mutating func fail(_ what: String, seed: UInt64, at now: Int64) {
        guard violation == nil else { return }
        record("VIOLATION: \(what)", at: now)
        violation = SimViolation(seed: seed, atNs: now, what: what, trace: lastLines)
    }

    private mutating func append(_ line: String) {
        for byte in line.utf8 {
            digest = (digest ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        digest = (digest ^ 0x0A) &* 0x0000_0100_0000_01B3
        if recent.count < keep {
            recent.append(line)
        } else {
            recent[next] = line
        }
        next = (next + 1) % keep
    }

    /// The kept lines, oldest first.
    var lastLines: [String] {
        recent.count < keep ? recent : Array(recent[next...] + recent[..<next])
    }
}

/// A broken invariant: what, when (true time), in which run, and the trace leading to it.
public struct SimViolation: Error, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var atNs: Int64
    public var what: String
    public var trace: [String]

    public var description: String {
        "seed \(seed), at \(Double(atNs) / 1e9) s: \(what)\nlast events:\n" + trace.joined(separator: "\n")
    }
}
