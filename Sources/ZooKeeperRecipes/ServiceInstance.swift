import FoundationEssentials

/// The data of a znode is not a service instance document (zkctl exits 65 for it).
public struct ServiceInstanceError: Error, Sendable, CustomStringConvertible {
    /// One line for people, such as `not a service instance: the data is a JSON array, not an object`.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One service instance as Apache Curator's service discovery stores it in
/// `<services-root>/<name>/<id>` (DESIGN.md section 3).
///
/// The document's fields are Curator's `ServiceInstance`: `name`, `id`, `address`, `port`
/// (number or null), `sslPort` (number or null), `payload`, `registrationTimeUTC` (ms since the
/// epoch), `serviceType` (`DYNAMIC` for an ephemeral node, `STATIC` or `PERMANENT` for a
/// persistent one), `uriSpec` (`{"parts": [{"value", "variable"}, ...]}` or null) and `enabled`.
/// zkctl's metadata lives in `payload.metadata`, the place Spring Cloud ZooKeeper's
/// `ZookeeperInstance` payload keeps it. Reading is lenient: unknown fields are kept in
/// `document` (so an update writes them back) and a missing or odd field is only absent.
public struct ServiceInstance: Sendable, Hashable {
    public var name: String
    public var id: String
    public var address: String?
    public var port: Int?
    public var sslPort: Int?
    public var registrationTimeUTC: Int64?
    public var serviceType: String?
    /// Curator 5's `enabled`; true when absent (older writers).
    public var enabled: Bool
    public var metadata: JSONObject
    /// The scheme fixed in the `uriSpec` (a literal first part such as `https://`), if any.
    public var uriScheme: String?
    /// The port variable the `uriSpec` uses (`port` or `ssl-port`), if any.
    public var uriPortVariable: String?
    /// The whole document as read or written, unknown fields included.
    public var document: JSONObject

    /// The payload class Spring Cloud ZooKeeper reads metadata from.
    public static let springPayloadClass = "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance"

    // MARK: Reading

    /// Reads a document. `name` and `id` (from the znode path) fill in what the document lacks.
    /// Fails (with `ServiceInstanceError`) only when the data is not a JSON object.
    public static func parse(_ data: Data, name: String, id: String) throws -> ServiceInstance {
        let value: JSONValue
        do {
            value = try JSONValue.parse(data)
        } catch {
            throw ServiceInstanceError("not a service instance: \(error)")
        }
        guard case .object(let doc) = value else {
            throw ServiceInstanceError("not a service instance: the data is a JSON \(value.typeName), not an object")
        }
        return ServiceInstance(document: doc, name: name, id: id)
    }

    public init(document doc: JSONObject, name: String, id: String) {
        self.document = doc
        self.name = doc["name"]?.stringValue ?? name
        self.id = doc["id"]?.stringValue ?? id
        self.address = doc["address"]?.stringValue
        self.port = Self.portValue(doc["port"])
        self.sslPort = Self.portValue(doc["sslPort"])
        self.registrationTimeUTC = doc["registrationTimeUTC"].flatMap(Self.int64Value)
        self.serviceType = doc["serviceType"]?.stringValue
        self.enabled = doc["enabled"]?.boolValue ?? true
        if let payload = doc["payload"]?.objectValue, let meta = payload["metadata"]?.objectValue {
            self.metadata = meta
        } else {
            self.metadata = JSONObject()
        }
        let spec = Self.uriSpecSummary(doc["uriSpec"])
        self.uriScheme = spec.scheme
        self.uriPortVariable = spec.portVariable
    }

    /// A port written as a number (or, leniently, as a numeric string); anything else is absent.
    public static func portValue(_ value: JSONValue?) -> Int? {
        switch value {
        case .number?: return value?.intValue
        case .string(let s)?: return Int(s)
        default: return nil
        }
    }

    public static func int64Value(_ value: JSONValue) -> Int64? {
        if let i = value.intValue { return Int64(i) }
        if case .string(let s) = value { return Int64(s) }
        return nil
    }

    /// The literal scheme and the port variable of a Curator `uriSpec`.
    ///
    /// Curator splits a template such as `https://{address}:{ssl-port}` into parts: literal text
    /// (`variable: false`) and variables (`variable: true`). A literal scheme is either a first
    /// part `https://` or a first part `https` followed by `://`.
    public static func uriSpecSummary(_ value: JSONValue?) -> (scheme: String?, portVariable: String?) {
        guard let parts = value?.objectValue?["parts"]?.arrayValue else { return (nil, nil) }
        let pieces: [(value: String, variable: Bool)] = parts.compactMap { part in
            guard let o = part.objectValue, let v = o["value"]?.stringValue else { return nil }
            return (v, o["variable"]?.boolValue ?? false)
        }
        var scheme: String? = nil
        if let first = pieces.first, !first.variable {
            if first.value.hasSuffix("://") {
                scheme = String(first.value.dropLast(3))
            } else if pieces.count > 1, !pieces[1].variable, pieces[1].value.hasPrefix("://") {
                scheme = first.value
            }
            if let s = scheme, schemeProblem(s) != nil { scheme = nil }
        }
        let portVariable = pieces.first { $0.variable && ($0.value == "port" || $0.value == "ssl-port") }?.value
        return (scheme, portVariable)
    }

