import Testing

@testable import Vertebra

/// The worker's slots and running attempts, without a worker, handler or task.
@Suite struct AttemptTableTests {
    @Test func opsBeyondTheCapacityAreBusyUntilAHandlerEnds() {
        var table = AttemptTable<String>(capacity: 2)
        #expect(table.take(3) == [true, true, false], "a third op while two run gets a nack")
        table.start("a:1", handle: "task a")
        table.start("b:1", handle: "task b")
        table.handlerEnded("a:1")
        #expect(table.busySlots == 1)
        #expect(table.isRunning("a:1"), "its end is still being delivered")
        #expect(table.take(2) == [true, false], "the freed slot takes the next op at once")
    }

    @Test func aSlotIsFreedOnceWhateverEndsTheAttempt() {
        var table = AttemptTable<String>(capacity: 3)
        for attempt in ["a:1", "b:1", "c:1"] {
            _ = table.takeSlot()
            table.start(attempt, handle: attempt)
        }
        table.handlerEnded("a:1")
        table.handlerEnded("a:1")
        table.finish("a:1")
        #expect(table.busySlots == 2, "handler end, again, then finish: one slot")
        table.finish("b:1")
        #expect(table.busySlots == 1, "an attempt over without its handler's end frees its slot")
        table.finish("b:1")
        table.finish("unknown:1")
        table.handlerEnded("unknown:1")
        #expect(table.busySlots == 1, "unknown or finished attempts free nothing")
        #expect(table.runningCount == 1)
        #expect(table.handles == ["c:1"])
    }

    @Test func anOpNotAcceptedAfterAllGivesItsSlotBack() {
        var table = AttemptTable<String>(capacity: 1)
        #expect(table.take(1) == [true])
        table.returnSlot()
        #expect(table.take(1) == [true])
        table.returnSlot()
        table.returnSlot()
        #expect(table.busySlots == 0, "never below zero")
        #expect(table.take(2) == [true, false], "and never above the capacity")
    }

    @Test func aCapacityOfZeroOrLessRefusesEveryOp() {
        var none = AttemptTable<String>(capacity: 0)
        var negative = AttemptTable<String>(capacity: -4)
        #expect(none.take(1) == [false])
        #expect(negative.take(1) == [false])
    }

    @Test func onlyARunningAttemptCanBeCancelledAndItsEndSaysSo() {
        var table = AttemptTable<String>(capacity: 2)
        _ = table.takeSlot()
        table.start("a:1", handle: "task a")
        let unknown = table.requestCancel("z:9")
        #expect(unknown == nil, "not running here")
        #expect(!table.isCancelRequested("a:1"))
        let handle = table.requestCancel("a:1")
        #expect(handle == "task a")
        #expect(table.isCancelRequested("a:1"))
        table.finish("a:1")
        #expect(!table.isCancelRequested("a:1"), "forgotten with the attempt")
        let again = table.requestCancel("a:1")
        #expect(again == nil)
    }
}

extension AttemptTable {
    /// Takes `count` slots in turn: which ops got one.
    fileprivate mutating func take(_ count: Int) -> [Bool] {
        (0..<count).map { _ in takeSlot() }
    }
}
