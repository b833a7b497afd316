import HawserCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct MailboxTests {
    @Test func takesEverythingPostedSinceItLastLookedInPostingOrder() async {
        let box = Mailbox<Int>()
        for i in 0..<5 { #expect(box.post(i)) }
        #expect(await box.takeAll() == [0, 1, 2, 3, 4])
        box.post(5)
        #expect(await box.takeAll() == [5])
    }

    @Test func aWaitingTakerGetsTheNextPost() async {
        let box = Mailbox<String>()
        let taker = Task { await box.takeAll() }
        // Whether the taker is already waiting or not, it gets the post.
        box.post("first")
        #expect(await taker.value == ["first"])
    }

    @Test func closingLetsTheTakerEmptyTheBoxThenEndsIt() async {
        let box = Mailbox<Int>()
        box.post(1)
        box.close()
        #expect(!box.post(2), "a closed box takes no more")
        #expect(await box.takeAll() == [1])
        #expect(await box.takeAll() == nil)
        let waiting = Mailbox<Int>()
        let taker = Task { await waiting.takeAll() }
        waiting.close()
        #expect(await taker.value == nil)
    }

    @Test func cancellingTheTakerEndsItsWait() async {
        let box = Mailbox<Int>()
        let taker = Task { await box.takeAll() }
        taker.cancel()
        #expect(await taker.value == nil)
        // The box itself stays open for a later taker.
        box.post(7)
        #expect(await box.takeAll() == [7])
    }
}
