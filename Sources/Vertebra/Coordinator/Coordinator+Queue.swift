import Natter
import VertebraXML

extension Coordinator {
    /// Waits durably (the job stays `pending` in the journal) until a capable worker has a free
    /// slot, in arrival order. Fails only when no capable worker exists for `workerWait`, or the
    /// job's deadline passes.
    func waitForSlot(_ job: LiveJob, excluded: Set<JID>) async -> SlotQueue.Outcome {
        if isStopping { return .withdrawn }
        let waiter = SlotQueue.Waiter(token: job.token, path: job.path, excluded: excluded, since: clock.now, deadline: job.deadline)
        return await withCheckedContinuation { continuation in
            slotWaiters[job.token] = continuation
            slotQueue.enqueue(waiter)
            grantSlots()
            startSweeperIfNeeded()
        }
    }

    /// Gives free slots to queued jobs; called whenever capacity may have freed.
    func grantSlots() {
        guard !slotQueue.isEmpty, !holdingSlots else { return }
        for (token, outcome) in slotQueue.grant(&registry, now: clock.now) { resumeWaiter(token, outcome) }
    }

    /// Takes a job out of the queue (cancelled while it waited).
    func withdrawFromQueue(_ token: String) {
        if slotQueue.remove(token) != nil { resumeWaiter(token, .withdrawn) }
    }

    func withdrawAllFromQueue() {
        for waiter in slotQueue.removeAll() { resumeWaiter(waiter.token, .withdrawn) }
    }

    private func resumeWaiter(_ token: String, _ outcome: SlotQueue.Outcome) {
        slotWaiters.removeValue(forKey: token)?.resume(returning: outcome)
    }

    /// One task for all waiting jobs: twice a second it ends the waits that cannot go on
    /// (and grants slots freed by expiring advertisements); it stops when nobody waits.
    private func startSweeperIfNeeded() {
        guard !isSweeping else { return }
        isSweeping = true
        let clock = self.clock
        tasks.spawn { [weak self] in
            while !Task.isCancelled {
                try? await clock.sleep(for: .milliseconds(500))
                guard let self, await self.sweep() else { return }
            }
        }
    }

    /// Returns whether jobs still wait.
    private func sweep() -> Bool {
        for (token, outcome) in slotQueue.sweep(registry, now: clock.now, workerWait: options.workerWait) {
            resumeWaiter(token, outcome)
        }
        grantSlots()
        if slotQueue.isEmpty || isStopping {
            isSweeping = false
            return false
        }
        return true
    }
}
