import Natter
import Testing
import VertebraXML

@testable import Vertebra

/// The queue of `single` jobs waiting for a worker slot, driven without clock or sockets.
@Suite struct SlotQueueTests {
    let start = ContinuousClock.now
    let resize: Resource = "/image/resize"

    func jid(_ name: String) -> JID {
        guard let jid = JID(local: name, domain: "example.org", resource: "r") else { preconditionFailure("test JID") }
        return jid
    }

    func registry(_ workers: [(String, Int)], operation: Resource = "/image/resize") -> WorkerRegistry {
        var registry = WorkerRegistry()
        for (name, capacity) in workers {
            registry.advertise(jid(name), Advertisement(operations: [operation], resources: [:], ttl: 60, capacity: capacity), now: start)
        }
        return registry
    }

    func waiter(_ token: String, excluded: Set<JID> = [], since offset: Duration = .zero, deadline: Duration? = nil) -> SlotQueue.Waiter {
        SlotQueue.Waiter(token: token, path: resize, excluded: excluded, since: start + offset, deadline: deadline.map { start + $0 })
    }

    @Test func slotsGoToWaitersInArrivalOrderAndAreReservedAtOnce() {
        var registry = registry([("w1", 2), ("w2", 1)])
        var queue = SlotQueue()
        for index in 0..<5 { queue.enqueue(waiter("job\(index)")) }
        let granted = queue.grant(&registry, now: start)
        #expect(granted.map(\.0) == ["job0", "job1", "job2"])
        #expect(Set(granted.map(\.1)) == [.worker(jid("w1")), .worker(jid("w2"))])
        #expect(queue.count == 2)
        #expect(registry.entry(jid("w1"))?.outstanding == 2)
        #expect(registry.entry(jid("w2"))?.outstanding == 1)
        // Nothing is free: nobody else is woken.
        #expect(queue.grant(&registry, now: start).isEmpty)
        // One slot frees: exactly the next job in line gets it.
        registry.adjustOutstanding(jid("w2"), by: -1)
        #expect(queue.grant(&registry, now: start).map(\.0) == ["job3"])
        #expect(queue.count == 1)
    }

    @Test func aJobSkipsTheWorkersThatRefusedItAndKeepsItsPlace() {
        var registry = registry([("w1", 1), ("w2", 1)])
        registry.adjustOutstanding(jid("w2"), by: 1)
        var queue = SlotQueue()
        queue.enqueue(waiter("refusedByW1", excluded: [jid("w1")]))
        queue.enqueue(waiter("next"))
        let granted = queue.grant(&registry, now: start)
        #expect(granted.map(\.0) == ["next"])
        #expect(granted.first?.1 == .worker(jid("w1")))
        // When w2 frees, the job that waited first gets it.
        registry.adjustOutstanding(jid("w2"), by: -1)
        #expect(queue.grant(&registry, now: start).first?.1 == .worker(jid("w2")))
    }

    @Test func aJobEveryCapableWorkerRefusedBacksOff() {
        var registry = registry([("w1", 1)])
        var queue = SlotQueue()
        queue.enqueue(waiter("job", excluded: [jid("w1")]))
        #expect(queue.grant(&registry, now: start).first?.1 == .allRefused)
        #expect(queue.isEmpty)
    }

    @Test func busyWorkersNeverFailAWaitingJob() {
        let registry = registry([("w1", 1)])
        var busy = registry
        busy.adjustOutstanding(jid("w1"), by: 1)
        var queue = SlotQueue()
        queue.enqueue(waiter("job"))
        #expect(queue.sweep(busy, now: start + .seconds(3600), workerWait: .seconds(1)).isEmpty)
        #expect(queue.count == 1)
    }

    @Test func withoutAnyCapableWorkerAJobFailsAfterWorkerWait() {
        let nobody = WorkerRegistry()
        var queue = SlotQueue()
        queue.enqueue(waiter("early"))
        queue.enqueue(waiter("late", since: .seconds(20)))
        #expect(queue.sweep(nobody, now: start + .seconds(10), workerWait: .seconds(30)).isEmpty)
        let ended = queue.sweep(nobody, now: start + .seconds(41), workerWait: .seconds(30))
        #expect(ended.map(\.0) == ["early"])
        #expect(ended.first?.1 == .noWorker)
        // A worker appears: the clock for the other job stops.
        let one = registry([("w1", 1)])
        var busy = one
        busy.adjustOutstanding(jid("w1"), by: 1)
        #expect(queue.sweep(busy, now: start + .seconds(45), workerWait: .seconds(30)).isEmpty)
        #expect(queue.sweep(nobody, now: start + .seconds(60), workerWait: .seconds(30)).isEmpty)
        #expect(queue.sweep(nobody, now: start + .seconds(91), workerWait: .seconds(30)).map(\.1) == [.noWorker])
    }

