import Natter
import VertebraXML

/// A registered operation, type-erased: decodes its arguments, then runs.
struct OperationHandler: Sendable {
    typealias Run = @Sendable (JobContext, ResultStream<AnyEncodableResult>) async throws -> Void

    let path: Resource
    let isRetryable: Bool
    let defaultDeadline: Duration?
    /// Decodes the `op`'s arguments; a mismatch is a `bad-request` naming the field.
    let prepare: @Sendable ([XElement]) throws -> Run

    static func single<Op: VertebraOperation>(
        _ type: Op.Type, _ handler: @escaping @Sendable (Op, JobContext) async throws -> Op.Result
    ) -> OperationHandler {
        make(type) { operation, context, results in
            try await results.yield(AnyEncodableResult(try await handler(operation, context)))
        }
    }

    static func streaming<Op: VertebraOperation>(
        _ type: Op.Type,
        _ handler: @escaping @Sendable (Op, JobContext, ResultStream<Op.Result>) async throws -> Void
    ) -> OperationHandler {
        make(type) { operation, context, results in
            try await handler(operation, context, ResultStream<Op.Result>(sink: results.sink))
        }
    }

    private static func make<Op: VertebraOperation>(
        _ type: Op.Type,
        _ body: @escaping @Sendable (Op, JobContext, ResultStream<AnyEncodableResult>) async throws -> Void
    ) -> OperationHandler {
        OperationHandler(path: Op.path, isRetryable: Op.isRetryable, defaultDeadline: Op.defaultDeadline) { arguments in
            let operation: Op
            do {
                operation = try TypedValueDecoder().decodeFields(Op.self, from: arguments)
            } catch {
                throw StanzaError.badRequest("arguments of \(Op.path) do not decode: \(error)")
            }
            return { context, results in try await body(operation, context, results) }
        }
    }
}

/// Any encodable result, so single and streaming handlers share one result path.
struct AnyEncodableResult: Encodable, Sendable {
    private let encodeValue: @Sendable (any Encoder) throws -> Void

    init<Value: Encodable & Sendable>(_ value: Value) {
        encodeValue = { try value.encode(to: $0) }
    }

    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
