import FoundationEssentials

/// The man page, zkctl(1), generated from the command table and the facts below.
public enum ManPage {
    /// Examples shown in EXAMPLES and run in order by the test suite against a fresh server, with
    /// ZKCTL_SERVERS set: each is a shell line and the exit code it must give.
    public static let examples: [(command: String, exitCode: Int32, note: String)] = [
        ("zkctl status", 0, "Is the ensemble healthy? Exit 0 when a quorum serves."),
        ("zkctl config set feature_flags '{\"new_ui\": true}'", 0, "Store a JSON value."),
        ("zkctl config get feature_flags", 0, "Read it back, indented."),
        ("zkctl config set feature_flags beta true", 0, "Set one field of a JSON object, keeping the others."),
        ("zkctl config get feature_flags beta", 0, "Read one field."),
        ("zkctl config set test_key test_value", 0, "A bare word is stored as a JSON string."),
        ("zkctl config list", 0, "Every key with its value."),
        ("zkctl -o json config list | jq -r 'keys[]'", 0, "Scripts read JSON."),
        ("zkctl config get missing_key --default 42", 0, "A fallback instead of exit 1."),
        ("zkctl config remove test_key", 0, "Remove a key."),
        ("zkctl service register backend-api 10.0.0.5 8080 --id api-1 --metadata '{\"version\": \"1.0\"}'", 0,
         "Register a persistent service instance (Curator format)."),
        ("zkctl -o json service discover backend-api | jq -r '.[0].address'", 0, "Find an instance's address."),
        ("zkctl service list", 0, "Every service with its instance count."),
        ("zkctl lock nightly-report --wait 10s -- echo generating", 0, "Run a command under a cluster-wide lock."),
        ("zkctl create /app/settings 'hello' --parents", 0, "Create a znode and its parents."),
        ("zkctl get /app/settings", 0, "Print a znode's data."),
        ("zkctl tree / --depth 2", 0, "Draw the tree."),
        ("zkctl export /app --file /tmp/app-backup.json", 0, "Back up a subtree."),
        ("zkctl diff /app file:/tmp/app-backup.json", 0, "Compare live data with a backup (file: marks a file whose name starts with /): exit 0 when equal."),
        ("zkctl delete /app --recursive", 0, "Delete a subtree."),
        ("zkctl import /tmp/app-backup.json", 0, "Restore it."),
    ]

    static func escape(_ s: String) -> String {
        var out = s.replacingEvery("\\", with: "\\e")
        out = out.replacingEvery("-", with: "\\-")
        // A line must not start with a control character.
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }

    /// Plain text (not roff: `escape` makes it so) as man paragraphs. A blank line starts a new
    /// paragraph. Indented lines are set apart: as a list when each has a tag ended by a run of two
    /// spaces (diff's `+ PATH   only in TARGET`), else as literal lines (a command to type).
    static func paragraph(_ text: String) -> String {
        var out: [String] = []
        var block: [String] = []
        var afterBlock = false
        func endBlock() {
            guard !block.isEmpty else { return }
            let items = block.map { line -> (tag: String, body: String)? in
                guard let gap = line.firstRange(of: "  ") else { return nil }
                return (String(line[..<gap.lowerBound]), line[gap.upperBound...].trimmingBlanks())
            }
            // .RS/.RE keep the list's indent from reaching the option list that follows.
            out.append(".RS 0")
            if items.allSatisfy({ $0 != nil }) {
                let list = items.compactMap { $0 }
                let width = (list.map(\.tag.count).max() ?? 0) + 2
                // Items of one short line each are set without blank lines between them.
                let compact = list.allSatisfy { $0.tag.count + $0.body.count <= 60 }
                if compact { out.append(".PD 0") }
                for item in list { out += [".TP \(width)n", escape(item.tag), escape(item.body)] }
                if compact { out.append(".PD") }
            } else {
                out += [".RS 4", ".nf"] + block.map(escape) + [".fi", ".RE"]
            }
            out.append(".RE")
            block = []
            afterBlock = true
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingBlanks()
            if raw.hasPrefix("  ") && !line.isEmpty {
                block.append(line)
                continue
            }
            endBlock()
            if line.isEmpty || afterBlock {
                if out.last != ".PP" { out.append(".PP") }
                afterBlock = false
            }
            if !line.isEmpty { out.append(breakable(escape(line))) }
        }
        endBlock()
        while out.last == ".PP" { out.removeLast() }
        return out.joined(separator: "\n")
    }