    @Test func deadlinesEndTheWait() {
        var queue = SlotQueue()
        queue.enqueue(waiter("quick", deadline: .milliseconds(500)))
        queue.enqueue(waiter("patient"))
        let ended = queue.sweep(registry([("w1", 1)]), now: start + .seconds(1), workerWait: .seconds(30))
        #expect(ended.map(\.0) == ["quick"])
        #expect(ended.first?.1 == .deadline)
    }

    @Test func aCancelledJobLeavesTheQueue() {
        var queue = SlotQueue()
        queue.enqueue(waiter("a"))
        queue.enqueue(waiter("b"))
        #expect(queue.remove("a")?.token == "a")
        #expect(queue.remove("a") == nil)
        var registry = registry([("w1", 4)])
        #expect(queue.grant(&registry, now: start).map(\.0) == ["b"])
    }

    @Test func twentyThousandWaitersAreGrantedInOrder() {
        var registry = registry([("w1", 4), ("w2", 4)])
        var queue = SlotQueue()
        for index in 0..<20_000 { queue.enqueue(waiter("job\(index)")) }
        var order: [String] = []
        while !queue.isEmpty {
            let granted = queue.grant(&registry, now: start)
            order += granted.map(\.0)
            for case (_, .worker(let worker)) in granted { registry.adjustOutstanding(worker, by: -1) }
        }
        #expect(order == (0..<20_000).map { "job\($0)" })
    }

    @Test func attemptsCountedBeforeAWorkerIsKnownCountOnceItIs() {
        var registry = WorkerRegistry()
        // Resumed at a start, before the worker's advertisement or probe.
        registry.adjustOutstanding(jid("w1"), by: 1)
        registry.adjustOutstanding(jid("w1"), by: 1)
        registry.advertise(jid("w1"), Advertisement(operations: [resize], resources: [:], ttl: 60, capacity: 2), now: start)
        #expect(registry.entry(jid("w1"))?.outstanding == 2)
        var queue = SlotQueue()
        queue.enqueue(waiter("queued"))
        #expect(queue.grant(&registry, now: start).isEmpty, "a full worker got another job")
        // It went away and came back: what it runs still counts.
        registry.remove(jid("w1"))
        registry.advertise(jid("w1"), Advertisement(operations: [resize], resources: [:], ttl: 60, capacity: 2), now: start)
        #expect(registry.entry(jid("w1"))?.outstanding == 2)
        registry.adjustOutstanding(jid("w1"), by: -1)
        #expect(queue.grant(&registry, now: start).map(\.0) == ["queued"])
    }
}

