import Synchronization
import ZooKeeper
import ZooKeeperRecipes
#if canImport(Glibc)
import FoundationEssentials
import Glibc
#endif

extension CommandTable {
    static let serviceCommands: [CommandSpec] = [serviceCommand]

    static let serviceCommand = CommandSpec(
        "service", summary: "register and discover service instances (Apache Curator compatible)",
        description: """
        Service instances live at <services-root>/<name>/<id> (default root /services) as Apache
        Curator service-discovery JSON, so that Java services registered through Curator or Spring
        Cloud ZooKeeper show up here and zkctl's registrations show up there. zkctl keeps its
        metadata in payload.metadata (Spring Cloud ZooKeeper's ZookeeperInstance payload).

        Service names and instance ids are one path segment each: 1 to 255 bytes of letters,
        digits, '.', '_', ':' and '-' (non-ASCII letters and digits too), and not '.' or '..'.
        """,
        examples: [
            "zkctl service register backend localhost 8000 --metadata '{\"version\": \"1.0\"}'",
            "zkctl service discover backend",
            "zkctl service list",
        ],
        subcommands: [serviceRegister, serviceDiscover, serviceList, serviceDeregister])

    enum ServiceRegisterOptions {
        static let metadata = Option<String?>("metadata", value: "JSON", type: .json, help: "a JSON object stored as payload.metadata")
        static let id = Option<String?>("id", value: "ID", help: "the instance id (default: a random UUID)")
        static let sslPort = Option<Int?>("ssl-port", value: "N", range: 1...65535, help: "the instance's SSL port")
        static let scheme = Option<String?>("scheme", value: "S", help: "the URL scheme clients use (default http)")
        static let ephemeral = Option<Bool>(flag: "ephemeral", help: "register an ephemeral instance held while zkctl (or -- CMD) runs")
        static let payload = Option<String?>("payload", value: "JSON", type: .json, help: "write this JSON as the payload, verbatim (instead of Spring's with --metadata)")
        static let payloadClass = Option<String?>("payload-class", value: "NAME", help: "Spring's payload shape under this Java class name (its \"@class\")")
        static let noPayload = Option<Bool>(flag: "no-payload", help: "write \"payload\": null, which every Curator reader accepts")
    }