    /// Escaped text that may break after a comma with no space after it, as in compact JSON
    /// sketches (`{"a","b"}`), which would run past the margin otherwise (the page does not
    /// hyphenate).
    static func breakable(_ escaped: String) -> String {
        var out = ""
        var previous: Character? = nil
        for c in escaped {
            if previous == ",", c != " " { out += "\\:" }
            out.append(c)
            previous = c
        }
        return out
    }

    /// Option help as a sentence, so that what the page adds after it ("Default: ...") reads as
    /// the next one.
    static func sentence(_ text: String) -> String {
        let trimmed = text.trimmingBlanks()
        guard let last = trimmed.last else { return trimmed }
        return ".!?".contains(last) ? trimmed : trimmed + "."
    }

    static func optionItem(_ o: OptionSpec) -> String {
        var head = ""
        if let s = o.short { head += "\\fB\\-\(s)\\fR, " }
        head += "\\fB\\-\\-\(escape(o.long))\\fR"
        if let v = o.valueName { head += " \\fI\(escape(v))\\fR" }
        var help = escape(sentence(o.help))
        if case .choice(let c) = o.type { help += " One of: " + escape(c.joined(separator: ", ")) + "." }
        if let d = o.defaultValue { help += " Default: " + escape(d) + "." }
        if let e = o.environment { help += " Environment: \\fB\(escape(e))\\fR." }
        if o.repeatable { help += " May be repeated." }
        return ".TP\n\(head)\n\(help)\n"
    }

    /// The TLS section: how the relay works, what is verified, the errors, and PEM files from a
    /// Java keystore.
    static var tlsSection: String {
        ".SH TLS\n" + paragraph("""
        Debian's ZooKeeper C client has no TLS, so with --tls zkctl carries the session over TLS itself: for each \
        server of the connect string it listens on a loopback port of its own (127.0.0.1 only, served to zkctl's \
        own sockets alone and closed with the session), gives those ports to the C client, and relays what it \
        sends over TLS 1.2 or newer to the server's secureClientPort. The chroot, reconnects and moves to \
        another server work as without TLS. status sends its srvr probes over TLS as well.

        Verification is on unless --tls-insecure is given (which warns every time): the server's certificate \
        chain must lead to a CA of --tls-ca (else of the system's store), and its subjectAltName must hold the \
        host of the connect string, a name or an IP address, or the name given with --tls-server-name. \
        --tls-cert and --tls-key give a client certificate for servers with ssl.clientAuth=need; a key file that \
        other users can read gets a warning, as an auth file does. zkctl reads these files itself: no key \
        material is ever printed or passed on a command line.

        Each failure is one line naming the server, exit 69, within --timeout: a certificate from an unknown CA, \
        a name mismatch, an expired certificate, a server that requires a client certificate, a server that did \
        not answer TLS (a plain client port); exit 77 when the server refused the client certificate given. \
        Without --tls, a port that answers only TLS is named as such ("it looks like a TLS port; try --tls").

        Sessions kept between commands. A full TLS handshake costs a Java server about ten times the CPU of         resuming a session, and it is most of the time of a one-shot command. So zkctl keeps each server's TLS         session for 10 minutes after its full handshake, and the next command to that server resumes it. It         keeps them in $XDG_RUNTIME_DIR/zkctl (memory, per user, removed at logout; made mode 700), one file of         mode 600 per server, or in the directory given with --tls-session-cache DIR (ZKCTL_TLS_SESSION_CACHE,         config key tls-session-cache); "off" keeps none, and so does a run without XDG_RUNTIME_DIR. A stored         session holds the secret of its connection: whoever reads the file can resume that session as this         client, and read what was sent in it. So a directory or file that another user can read or enter is         never used (a file is removed; a directory named with --tls-session-cache gets a warning), and a         session is only resumed under the same verification it passed: the same server, CA file, server name         and client certificate, each file unchanged since. --tls-insecure keeps no session. -v names each         handshake ("tls: 10.0.0.5:2182: TLSv1.2, resumed a kept session").

        In the config file: tls = yes, tls-ca = FILE, tls-cert = FILE, tls-key = FILE and tls-session-cache =         DIR|off, in [zkctl].

        PEM files from a Java keystore. ZooKeeper servers keep keys in JKS or PKCS12 keystores (ssl.keyStore, \
        ssl.trustStore); zkctl reads PEM. A JKS keystore is first turned into PKCS12 with keytool, then openssl \
        writes the certificate and the key (it asks for the store's password; the key is written without a \
        passphrase, so keep it mode 600); the CA comes out of the trust store:
          keytool -importkeystore -srckeystore client.jks -destkeystore client.p12 -deststoretype PKCS12
          openssl pkcs12 -in client.p12 -nokeys -out client.pem
          (umask 077; openssl pkcs12 -in client.p12 -nocerts -nodes -out client.key)
          keytool -exportcert -rfc -alias ca -keystore truststore.jks -file ca.pem
          zkctl -s zk1:2182,zk2:2182 --tls-ca ca.pem --tls-cert client.pem --tls-key client.key status
        """) + "\n"
    }

