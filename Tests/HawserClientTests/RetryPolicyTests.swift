import HawserClient
import Testing

@Suite(.timeLimit(.minutes(10))) struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 5, baseBackoff: .milliseconds(100), maxBackoff: .seconds(1))

    @Test func backoffDoublesUpToTheCap() {
        #expect(policy.backoff(beforeRetry: 1, jitter: 0.999_999_999) <= .milliseconds(100))
        #expect(policy.backoff(beforeRetry: 1, jitter: 0) == .milliseconds(50))
        #expect(policy.backoff(beforeRetry: 2, jitter: 0) == .milliseconds(100))
        #expect(policy.backoff(beforeRetry: 3, jitter: 0) == .milliseconds(200))
        #expect(policy.backoff(beforeRetry: 4, jitter: 0) == .milliseconds(400))
        #expect(policy.backoff(beforeRetry: 5, jitter: 0) == .milliseconds(500))
        #expect(policy.backoff(beforeRetry: 6, jitter: 0) == .milliseconds(500))
        #expect(policy.backoff(beforeRetry: 100, jitter: 0) == .milliseconds(500))
        #expect(policy.backoff(beforeRetry: 100, jitter: 0.5) == .milliseconds(750))
    }

    @Test func jitterStaysWithinHalfToFullStep() {
        for retry in 1...10 {
            let step = min(Double(100 << (retry - 1)), 1000)
            for _ in 0..<50 {
                let pause = policy.backoff(beforeRetry: retry)
                let ms = Double(pause.components.seconds) * 1000 + Double(pause.components.attoseconds) / 1e15
                #expect(ms >= step / 2 - 0.001 && ms < step + 0.001)
            }
        }
    }

    @Test func degenerateValues() {
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
        #expect(RetryPolicy(baseBackoff: .zero).backoff(beforeRetry: 3, jitter: 0.5) == .zero)
        #expect(RetryPolicy.none.maxAttempts == 1)
    }
}