    static let serviceRegister = CommandSpec(
        "register", summary: "register an instance of a service",
        description: """
        Writes the instance document at <services-root>/NAME/ID and prints the id (with -o json,
        the document). Without --ephemeral the instance is persistent (serviceType STATIC) and
        stays until 'zkctl service deregister'. Registering the same id again updates it, keeping
        fields other programs added.

        With --ephemeral the instance is an ephemeral node (serviceType DYNAMIC) and zkctl stays in
        the foreground holding the session: SIGINT or SIGTERM removes the instance at once, and
        after a session expiry zkctl opens a new session and registers again. If zkctl is killed
        outright, the server removes the instance when the session times out (--timeout, at
        least 4s).

        With --ephemeral -- CMD ARGS..., zkctl runs CMD as a sidecar: the instance is registered
        before CMD starts and stays while it runs; SIGINT and SIGTERM reach CMD once (a Ctrl-C
        at the terminal directly, a signal sent to zkctl passed on), and CMD then gets 5 seconds
        (at most a third of the session timeout) to exit before SIGKILL; when CMD exits the
        instance is removed and zkctl
        exits with CMD's code (128+N when signal N ended it; 130 or 143 when zkctl itself got
        SIGINT or SIGTERM). CMD inherits stdin, stdout and stderr and finds ZKCTL_SERVICE_NAME
        and ZKCTL_SERVICE_ID in its environment; zkctl names the id on stderr, not stdout. A
        CMD that cannot be found is exit 127, one that cannot be run exit 126, and nothing is
        registered then. CMD runs only while the registration cannot have expired, by the lease
        rule of 'zkctl help lock': when the servers have not answered for 2/3 of the session
        timeout less the grace, CMD gets SIGTERM (SIGKILL at 2/3) and zkctl exits 75; the
        instance goes with the session (at once if zkctl can still close it, else when the
        server expires it).

        The payload. By default it is Spring Cloud ZooKeeper's ZookeeperInstance,
        {"@class": "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance", "id", "name",
        "metadata"}, which Spring applications read. Curator's JsonInstanceSerializer turns the
        payload's "@class" into a Java class, so an application without that class (such as a
        plain Curator one with ServiceDiscoveryBuilder.builder(Map.class)) cannot read the
        instance at all. For those, --payload JSON writes the payload verbatim (for a Map reader:
        '{"@class":"java.util.HashMap","zone":"a"}'), --payload-class NAME writes Spring's shape
        under another class name, and --no-payload writes "payload": null, which every reader
        accepts. --payload and --no-payload leave no place for --metadata (exit 64).

        The URL others build from the instance is SCHEME://HOST:PORT: --scheme when given, else
        http. --acl applies to the instance node; missing parents are created open, the service
        node as a container, as Curator does. Exit 64 for a malformed argument, 65 when
        --metadata is not a JSON object; nothing is written in either case.
        """,
        examples: [
            "zkctl service register backend localhost 8000 --metadata '{\"version\": \"1.0\"}'",
            "zkctl service register backend 10.0.0.7 8443 --id backend-7 --scheme https",
            "zkctl service register worker $(hostname) 9000 --ephemeral",
            "zkctl service register backend 10.0.0.8 8000 --payload '{\"@class\":\"java.util.HashMap\",\"zone\":\"a\"}'",
            "zkctl service register web 127.0.0.1 8080 --ephemeral -- python3 -m http.server 8080",
        ],
        arguments: [
            ArgumentSpec("NAME", help: "the service's name", completion: .serviceName),
            ArgumentSpec("HOST", help: "the address clients connect to (host name or IP address)"),
            ArgumentSpec("PORT", help: "the port clients connect to (1-65535)", type: .int(1...65535)),
        ],
        options: [
            ServiceRegisterOptions.metadata.spec,
            ServiceRegisterOptions.id.spec,
            ServiceRegisterOptions.sslPort.spec,
            ServiceRegisterOptions.scheme.spec,
            ServiceRegisterOptions.ephemeral.spec,
            ServiceRegisterOptions.payload.spec,
            ServiceRegisterOptions.payloadClass.spec,
            ServiceRegisterOptions.noPayload.spec,
            Common.aclOption.spec,
        ],
        takesCommand: true, commandRequired: false,
        jsonOutput: """
        The instance document as written: {"name", "id", "address", "port", "sslPort", "payload":
        {"@class", "id", "name", "metadata"} (or what --payload gave, or null), "registrationTimeUTC", "serviceType", "uriSpec":
        {"parts": [...]}, "enabled"} (registrationTimeUTC in ms since the epoch). Nothing on
        stdout with -- CMD.
        """,
        handler: runServiceRegister)

    enum ServiceDiscoverOptions {
        static let url = Option<Bool>(flag: "url", help: "print the URL of one instance picked at random")
        static let allUrls = Option<Bool>(flag: "all-urls", help: "print the URL of every instance, one per line")
        static let owners = Option<Bool>(flag: "owners", help: "name the client that owns each ephemeral instance (asks every member)")
    }

    static let serviceDiscover = CommandSpec(
        "discover", summary: "show the instances of a service",
        description: """
        Reads every instance of NAME (pipelined) and shows its id, address, ports, type,
        registration time and metadata. JSON output is an array of objects with the keys id,
        name, address, port, sslPort, serviceType, registrationTimeUTC (ms since the epoch, as
        Curator stores it; the text table shows it as ISO 8601), enabled, ephemeral, metadata,
        url and payload (the document's payload verbatim, null when it has none). Documents
        written by Curator or Spring Cloud ZooKeeper are read as they are, whatever their
        payload; a node that is not a JSON object is skipped with a warning. METADATA is the
        payload's "metadata" (Spring's shape); when an instance has a payload of another shape
        (such as a Curator application's Map), the table gets a PAYLOAD column with it.

        --owners also names the client that registered each ephemeral instance: the address of
        its session's connection and the member it is connected to, from every member's
        connection list (the four-letter word cons, else the AdminServer's connections, on the
        port in ZKCTL_ADMIN_PORT), as stat does for one node. It costs a probe of every member,
        so plain discover does not do it. An instance whose session no member names is said once
        on stderr; a persistent instance has no owner.

        --url prints the URL of one enabled instance picked at random, --all-urls the URLs of all
        enabled instances. Exit 1 when the service has no instances (or none with a URL).
        """,
        examples: [
            "zkctl service discover backend",
            "curl \"$(zkctl service discover backend --url)/health\"",
            "zkctl service discover backend -o json | jq -r '.[].url'",
            "zkctl service discover backend --owners",
        ],
        arguments: [ArgumentSpec("NAME", help: "the service's name", completion: .serviceName)],
        options: [
            ServiceDiscoverOptions.url.spec,
            ServiceDiscoverOptions.allUrls.spec,
            ServiceDiscoverOptions.owners.spec,
        ],
        jsonOutput: """
        [{"id", "name", "address", "port", "sslPort", "serviceType", "registrationTimeUTC",
        "enabled", "ephemeral", "metadata", "url", "payload"}, ...] (registrationTimeUTC in ms since the
        epoch, null when the document has none); with --owners also "owner": {"client", "session",
        "member"} (null for a persistent instance and when no member names the session); with --url
        one string, with --all-urls an array of strings.
        """,
        handler: runServiceDiscover)

