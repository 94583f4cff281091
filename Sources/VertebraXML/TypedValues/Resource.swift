/// A resource: a `/`-separated path such as `/cluster/rd00`, carried on the wire as `<res>`.
///
/// Discovery matches resources by whole path components: `/cluster` covers `/cluster/rd00`,
/// but `/cluster/rd001` does not cover `/cluster/rd00` (nor the other way round).
public struct Resource: Sendable, Hashable, Comparable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    /// The path's components, without empty ones: `/a//b/` has `["a", "b"]`.
    public let components: [String]

    /// Makes a resource from a path; empty components are dropped, so `/a/b`, `a/b` and `/a/b/`
    /// are the same resource.
    public init(_ path: String) {
        components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// Makes a resource from components.
    public init(components: [String]) {
        self.components = components.filter { !$0.isEmpty }
    }

    public init(stringLiteral path: String) { self.init(path) }

    /// The canonical path, always starting with `/` (`/` for the root).
    public var path: String { "/" + components.joined(separator: "/") }

    public var description: String { path }

    /// Whether this resource equals `other` or is one of its ancestors, component by component.
    public func covers(_ other: Resource) -> Bool {
        other.components.count >= components.count
            && zip(components, other.components).allSatisfy { $0 == $1 }
    }

    /// The resource one level down.
    public func appending(_ component: String) -> Resource {
        Resource(components: components + [component])
    }

    public static func < (lhs: Resource, rhs: Resource) -> Bool { lhs.path < rhs.path }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(path)
    }
}