    public static func render(_ root: CommandSpec, date: String = "2026-11-22") -> String {
        var s = ""
        s += ".TH ZKCTL 1 \(date) \"zkctl \(ZKCtl.version)\" \"User Commands\"\n"
        // No hyphenation: JSON keys and option names broken across lines read as other words.
        s += ".nh\n"
        s += ".SH NAME\nzkctl \\- a command\\-line admin tool for Apache ZooKeeper\n"
        s += ".SH SYNOPSIS\n.B zkctl\n[\\fIGLOBAL OPTIONS\\fR]\n\\fICOMMAND\\fR\n[\\fIOPTIONS\\fR]\n[\\fIARGUMENTS\\fR]\n"
        s += ".SH DESCRIPTION\n"
        s += paragraph("""
        zkctl manages Apache ZooKeeper ensembles from a terminal or a script: configuration keys, service \
        discovery in the Apache Curator format, locks, plain znodes, backups and health checks. It talks to \
        ZooKeeper through the official C client. Data goes to standard output, diagnostics to standard error \
        as one line starting with zkctl:, and every command exits with a documented code.
        """) + "\n"
        s += ".SH COMMANDS\n"
        for (path, spec) in Completions.paths(root) where !path.isEmpty && spec.handler != nil {
            s += ".SS \"zkctl \(escape(path)) \(escape(spec.usageLine))\"\n"
            s += escape(spec.summary.prefix(1).uppercased() + spec.summary.dropFirst()) + ".\n"
            if !spec.description.isEmpty { s += ".PP\n" + paragraph(spec.description) + "\n" }
            if !spec.arguments.isEmpty {
                for a in spec.arguments { s += ".TP\n\\fI\(escape(a.name))\\fR\n\(escape(a.help))\n" }
            }
            for o in spec.options where !o.hidden { s += optionItem(o) }
            if !spec.jsonOutput.isEmpty { s += ".PP\nJSON output: " + breakable(escape(spec.jsonOutput)) + "\n" }
            if !spec.examples.isEmpty {
                s += ".PP\nExamples:\n.RS\n.nf\n" + spec.examples.map(escape).joined(separator: "\n") + "\n.fi\n.RE\n"
            }
        }
        s += ".SH GLOBAL OPTIONS\n"
        s += "These are accepted before or after the command name.\n"
        for o in root.options where !o.hidden { s += optionItem(o) }
        s += ".SH SETTINGS\n"
        s += paragraph("""
        Each setting is taken from the first of: a command-line flag, an environment variable, the config file, \
        the default. zkctl -v status shows where each effective value came from.

        Servers are host:port,host:port[/chroot] (a host without a port gets 2181, IPv6 hosts in brackets) or a URL: \
        zookeeper://h1:2181,h2:2181/chroot; zookeeper:///path, which takes the servers from the settings below the \
        one that names it and uses path as the chroot; zookeeper:./relative, which takes servers and base path from \
        the settings below and appends relative to the base path. A chroot applies underneath every root.

        Digest credentials come from the first of: --auth USER:PASSWORD (which warns, since other users of the \
        machine can see a command line), --auth-file FILE (a user:password line, more for several identities), \
        the ZKCTL_AUTH variable, the auth-file key of the config file. Without any, the session is anonymous. \
        Passwords are never printed.
        """) + "\n"
        s += tlsSection
        s += ".SH ENVIRONMENT\n"
        // The variables come from the global options' declarations; only what the page says
        // about each is written here.
        func variables(_ options: OptionSpec...) -> String {
            options.flatMap(\.environmentVariables).joined(separator: ", ")
        }
        let serverVariables = GlobalOptions.server.spec.environmentVariables
        var env: [(String, String)] = Array(zip(serverVariables, [
            "servers (first of the three server variables)",
            "servers, when \(serverVariables[0]) is not set",
            "servers, when neither of the above is set",
        ]))
        env += [
            (variables(GlobalOptions.auth.spec), "digest credentials user:password, used when neither --auth nor --auth-file is given; never printed"),
            (variables(GlobalOptions.config.spec), "the config file"),
            (variables(GlobalOptions.timeout.spec), GlobalOptions.timeout.spec.help),
            (variables(GlobalOptions.sessionTimeout.spec), "the session timeout to ask the server for"),
            (variables(GlobalOptions.output.spec), GlobalOptions.output.spec.help),
            (variables(GlobalOptions.configRoot.spec, GlobalOptions.servicesRoot.spec, GlobalOptions.locksRoot.spec,
                       GlobalOptions.tasksRoot.spec), "the roots"),
            (variables(GlobalOptions.electionsRoot.spec), "the elections root"),
            (variables(GlobalOptions.maxInFlight.spec), "bound on pipelined requests"),
            (variables(GlobalOptions.sync.spec), "yes: call sync before reading (see CONSISTENCY); no: do not"),
            ("ZKCTL_ADMIN_PORT", "the members' AdminServer port for status, ensemble, metrics and sessions when --admin-port is not given (default 8080)"),
            (variables(GlobalOptions.tls.spec), "TLS to the servers: yes or no (also the tls key of the config file)"),
            (variables(GlobalOptions.tlsCA.spec, GlobalOptions.tlsCert.spec, GlobalOptions.tlsKey.spec),
             "the TLS CA, client certificate and key files (also tls-ca, tls-cert and tls-key in the config file); each implies TLS"),
            ("XDG_CONFIG_HOME", "where the default config file is looked for"),
            ("NO_COLOR", "no colour, even on a terminal"),
        ]
        for (name, text) in env { s += ".TP\n.B \(escape(name))\n\(escape(text)).\n" }
        s += ".SH FILES\n"
        s += ".TP\n.I $XDG_CONFIG_HOME/zkctl/config\n(or \\fI~/.config/zkctl/config\\fR, or the file named by \\fB\\-\\-config\\fR or \\fBZKCTL_CONFIG\\fR) an INI file:\n"
        s += ".PP\n.RS\n.nf\n[zookeeper]\nservers = zk1:2181,zk2:2181,zk3:2181\npath = /myapp\n.PP\n[zkctl]\ntimeout = 5s\nsession\\-timeout = 30s\noutput = text\nconfig\\-root = /config\nservices\\-root = /services\nlocks\\-root = /locks\ntasks\\-root = /tasks\nauth\\-file = /etc/zkctl/auth\nmax\\-inflight = 256\nsync = no\n.fi\n.RE\n"
        s += ".PP\nLines starting with # or ; are comments. A malformed file is a usage error naming the line.\n"
        s += ".SH OUTPUT\n"
        s += paragraph("""
        -o text (the default) is for people: aligned tables, trees drawn with box characters, colour only on a \
        terminal. -o json is for programs: exactly one JSON document on standard output; the streaming commands \
        (watch, config watch) print one JSON object per line instead. -o ndjson prints one object per line as well: \
        tree streams its nodes so, level by level; other commands print their one document. The JSON shape of each \
        command is given with the command above ("JSON output"); these rules hold for all of them:
          Data  Znode data is a string when it is UTF-8 text, else {"base64": "..."}.
          Stats  A znode's stat is always the same object, under the key "stat" wherever a node carries one \
        (get --stat, ls --stat, tree --stat, set, watch; zkctl stat prints {"path", "stat"}): {"czxid", "mzxid", \
        "pzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner", "dataLength", "numChildren"}, \
        the field names of ZooKeeper's Java Stat (zkCli.sh's stat says cZxid, mZxid, pZxid, dataVersion and \
        aclVersion). The zxids and versions are numbers; ephemeralOwner is the owning session's id as a hex string \
        ("0x0" for a node that is not ephemeral), since session ids need more than the 53 bits a JSON number keeps \
        exactly. The text output of stat uses the same names.
          Times  Every time in JSON output is a number of milliseconds since the epoch, as ZooKeeper's stat and \
        Curator's registrationTimeUTC are: a stat's ctime and mtime, config's modified, a service instance's \
        registrationTimeUTC, a run-once record's start, end and periodStart. Text output shows times as ISO 8601 UTC.
          Trees  A node of tree's output is {"path", "name", "stat", "data", "children": [...]} ("stat" with \
        --stat, "data" with --data). A node whose children were not listed because of --depth has no \
        "children": it carries "truncated": true and "numChildren". A leaf has "children": [].
          Stored  What zkctl stores for other programs keeps that program's format, and a command that prints a \
        stored document prints it as stored: service register prints the Curator document, and export prints the \
        export format (docs/export-format.md), whose "exported" is ISO 8601 text. Run-once records store their \
        times as ISO 8601 text; run-once --status -o json gives them in milliseconds.
        """) + "\n"
        s += ".SH CONSISTENCY\n"
        s += paragraph("""
        A read is answered by the server the session is connected to, from what that server has applied. \
        ZooKeeper guarantees that a session's own writes are visible to its later reads and that a session never \
        sees the tree go back in time, also when it moves to another server; it does not guarantee that a write \
        another client saw acknowledged is visible yet, since a follower may lag a little behind the leader. So \
        a script that writes with one zkctl and reads with the next may, rarely, read the value before the \
        write. --sync (ZKCTL_SYNC=yes, or sync = yes in the config file) makes every command call sync first, \
        which waits until its server has caught up with the leader: every read then sees every write \
        acknowledged before the command began. It costs one round trip through the leader per command.
        """) + "\n"
        s += ".PP\n" + paragraph("""
        -o prometheus is Prometheus's text exposition format, for metrics (node_exporter's textfile collector); \
        the other commands print their JSON document in that format.
        """) + "\n"
        s += ".SH ROLLING RESTARTS\n"
        s += rollingRestarts
        s += ".SH EXIT STATUS\n"
        let codes: [(Int32, String)] = [
            (0, "success"), (1, "not found: the key, path, service or instance does not exist"),
            (64, "usage: unknown command or option, missing or malformed argument"),
            (65, "bad data: a value that is not valid JSON where JSON is required, a file that does not parse"),
            (66, "an input file cannot be read"), (69, "unavailable: no server reachable, no quorum, or the timeout passed"),
            (70, "internal error (a bug in zkctl)"),
            (73, "output cannot be written: an output file, or standard output (a full disk); a reader that went away (a broken pipe) ends zkctl quietly with 141 instead"),
            (75, "conflict: version mismatch, node already exists, lock not acquired in time"),
            (77, "not authorized: authentication failed or an ACL refused the operation"), (130, "interrupted by SIGINT"),
        ]
        for (code, text) in codes { s += ".TP\n.B \(code)\n\(escape(text)).\n" }
        s += ".PP\nCommands that run a child (lock, run\\-once) exit with the child's code when it ran.\n"
        s += ".PP\n" + escape("A write whose answer is lost (the connection drops after the request was sent) is not reported "
            + "as a failure at once: zkctl waits for the same session to come back (within --timeout) and reads what the "
            + "server holds to learn whether the write was applied, sending it again only when it was not. 69 after a write "
            + "therefore means its outcome could not be learned in time; the line says so and names the command to check "
            + "with, such as: zkctl: set /a: the connection was lost after the request was sent and the servers (...) did "
            + "not come back within 10000 ms; the write may or may not have been applied: check with 'zkctl get /a'.") + "\n"
        s += ".SH EXAMPLES\n"
        for (i, e) in examples.enumerated() {
            s += (i == 0 ? "" : ".PP\n") + "\(escape(e.note))\n.RS\n.nf\n\(escape("$ " + e.command))\n.fi\n.RE\n"
        }
        s += ".SH SEE ALSO\n.BR zkCli.sh (1),\n.BR jq (1)\n"
        return s
    }