    static let serviceList = CommandSpec(
        "list", summary: "list services with their instance counts",
        description: """
        Every service under the services root with its number of instances, sorted by name.
        JSON output is one object {"name": count, ...}.
        """,
        examples: ["zkctl service list", "zkctl service list -o json | jq .backend"],
        jsonOutput: #"{"NAME": INSTANCE_COUNT, ...}"#,
        handler: runServiceList)

    enum ServiceDeregisterOptions {
        static let all = Option<Bool>(flag: "all", help: "remove every instance of NAME")
    }

    static let serviceDeregister = CommandSpec(
        "deregister", summary: "remove an instance (or every instance) of a service",
        description: """
        Deletes the instance NAME/ID, or with --all every instance of NAME, and then the service
        node itself when it is left empty. Exit 1 when the instance or service does not exist.
        With -o json it prints {"name": NAME, "deregistered": [ids]}.
        """,
        examples: ["zkctl service deregister backend 3f0c9a52-0d6e-4a43-9b8a-2f4b1c7e9d10", "zkctl service deregister backend --all"],
        arguments: [
            ArgumentSpec("NAME", help: "the service's name", completion: .serviceName),
            ArgumentSpec("ID", help: "the instance id", optional: true),
        ],
        options: [ServiceDeregisterOptions.all.spec],
        jsonOutput: #"{"name": NAME, "deregistered": [ID, ...]}"#,
        handler: runServiceDeregister)

    // MARK: register

    @Sendable static func runServiceRegister(_ inv: Invocation) async throws -> Int32 {
        let command = ["service", "register"]
        let name = inv.argument(0) ?? ""
        let rawHost = inv.argument(1) ?? ""
        guard let port = inv.argument(2).flatMap({ Int($0) }) else {
            throw UsageError("missing argument PORT for 'service register'", command: command)
        }
        try checkSegment(name, what: "NAME", command: command)
        let id = inv[ServiceRegisterOptions.id] ?? UUID().uuidString.lowercased()
        try checkSegment(id, what: "--id", command: command)
        if let problem = ServiceInstance.hostProblem(rawHost) {
            throw UsageError("bad HOST '\(rawHost)': \(problem)", command: command)
        }
        let scheme = inv[ServiceRegisterOptions.scheme]
        if let scheme, let problem = ServiceInstance.schemeProblem(scheme) {
            throw UsageError("bad --scheme '\(scheme)': \(problem)", command: command)
        }
        let ephemeral = inv[ServiceRegisterOptions.ephemeral]
        let child = inv.command
        if !child.isEmpty && !ephemeral {
            throw UsageError("a command after '--' needs --ephemeral", command: command)
        }
        let acl = try Common.acl(for: inv)
        var metadata = JSONObject()
        if let text = inv[ServiceRegisterOptions.metadata] {
            let value: JSONValue
            do {
                value = try JSONValue.parse(text)
            } catch {
                throw CommandError.badData("bad --metadata: \(error)")
            }
            guard case .object(let object) = value else {
                throw CommandError.badData("bad --metadata: a JSON object is required, not a JSON \(value.typeName)")
            }
            metadata = object
        }
        let payload = try payloadChoice(inv, command: command)
        if let program = child.first, let problem = Sidecar.launchProblem(program) {
            throw CommandError(problem.code, problem.message)
        }
        let registration = ServiceInstance.Registration(
            name: name, id: id, address: ServiceInstance.normalizedHost(rawHost), port: port, sslPort: inv[ServiceRegisterOptions.sslPort],
            scheme: scheme, metadata: metadata, dynamic: ephemeral,
            registrationTimeUTC: Int64(Date().timeIntervalSince1970 * 1000), payload: payload)
        let target = ServiceTarget(root: inv.settings.servicesRoot.value, name: name, id: id, acl: acl,
                                   replaceACL: !inv[Common.aclOption].isEmpty)

        let zk = try await inv.connect()
        if !ephemeral {
            let doc = try await target.write(registration, with: zk)
            printRegistered(inv, doc, id: id)
            return ExitCode.success
        }
        return try await holdEphemeral(inv, zk: zk, target: target, registration: registration, command: child)
    }

