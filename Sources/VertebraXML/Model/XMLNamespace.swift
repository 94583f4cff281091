/// Namespace URIs Vertebra speaks.
public enum XMLNamespace {
    /// RFC 6120 stream namespace (`stream:stream`, `stream:features`, `stream:error`).
    public static let stream = "http://etherx.jabber.org/streams"
    /// RFC 6120 client content namespace.
    public static let client = "jabber:client"
    /// RFC 6120 server content namespace.
    public static let server = "jabber:server"
    /// The Vertebra agent API (`op`, `ack`, `data`, typed values, ...), as Vertebra 0.4 named it.
    public static let vertebraAPI = "http://xmlschema.engineyard.com/agent/api"
    /// The predefined `xml:` prefix namespace (`xml:lang`).
    public static let xml = "http://www.w3.org/XML/1998/namespace"
}