@Suite struct DispatchExtensionTests {
    @Test func deadlinesKeepTheirMilliseconds() throws {
        for deadline: Duration in [.milliseconds(500), .seconds(12), .milliseconds(1), .milliseconds(90_061)] {
            let element = try #require(DispatchExtension.element(targets: [], deadline: deadline, retryable: true))
            let op = XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(element)])
            let parsed = try DispatchExtension.parse(op)
            #expect(parsed.deadline == deadline)
            #expect(parsed.retryable == true)
        }
        #expect(DispatchExtension.secondsText(.seconds(12)) == "12")
        #expect(DispatchExtension.secondsText(.milliseconds(500)) == "0.500")
    }

    @Test(arguments: ["0", "-1", "abc", "nan", "inf", "9999999999999999", "0.0001", ""])
    func outOfRangeDeadlinesAreRefusedWithAClearError(text: String) {
        let element = XElement("dispatch", namespace: DispatchExtension.namespace, attributes: [XAttribute("deadline", text)])
        let op = XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(element)])
        #expect {
            try DispatchExtension.parse(op)
        } throws: { error in
            (error as? StanzaError)?.condition == .badRequest && (error as? StanzaError)?.text?.contains("deadline") == true
        }
    }

    @Test func detachRoundTripsAndAnythingButABooleanIsRefused() throws {
        let element = try #require(DispatchExtension.element(targets: [], deadline: nil, retryable: nil, detach: true))
        #expect(element[attribute: "detach"] == "1")
        #expect(try DispatchExtension.parse(XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(element)])).detach)
        #expect(DispatchExtension.element(targets: [], deadline: nil, retryable: nil) == nil, "no extension without a reason")
        for (text, expected) in [("0", false), ("false", false), ("true", true)] {
            let dispatch = XElement("dispatch", namespace: DispatchExtension.namespace, attributes: [XAttribute("detach", text)])
            #expect(try DispatchExtension.parse(XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(dispatch)])).detach == expected)
        }
        let bad = XElement("dispatch", namespace: DispatchExtension.namespace, attributes: [XAttribute("detach", "yes")])
        #expect {
            try DispatchExtension.parse(XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(bad)]))
        } throws: { error in
            (error as? StanzaError)?.condition == .badRequest && (error as? StanzaError)?.text?.contains("detach") == true
        }
    }

    @Test func repeatedOrTooManyTargetsAreRefused() throws {
        let jid = XElement("jid", namespace: DispatchExtension.namespace, text: "w1@example.org/r")
        let repeated = XElement("dispatch", namespace: DispatchExtension.namespace, children: [.element(jid), .element(jid)])
        #expect(throws: StanzaError.self) {
            try DispatchExtension.parse(XElement("op", namespace: XMLNamespace.vertebraAPI, children: [.element(repeated)]))
        }
    }
}

@Suite struct AccessListTests {
    @Test func serveAndSubmitRulesAreSeparate() throws {
        let acl = try AccessList(parsing: """
            # submitters
            alice@example.org /image
            submit *@ops.example.org /exec
            serve w1@example.org /image/resize   # a worker
            serve *@workers.example.org /
            """)
        func jid(_ text: String) throws -> JID { try #require(JID(text)) }
        #expect(acl.allows(try jid("alice@example.org/x"), "/image/crop"))
        #expect(!acl.allowsServing(try jid("alice@example.org/x"), "/image/crop"))
        #expect(acl.allows(try jid("bob@ops.example.org/x"), "/exec/run"))
        #expect(acl.allowsServing(try jid("w1@example.org/w"), "/image/resize"))
        #expect(!acl.allowsServing(try jid("w1@example.org/w"), "/image/crop"))
        #expect(!acl.allows(try jid("w1@example.org/w"), "/image/resize"))
        #expect(acl.allowsServing(try jid("any@workers.example.org/w"), "/files/checksum"))
        #expect(!acl.allowsServing(try jid("mallory@example.org/m"), "/image/resize"))
    }

    @Test(arguments: ["serve", "serve w1@example.org", "serve w1@example.org image", "serve not a jid@@ /x"])
    func badServeLinesNameTheLine(line: String) {
        #expect(throws: VertebraError.self) { try AccessList(parsing: "alice@example.org /x\n" + line) }
    }

    /// A rule for one resource would cover every resource of the account: refused, saying so.
    @Test(arguments: ["serve w2@example.org/w2 /x", "alice@example.org/laptop /x", "submit alice@example.org/laptop /x"])
    func aFullJIDIsRefusedNotWidened(line: String) throws {
        let error = try #require(throws: VertebraError.self) { try AccessList(parsing: "bob@example.org /x\n" + line) }
        #expect(error.message.contains("line 2"), "\(error.message)")
        #expect(error.message.contains("names a resource"), "\(error.message)")
    }

    @Test func anUnknownKindIsNamedAsSuch() throws {
        let error = try #require(throws: VertebraError.self) { try AccessList(parsing: "frob w1@example.org /x") }
        #expect(error.message.contains("'frob' is neither 'serve' nor 'submit'"), "\(error.message)")
    }

    /// Windows line ends: every rule is read (a CRLF file used to be one line, its rules lost).
    @Test func aCRLFFileKeepsEveryRule() throws {
        let acl = try AccessList(parsing: "serve w1@example.org /image\r\nalice@example.org /image\r\n# end\r\n")
        #expect(acl.serveRules == [AccessList.Rule(submitter: "w1@example.org", operations: ["/image"])])
        #expect(acl.rules == [AccessList.Rule(submitter: "alice@example.org", operations: ["/image"])])
    }
}