    /// --payload, --payload-class or --no-payload (at most one), else Spring's payload.
    static func payloadChoice(_ inv: Invocation, command: [String]) throws -> ServiceInstance.Registration.Payload {
        let given = (inv[ServiceRegisterOptions.payload] != nil ? ["payload"] : [])
            + (inv[ServiceRegisterOptions.payloadClass] != nil ? ["payload-class"] : [])
            + (inv[ServiceRegisterOptions.noPayload] ? ["no-payload"] : [])
        if given.count > 1 {
            throw UsageError("give one of --payload, --payload-class and --no-payload, not --\(given.joined(separator: " and --"))", command: command)
        }
        let metadata = inv[ServiceRegisterOptions.metadata] != nil
        if let text = inv[ServiceRegisterOptions.payload] {
            if metadata { throw UsageError("--metadata goes into Spring's payload; with --payload put it in the JSON given", command: command) }
            do {
                return .verbatim(try JSONValue.parse(text))
            } catch {
                throw CommandError.badData("bad --payload: \(error)")
            }
        }
        if inv[ServiceRegisterOptions.noPayload] {
            if metadata { throw UsageError("--metadata goes into the payload; --no-payload writes none", command: command) }
            return .none
        }
        if let name = inv[ServiceRegisterOptions.payloadClass] {
            if let problem = javaClassNameProblem(name) {
                throw UsageError("bad --payload-class '\(name)': \(problem)", command: command)
            }
            return .spring(className: name)
        }
        return .spring(className: ServiceInstance.springPayloadClass)
    }

