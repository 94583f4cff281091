import Foundation
import VertebraJournal
import VertebraXML

/// Periodic jobs: each entry's last run time is journalled in the same transaction as the job
/// it submits, so a restart neither loses nor double-fires a run.
extension Coordinator {
    static let schedulePrefix = "schedule."

    func runSchedule() async {
        var last: [String: Date] = [:]
        do {
            last = try await catchUp(options.schedule)
        } catch {
            noteJournalFailure(error, "could not read or journal the schedule; it does not run", job: "-")
            return
        }
        while !isStopping && !Task.isCancelled {
            let due = options.schedule.compactMap { entry in last[entry.id].flatMap { entry.cron.next(after: $0) }.map { (entry, $0) } }
            guard let earliest = due.map(\.1).min() else { return }
            let wait = earliest.timeIntervalSince(options.wallClock())
            if wait > 0 {
                // In steps, so that a changed wall clock is noticed within a minute.
                do { try await clock.sleep(for: .milliseconds(Int64(min(wait, 60) * 1000))) } catch { return }
                continue
            }
            for (entry, time) in due where time <= options.wallClock() {
                await fire(entry, at: time)
                last[entry.id] = time
            }
        }
    }

    /// Where each entry stands after a restart: runs missed while the coordinator was down are
    /// submitted once (``ScheduleEntry/Missed/runOnce``) or skipped; a new entry starts now.
    private func catchUp(_ entries: [ScheduleEntry]) async throws -> [String: Date] {
        let stored = try await journal.meta(prefix: Self.schedulePrefix)
        let now = options.wallClock()
        var last: [String: Date] = [:]
        for entry in entries {
            let key = Self.schedulePrefix + entry.id
            guard let text = stored[key], let milliseconds = Int64(text) else {
                try await journal.write(.setMeta(key: key, value: Self.milliseconds(now)))
                last[entry.id] = now
                continue
            }
            var time = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            var latestMissed: Date?
            for _ in 0..<1_000_000 {
                guard let next = entry.cron.next(after: time), next <= now else { break }
                latestMissed = next
                time = next
            }
            last[entry.id] = latestMissed ?? time
            guard let missed = latestMissed else { continue }
            switch entry.missed {
            case .runOnce:
                logger.notice("a scheduled run was missed while the coordinator was down; running it once now", metadata: [
                    "schedule": "\(entry.id)", "missed": "\(missed)"])
                await fire(entry, at: missed)
            case .skip:
                logger.notice("skipping scheduled runs missed while the coordinator was down", metadata: [
                    "schedule": "\(entry.id)", "until": "\(missed)"])
                try await journal.write(.setMeta(key: key, value: Self.milliseconds(missed)))
            }
        }
        return last
    }

    /// Submits the entry's job for its run at `time`, journalled with the entry's new last run.
    private func fire(_ entry: ScheduleEntry, at time: Date) async {
        guard let token = JobToken.newJob() else { return }
        let spec = JobSpec(token: token.job, path: entry.path, arguments: entry.arguments, scope: .single, targets: [], deadline: nil, retryable: nil, submitter: nil)
        do {
            let job = try prepare(spec)
            try await journal.write([job.record, .setMeta(key: Self.schedulePrefix + entry.id, value: Self.milliseconds(time))])
            start(job, followed: false)
            logger.info("scheduled job submitted", metadata: ["job": "\(token.job)", "schedule": "\(entry.id)", "for": "\(time)"])
        } catch {
            noteJournalFailure(error, "could not submit a scheduled job", job: token.job)
        }
    }

    private static func milliseconds(_ date: Date) -> String {
        String(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }
}
