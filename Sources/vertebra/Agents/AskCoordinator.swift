import ArgumentParser
import Foundation
import Natter
import Vertebra
import VertebraAgent

/// One request to the coordinator over XMPP, as the operator commands (`vertebra workers`,
/// `jobs cancel`, `jobs retry`) make it: log in (quietly, no reconnection), ask, log out.
/// Errors print as `error: ... [code]` and exit 1 (refused) or 3 (unreachable); with
/// `jsonOnError`, that object also goes to stdout with `state` (`refused` or `unknown`),
/// `error` and `code`.
func askCoordinator<T: Sendable>(
    _ connection: ConnectionOptions, coordinator: String?, resource: String, jsonOnError: [String: Any]? = nil,
    _ request: (Submitter) async throws -> T
) async throws -> T {
    var level = connection
    if level.logLevel == "info" { level.logLevel = "warning" }
    level.bootstrapLogging()
    var configuration = try connection.clientConfiguration(defaultResource: "\(resource)-\(SecureRandom.hex(bytes: 4) ?? "0")")
    configuration.reconnect.enabled = false
    let text = coordinator ?? ProcessInfo.processInfo.environment["VERTEBRA_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
        ?? "coordinator@\(configuration.jid.domain)/coordinator"
    guard let coordinatorJID = JID(text), coordinatorJID.isFull else { throw ValidationError("coordinator '\(text)' is not a full JID") }
    let submitter = Submitter(client: XMPPClient(configuration: configuration), coordinator: coordinatorJID)
    do {
        try await submitter.start()
        let answer = try await request(submitter)
        await submitter.stop()
        return answer
    } catch {
        await submitter.stop()
        let vertebraError = error as? VertebraError
        printError("error: \(vertebraError.map { "\($0.message) [\($0.code)]" } ?? "\(error)")")
        let refused = vertebraError.map { $0.code != .unreachable } ?? false
        if var object = jsonOnError {
            object["state"] = refused ? "refused" : "unknown"
            object["error"] = vertebraError?.message ?? "\(error)"
            object["code"] = vertebraError?.code.rawValue ?? VertebraError.Code.unreachable.rawValue
            printJSONLine(object)
        }
        throw ExitCode(refused ? 1 : 3)
    }
}

/// One JSON object on one line of stdout, keys sorted.
func printJSONLine(_ object: [String: Any]) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