    // MARK: Derived values

    /// True when the payload has Spring Cloud ZooKeeper's shape (an object whose `metadata` is an
    /// object, whatever its class), or there is none: `metadata` says all there is.
    public var hasSpringShapedPayload: Bool {
        switch document["payload"] {
        case nil, .null?: return true
        case .object(let o)?: return o["metadata"]?.objectValue != nil
        default: return false
        }
    }

    /// True for `DYNAMIC` (and Curator's `DYNAMIC_SEQUENTIAL`): the instance lives as long as its
    /// session.
    public var isDynamic: Bool { serviceType?.hasPrefix("DYNAMIC") ?? false }

    /// The scheme the URL uses: the one fixed at registration (in the `uriSpec`), else `https`
    /// when only an SSL port is set, else `http`.
    public var scheme: String {
        uriScheme ?? ((port == nil && sslPort != nil) ? "https" : "http")
    }

    /// `{scheme}://{address}:{port}`, or nil without an address or any port. The port is the one
    /// the `uriSpec` names; without one, the SSL port for `https` and the plain port otherwise,
    /// each falling back to the other.
    public var url: String? {
        guard let address, !address.isEmpty else { return nil }
        let chosen: Int?
        switch uriPortVariable {
        case "ssl-port": chosen = sslPort ?? port
        case "port": chosen = port ?? sslPort
        default: chosen = scheme == "https" ? (sslPort ?? port) : (port ?? sslPort)
        }
        guard let chosen else { return nil }
        let host = address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
        return "\(scheme)://\(host):\(chosen)"
    }

    /// A summary of the instance as JSON (what `zkctl service discover -o json` prints for it).
    public func summaryJSON(ephemeral: Bool?) -> JSONValue {
        var o = JSONObject()
        o["id"] = .string(id)
        o["name"] = .string(name)
        o["address"] = address.map { .string($0) } ?? .null
        o["port"] = port.map { .int($0) } ?? .null
        o["sslPort"] = sslPort.map { .int($0) } ?? .null
        o["serviceType"] = serviceType.map { .string($0) } ?? .null
        o["registrationTimeUTC"] = registrationTimeUTC.map { .number(String($0)) } ?? .null
        o["enabled"] = .bool(enabled)
        if let ephemeral { o["ephemeral"] = .bool(ephemeral) }
        o["metadata"] = .object(metadata)
        o["url"] = url.map { .string($0) } ?? .null
        o["payload"] = document["payload"] ?? .null
        return .object(o)
    }

    // MARK: Writing

    /// What `service register` writes.
    public struct Registration: Sendable, Hashable {
        public var name: String
        public var id: String
        public var address: String
        public var port: Int
        public var sslPort: Int?
        /// `--scheme`; nil for the default rule.
        public var scheme: String?
        public var metadata: JSONObject
        /// `DYNAMIC` (an ephemeral node) or `STATIC` (a persistent one).
        public var dynamic: Bool
        public var registrationTimeUTC: Int64
        /// What goes into `payload`.
        public var payload: Payload

        /// The instance's `payload`: who can read it depends on it, since Curator's
        /// `JsonInstanceSerializer` resolves the payload's `@class` to a Java class (a reader
        /// without that class on its classpath cannot read the instance at all).
        public enum Payload: Sendable, Hashable {
            /// Spring Cloud ZooKeeper's shape `{"@class": NAME, "id", "name", "metadata"}`, with
            /// `springPayloadClass` by default or another class of that shape.
            case spring(className: String)
            /// This JSON value, written as it is (`metadata` is not used).
            case verbatim(JSONValue)
            /// `"payload": null`, which every Curator reader accepts.
            case none
        }

        public init(name: String, id: String, address: String, port: Int, sslPort: Int?, scheme: String?,
                    metadata: JSONObject, dynamic: Bool, registrationTimeUTC: Int64,
                    payload: Payload = .spring(className: ServiceInstance.springPayloadClass)) {
            self.payload = payload
            self.name = name
            self.id = id
            self.address = address
            self.port = port
            self.sslPort = sslPort
            self.scheme = scheme
            self.metadata = metadata
            self.dynamic = dynamic
            self.registrationTimeUTC = registrationTimeUTC
        }

        /// The scheme fixed in the written `uriSpec`: `--scheme`, else `http` (the default rule
        /// picks `https` only when there is no plain port, and PORT is required).
        public var effectiveScheme: String { scheme ?? "http" }