    /// The ROLLING RESTARTS section: restarting every member in turn without losing the quorum.
    static var rollingRestarts: String {
        var s = paragraph("""
        Restart one member at a time, followers first and the leader last, and before each one ask \
        'zkctl ensemble can-restart': it exits 0 only when every other voting member serves, none is more \
        than --max-lag zxids behind the leader, and the voters left still form a quorum; with --wait it \
        waits for that (a member restarted just before is still syncing) instead of failing at once. \
        'zkctl ensemble list' shows the leader, and each member's mode and lag before and after.
        """) + "\n"
        s += ".PP\nFor a three-member ensemble zk1, zk2, zk3 whose leader is zk3:\n.PP\n.RS\n.nf\n"
        s += escape("""
        $ zkctl -s zk1:2181,zk2:2181,zk3:2181 ensemble list
        $ for m in zk1 zk2 zk3; do
        >   zkctl -s zk1:2181,zk2:2181,zk3:2181 ensemble can-restart $m:2181 --wait 5m || exit 1
        >   ssh $m sudo systemctl restart zookeeper
        > done
        """) + "\n.fi\n.RE\n"
        s += ".PP\nOr on each member's own host in turn, here member 2:\n.PP\n.RS\n.nf\n"
        s += escape("$ zkctl ensemble can-restart 2 --wait 5m && systemctl restart zookeeper") + "\n.fi\n.RE\n"
        s += ".PP\n" + paragraph("""
        When one member is down, can-restart of any other exits 69 and names it, for example: zkctl: member 1 \
        (zk1:2181, follower) cannot be restarted now: member 2 (zk2:2181) is down: connection refused; 1 of 3 \
        voters would be left serving and synced, a quorum needs 2.
        """) + "\n"
        return s
    }
}