    /// Why `name` is not a Java binary class name (identifiers joined by '.', '$' allowed), or nil.
    static func javaClassNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let first = part.unicodeScalars.first else { return "must not have an empty part between dots" }
            if !(first.properties.isAlphabetic || first == "_" || first == "$") {
                return "each part must start with a letter, '_' or '$'"
            }
            if part.unicodeScalars.contains(where: { !($0.properties.isAlphabetic || $0.properties.numericType == .decimal || $0 == "_" || $0 == "$") }) {
                return "must hold only letters, digits, '_', '$' and '.'"
            }
        }
        return nil
    }

    static func printRegistered(_ inv: Invocation, _ doc: JSONObject, id: String) {
        inv.output.print(Printed(json: .object(doc), lines: [id]))
    }

    static func checkSegment(_ value: String, what: String, command: [String]) throws {
        if let problem = ServiceInstance.segmentProblem(value) {
            throw UsageError("bad \(what) '\(value)': \(problem)", command: command)
        }
    }

    /// `register --ephemeral`: registers, then holds the session (registering again after an
    /// expiry) until a signal ends zkctl or the sidecar command exits.
    static func holdEphemeral(_ inv: Invocation, zk: ZooKeeperClient, target: ServiceTarget,
                              registration: ServiceInstance.Registration, command: [String]) async throws -> Int32 {
        // Subscribe before writing, so that an expiry right after the write is not missed.
        let updates = zk.stateUpdates()
        let written = ContinuousClock.now
        let doc = try await target.write(registration, with: zk)
        let current = CurrentSession(zk)
        let label = "\(registration.name)/\(registration.id)"
        if command.isEmpty {
            printRegistered(inv, doc, id: registration.id)
        } else {
            inv.output.note("registered \(label) (ephemeral) while '\(command[0])' runs")
        }
        inv.output.flush()

        let keeper = Task {
            await keepRegistered(inv, first: zk, updates: updates, target: target, registration: registration, current: current)
        }

        if command.isEmpty {
            if await keeper.value == .authFailed {
                throw CommandError(ExitCode.notAuthorized, "the server refused the credentials; \(label) is no longer registered")
            }
            // Closed: only the runner closes sessions, on SIGINT or SIGTERM, and it exits 130 or
            // 143 whatever this returns.
            return ExitCode.interrupted
        }

        // On SIGINT or SIGTERM the supervisor passes the signal on, and the runner closes the
        // session (removing the instance) only once CMD has stopped.
        // The lease rule as for lock: CMD runs only while the registration cannot have expired.
        let terms = LeaseTerms(sessionTimeout: .milliseconds(zk.negotiatedTimeout),
                               grace: min(sidecarGrace, LeaseTerms.longestGrace(sessionTimeout: .milliseconds(zk.negotiatedTimeout))))
        let supervisor = ChildSupervisor(inv, grace: terms.grace)
        let lease = SessionLease(client: zk, path: target.path, terms: terms, heardAt: written) { _ in
            supervisor.abandon(grace: terms.grace)
        }
        func unregister() async {
            lease.stop()
            keeper.cancel()
            _ = await keeper.value
            if inv.interruptSignal == nil { await target.removeOwn(with: current.client, output: inv.output) }
        }
        let child: ChildProcess
        do {
            child = try supervisor.spawn(
                command, extraEnvironment: ["ZKCTL_SERVICE_NAME": registration.name, "ZKCTL_SERVICE_ID": registration.id],
                failure: { CommandError($0.errorNumber == ENOENT ? 127 : 126,
                                        "cannot run '\($0.program)': \(String(cString: strerror($0.errorNumber)))") })
        } catch {
            await unregister()
            throw error
        }
        lease.start()
        let end = await child.wait()
        let lapsed = lease.hasLapsed
        await unregister()
        if lapsed {
            throw CommandError.conflict("the registration of \(label) may have expired (the servers did not answer for too long); '\(command[0])' was stopped (\(end))")
        }
        return end.exitCode
    }

    /// How long the sidecar's CMD has between SIGTERM and SIGKILL (less when the session timeout
    /// is short: the lease rule).
    static let sidecarGrace = Duration.seconds(5)

    /// Watches the session; after an expiry opens a new one and writes the instance again, until
    /// cancelled (nil) or the session is closed or refused (that state).
    static func keepRegistered(_ inv: Invocation, first: ZooKeeperClient, updates initialUpdates: AsyncStream<SessionState>,
                               target: ServiceTarget, registration: ServiceInstance.Registration,
                               current: CurrentSession) async -> SessionState? {
        var zk = first
        var updates = initialUpdates
        let label = "\(registration.name)/\(registration.id)"
        while !Task.isCancelled {
            var expired = false
            for await state in updates {
                if state == .expired { expired = true; break }
                if state == .closed || state == .authFailed { return state }
            }
            guard expired, !Task.isCancelled else { return nil }
            inv.output.warn("session expired; registering \(label) again")
            await zk.close()
            var delay = Duration.milliseconds(500)
            while !Task.isCancelled {
                do {
                    let fresh = try await inv.connect()
                    let freshUpdates = fresh.stateUpdates()
                    do {
                        _ = try await target.write(registration, with: fresh)
                    } catch {
                        await fresh.close()
                        throw error
                    }
                    current.client = fresh
                    zk = fresh
                    updates = freshUpdates
                    inv.output.note("registered \(label) again")
                    break
                } catch {
                    inv.output.warn("cannot register \(label) again yet: \(ExitCode.message(for: error))")
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(10))
                }
            }
        }
        return nil
    }

    // MARK: discover

    @Sendable static func runServiceDiscover(_ inv: Invocation) async throws -> Int32 {
        let command = ["service", "discover"]
        let name = inv.argument(0) ?? ""
        try checkSegment(name, what: "NAME", command: command)
        if inv[ServiceDiscoverOptions.url] && inv[ServiceDiscoverOptions.allUrls] {
            throw UsageError("give either --url or --all-urls, not both", command: command)
        }
        if inv[ServiceDiscoverOptions.owners] && (inv[ServiceDiscoverOptions.url] || inv[ServiceDiscoverOptions.allUrls]) {
            throw UsageError("--owners shows in the instance list: not with --url or --all-urls", command: command)
        }
        let root = inv.settings.servicesRoot.value
        let zk = try await inv.connect()
        let found = try await readInstances(zk, root: root, name: name, maxInFlight: inv.maxInFlight, output: inv.output)
        guard !found.isEmpty else {
            throw CommandError.notFound("service '\(name)' has no instances under \(root)")
        }
        let out = inv.output
        if inv[ServiceDiscoverOptions.url] || inv[ServiceDiscoverOptions.allUrls] {
            let urls = found.filter { $0.instance.enabled }.compactMap { $0.instance.url }
            guard !urls.isEmpty else {
                throw CommandError.notFound("no enabled instance of service '\(name)' has an address and a port")
            }
            if inv[ServiceDiscoverOptions.url] {
                let url = urls.randomElement() ?? urls[0]
                out.print(Printed(json: .string(url), lines: [url]))
            } else {
                out.print(Printed(json: .array(urls.map { .string($0) }), lines: urls))
            }
            return ExitCode.success
        }
        let showOwners = inv[ServiceDiscoverOptions.owners]
        var owners: [Int64: SessionOwners.Owner] = [:]
        if showOwners {
            let sessions = Set(found.map(\.stat.ephemeralOwner).filter { $0 != 0 })
            let lookup = await ephemeralOwners(inv, client: zk, sessions: sessions)
            owners = lookup.owners
            let missing = found.filter { $0.stat.ephemeralOwner != 0 && owners[$0.stat.ephemeralOwner] == nil }
            if !missing.isEmpty {
                let names = missing.map { "\($0.instance.id) (session \(sessionText($0.stat.ephemeralOwner)))" }.joined(separator: ", ")
                let failures = lookup.failures.joined(separator: "; ")
                let why = lookup.failures.isEmpty ? "no member's connection list names the session"
                    : lookup.answered == 0 ? "no member said: " + failures
                    : "no member that answered names the session; " + failures
                out.warn("owner not found for \(names): \(why)")
            }
        }
        func json(_ entry: (instance: ServiceInstance, stat: Stat)) -> JSONValue {
            let summary = entry.instance.summaryJSON(ephemeral: entry.stat.isEphemeral)
            guard showOwners, case .object(var o) = summary else { return summary }
            let session = entry.stat.ephemeralOwner
            o["owner"] = owners[session].map { owner in
                .object(JSONObject([("client", .string(owner.client)), ("session", .string(sessionText(session))),
                                    ("member", .string(owner.member))]))
            } ?? .null
            return .object(o)
        }
        out.print(Printed(json: .array(found.map(json))) { out in
            let otherPayloads = found.contains { !$0.instance.hasSpringShapedPayload }
            let rows: [[String]] = found.map { entry in
                let i = entry.instance
                var type = i.serviceType ?? "-"
                if !i.enabled { type += " (disabled)" }
                var row = [i.id, i.address ?? "-", i.port.map(String.init) ?? "-", i.sslPort.map(String.init) ?? "-", type,
                           i.registrationTimeUTC.map(isoTime) ?? "-", i.metadata.isEmpty ? "-" : JSONValue.object(i.metadata).compact()]
                if otherPayloads {
                    row.append(i.hasSpringShapedPayload ? "-" : (i.document["payload"] ?? .null).compact())
                }
                if showOwners {
                    // "-": persistent, nobody owns it; "?": ephemeral, but no member names its session.
                    let session = entry.stat.ephemeralOwner
                    row.append(session == 0 ? "-" : owners[session]?.client ?? "?")
                }
                return row
            }
            out.table(["ID", "ADDRESS", "PORT", "SSL PORT", "TYPE", "REGISTERED", "METADATA"] + (otherPayloads ? ["PAYLOAD"] : [])
                      + (showOwners ? ["OWNER"] : []), rows)
        })
        return ExitCode.success
    }

    /// Every readable instance of a service, oldest registration first. A missing service is
    /// exit 1; a node that vanished meanwhile is left out; one that is not an instance is
    /// skipped with a warning.
    static func readInstances(_ zk: ZooKeeperClient, root: String, name: String, maxInFlight: Int,
                              output: Output) async throws -> [(instance: ServiceInstance, stat: Stat)] {
        do {
            return try await ServiceDiscovery.instances(zk, root: root, name: name, maxInFlight: maxInFlight) { path, error in
                output.warn("\(path): skipped: \(ExitCode.reason(for: error))")
            }
        } catch ZooKeeperError.Code.noNode {
            throw CommandError.notFound("no service '\(name)' under \(root)")
        }
    }

    // MARK: list

    @Sendable static func runServiceList(_ inv: Invocation) async throws -> Int32 {
        let root = inv.settings.servicesRoot.value
        let zk = try await inv.connect()
        var names: [String]
        do {
            names = try await zk.children(root).children
        } catch ZooKeeperError.Code.noNode {
            names = []
        }
        names.sort()
        let results = await zk.pipeline(names.map { Operation.exists(PathRules.join(root, $0)) }, maxInFlight: inv.maxInFlight)
        var counts: [(String, Int)] = []
        for (name, result) in zip(names, results) {
            switch result {
            case .success(let reply):
                guard let stat = reply.stat else { continue }   // removed meanwhile
                counts.append((name, Int(stat.numChildren)))
            case .failure(let error):
                throw error
            }
        }
        let out = inv.output
        out.print(Printed(json: .object(JSONObject(counts.map { ($0.0, .int($0.1)) }))) { out in
            if counts.isEmpty {
                out.note("no services under \(root)")
            } else {
                out.table(["SERVICE", "INSTANCES"], counts.map { [$0.0, String($0.1)] })
            }
        })
        return ExitCode.success
    }

    // MARK: deregister

    @Sendable static func runServiceDeregister(_ inv: Invocation) async throws -> Int32 {
        let command = ["service", "deregister"]
        let name = inv.argument(0) ?? ""
        try checkSegment(name, what: "NAME", command: command)
        let all = inv[ServiceDeregisterOptions.all]
        let id = inv.argument(1)
        if all && id != nil { throw UsageError("give either ID or --all, not both", command: command) }
        guard all || id != nil else { throw UsageError("missing argument ID (or --all) for 'service deregister'", command: command) }
        if let id { try checkSegment(id, what: "ID", command: command) }
        let root = inv.settings.servicesRoot.value
        let servicePath = PathRules.join(root, name)
        let zk = try await inv.connect()

        var removed: [String] = []
        if let id {
            do {
                try await zk.delete(PathRules.join(servicePath, id))
            } catch ZooKeeperError.Code.noNode {
                throw CommandError.notFound("no instance '\(id)' of service '\(name)' under \(root)")
            }
            removed = [id]
        } else {
            let ids: [String]
            do {
                ids = try await zk.children(servicePath).children
            } catch ZooKeeperError.Code.noNode {
                throw CommandError.notFound("no service '\(name)' under \(root)")
            }
            removed = try await ServiceDiscovery.deleteAll(zk, servicePath: servicePath, ids: ids)
            if removed.isEmpty {
                throw CommandError.notFound("service '\(name)' has no instances under \(root)")
            }
        }
        await ServiceDiscovery.removeIfEmpty(zk, servicePath)
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("name", .string(name)), ("deregistered", .array(removed.map { .string($0) }))]))))
        return ExitCode.success
    }

}

