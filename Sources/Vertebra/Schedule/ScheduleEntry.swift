import Foundation
import VertebraXML

/// One entry of a coordinator's schedule (`vertebra coordinator --schedule PATH`): when, and the
/// job it submits then.
public struct ScheduleEntry: Sendable {
    /// What a restarted coordinator does about runs that fell while it was down.
    public enum Missed: String, Sendable {
        /// Submit one job for them, at once (however many were missed).
        case runOnce = "run"
        /// Skip them; the entry goes on from its next time.
        case skip
    }

    public var cron: CronExpression
    public var path: Resource
    public var arguments: [XElement]
    public var missed: Missed
    /// Names the entry in the journal (its last run is kept under it): the line's text, so an
    /// edited line is a new entry that starts from now.
    public var id: String

    public init(cron: CronExpression, path: Resource, arguments: [XElement], missed: Missed = .runOnce, id: String) {
        self.cron = cron
        self.path = path
        self.arguments = arguments
        self.missed = missed
        self.id = id
    }
}