        /// The Curator `uriSpec` for `S://{address}:{port}` (or `{ssl-port}` when the scheme is
        /// `https` and an SSL port is set). The scheme is written as literal text, so Curator,
        /// Spring and zkctl all build the same URL from it.
        public var uriSpec: JSONValue {
            let portVariable = (effectiveScheme.lowercased() == "https" && sslPort != nil) ? "ssl-port" : "port"
            func part(_ value: String, _ variable: Bool) -> JSONValue {
                .object(JSONObject([("value", .string(value)), ("variable", .bool(variable))]))
            }
            return .object(JSONObject([("parts", .array([
                part(effectiveScheme + "://", false), part("address", true), part(":", false), part(portVariable, true),
            ]))]))
        }

        /// The document to write. When `existing` is given (registering the same id again), its
        /// field order, its unknown fields and its payload's other fields are kept.
        public func document(updating existing: JSONObject? = nil) -> JSONObject {
            var doc = existing ?? JSONObject()
            doc["name"] = .string(name)
            doc["id"] = .string(id)
            doc["address"] = .string(address)
            doc["port"] = .int(port)
            doc["sslPort"] = sslPort.map { .int($0) } ?? .null
            switch payload {
            case .spring(let className):
                // A payload object already there (perhaps another program's class) keeps
                // everything but its metadata (and its class, when one other than Spring's
                // default is asked for); a new one is Spring's shape.
                var object = existing?["payload"]?.objectValue ?? JSONObject([
                    ("@class", .string(className)), ("id", .string(id)), ("name", .string(name)),
                ])
                if className != ServiceInstance.springPayloadClass || object["@class"] == nil {
                    object["@class"] = .string(className)
                }
                object["metadata"] = .object(metadata)
                doc["payload"] = .object(object)
            case .verbatim(let value):
                doc["payload"] = value
            case .none:
                doc["payload"] = .null
            }
            doc["registrationTimeUTC"] = .number(String(registrationTimeUTC))
            doc["serviceType"] = .string(dynamic ? "DYNAMIC" : "STATIC")
            doc["uriSpec"] = uriSpec
            doc["enabled"] = .bool(true)
            return doc
        }
    }

    // MARK: Validation

    /// Why `value` cannot be a service name or instance id (one path segment), or nil.
    ///
    /// The rule: 1 to 255 bytes of ASCII letters, digits, `.`, `_`, `:` and `-`, or non-ASCII
    /// letters, digits and combining marks; not `.` or `..`. So no `/`, no spaces, no control
    /// characters.
    public static func segmentProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value == "." || value == ".." { return "must not be '.' or '..'" }
        if value.utf8.count > 255 { return "must be at most 255 bytes" }
        for scalar in value.unicodeScalars where !segmentAllows(scalar) {
            if scalar == "/" { return "must not contain '/'" }
            if scalar.properties.generalCategory == .control { return "must not contain control characters" }
            if scalar.properties.isWhitespace { return "must not contain spaces" }
            return "must not contain '\(Character(scalar))' (allowed: letters, digits, '.', '_', ':', '-')"
        }
        return nil
    }

    private static func segmentAllows(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (0x30...0x39).contains(v) || (0x41...0x5a).contains(v) || (0x61...0x7a).contains(v)
                || s == "." || s == "_" || s == ":" || s == "-"
        }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .nonspacingMark, .spacingMark:
            return true
        default:
            return false
        }
    }

    /// Why `value` cannot be a host, or nil: it must be non-empty, at most 255 bytes, without
    /// spaces, control characters or any of `/ ? # @`. An IPv6 address may be in brackets.
    public static func hostProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.utf8.count > 255 { return "must be at most 255 bytes" }
        for scalar in value.unicodeScalars {
            if scalar.properties.generalCategory == .control { return "must not contain control characters" }
            if scalar.properties.isWhitespace { return "must not contain spaces" }
            if "/?#@".unicodeScalars.contains(scalar) { return "must not contain '\(Character(scalar))'" }
        }
        return nil
    }

    /// A host as stored: an IPv6 address loses its brackets (`[::1]` becomes `::1`).
    public static func normalizedHost(_ value: String) -> String {
        if value.hasPrefix("[") && value.hasSuffix("]") && value.count > 2 {
            return String(value.dropFirst().dropLast())
        }
        return value
    }

    /// Why `value` cannot be a URL scheme (RFC 3986: a letter, then letters, digits, `+ - .`).
    public static func schemeProblem(_ value: String) -> String? {
        guard let first = value.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic else {
            return "must start with a letter"
        }
        for s in value.unicodeScalars.dropFirst() {
            let ok = s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "+" || s == "-" || s == ".")
            if !ok { return "must hold only letters, digits, '+', '-' and '.'" }
        }
        return nil
    }
}
