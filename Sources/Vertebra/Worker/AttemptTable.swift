/// The worker's slots and the attempts running in them, without I/O or tasks: which `op` gets a
/// slot and which a `nack` (busy), when a slot is free again, which attempts a requester asked to
/// cancel, and what a status probe is told. The worker keeps each attempt's task here as its
/// `Handle`, to cancel it.
///
/// A slot is taken when an `op` is admitted (before its journal write, so two ops arriving
/// together cannot both take the last one) and freed exactly once: when the handler ends (the
/// coordinator may send the next op while this attempt's end is still being delivered), or when
/// the attempt is over without that, or when the op could not be accepted after all.
struct AttemptTable<Handle> {
    /// Jobs that may run at once.
    let capacity: Int
    /// Slots taken by ops being accepted or by running handlers.
    private(set) var busySlots = 0
    private var attempts: [String: Entry] = [:]

    private struct Entry {
        var handle: Handle
        var holdsSlot = true
        var cancelRequested = false
    }

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Takes a slot for an `op` being admitted; false when every slot is taken (the op is
    /// answered and refused with `nack`, reason busy).
    mutating func takeSlot() -> Bool {
        guard busySlots < capacity else { return false }
        busySlots += 1
        return true
    }

    /// The admitted `op` was not accepted after all (its journal write failed, or it turned out
    /// to be a repeat): its slot is free again.
    mutating func returnSlot() {
        busySlots = max(0, busySlots - 1)
    }

    /// The accepted `op`'s handler runs as `attempt` in the slot taken for it.
    mutating func start(_ attempt: String, handle: Handle) {
        attempts[attempt] = Entry(handle: handle)
    }

    /// The handler ended: its slot is free for the next op, though the attempt's end may still
    /// be on its way to the requester. Frees the slot once, however often it is called.
    mutating func handlerEnded(_ attempt: String) {
        guard attempts[attempt]?.holdsSlot == true else { return }
        attempts[attempt]?.holdsSlot = false
        returnSlot()
    }

    /// The attempt is over: forgotten, and its slot freed if the handler's end did not free it.
    mutating func finish(_ attempt: String) {
        handlerEnded(attempt)
        attempts.removeValue(forKey: attempt)
    }

    /// A requester asks to cancel `attempt`: its handle to cancel, or nil when it does not run here.
    mutating func requestCancel(_ attempt: String) -> Handle? {
        guard attempts[attempt] != nil else { return nil }
        attempts[attempt]?.cancelRequested = true
        return attempts[attempt]?.handle
    }

    /// Whether a requester asked to cancel `attempt` (its end is then `cancel`, not a failure).
    func isCancelRequested(_ attempt: String) -> Bool { attempts[attempt]?.cancelRequested ?? false }

    /// Whether `attempt` runs here (its handler, or the delivery of its end).
    func isRunning(_ attempt: String) -> Bool { attempts[attempt] != nil }

    /// Attempts running here.
    var runningCount: Int { attempts.count }

    /// Every running attempt's handle (to cancel them all when the worker stops).
    var handles: [Handle] { attempts.values.map(\.handle) }
}