/// The session an ephemeral registration currently lives in (a new one after an expiry).
final class CurrentSession: Sendable {
    private let box: Mutex<ZooKeeperClient>
    init(_ client: ZooKeeperClient) { box = Mutex(client) }
    var client: ZooKeeperClient {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}


/// The command `register --ephemeral -- CMD` runs (started by a `ChildSupervisor`).
enum Sidecar {
    /// Why `program` cannot be run (exit 127 not found, 126 not executable), or nil. Checked
    /// before anything is registered.
    static func launchProblem(_ program: String) -> (code: Int32, message: String)? {
        if program.isEmpty { return (127, "cannot run '': empty command") }
        if program.contains("/") {
            if access(program, F_OK) != 0 { return (127, "cannot run '\(program)': no such file") }
            if access(program, X_OK) != 0 { return (126, "cannot run '\(program)': not executable") }
            return nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        var sawNonExecutable = false
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + program
            var info = stat()
            guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return nil }
            sawNonExecutable = true
        }
        return sawNonExecutable ? (126, "cannot run '\(program)': not executable")
                                : (127, "cannot run '\(program)': command not found")
    }
}

extension ServiceTarget {
    /// `deregisterOwn`, warning instead of failing: closing the session removes the node anyway.
    func removeOwn(with zk: ZooKeeperClient, output: Output) async {
        do {
            try await deregisterOwn(with: zk)
        } catch {
            // Closing the session (which the runner does next) removes the node anyway.
            output.warn("\(path): \(ExitCode.reason(for: error)); it goes when the session closes")
        }
    }
}
