import Crypto
import Foundation

/// The machine's Ed25519 verify ceiling, measured in the run it is compared with: every core
/// verifying signatures at once, on threads of their own (not Swift's cooperative pool), for a
/// few seconds. A notary must verify one signature per request, so no notary on this machine can
/// answer faster than this; `hawser bench notary` prints its throughput as a share of it.
struct VerifyCeiling: Sendable {
    var cores: Int
    var perSecond: Double

    static func measure(seconds: Double) async -> VerifyCeiling {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let key = Curve25519.Signing.PrivateKey()
        let publicKey = key.publicKey
        let message = [UInt8](repeating: 0x5a, count: 64)
        let signature = try! key.signature(for: message)
        var total = 0.0
        await withTaskGroup(of: Double.self) { group in
            for core in 0..<cores {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let thread = Thread {
                            continuation.resume(returning: BenchCommand.Verify.rate(seconds: seconds) {
                                publicKey.isValidSignature(signature, for: message)
                            })
                        }
                        thread.name = "hawser-verify-\(core)"
                        thread.start()
                    }
                }
            }
            for await rate in group { total += rate }
        }
        return VerifyCeiling(cores: cores, perSecond: total)
    }

    /// `throughput` as a share of the ceiling, in percent.
    func percent(of throughput: Double) -> Double { perSecond > 0 ? throughput / perSecond * 100 : 0 }

    var text: String { "verify ceiling        \(String(format: "%.0f", perSecond)) verifications/s (Ed25519, \(cores) cores at once)" }
}
