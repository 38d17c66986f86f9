import Foundation

/// The Apache Curator peer of the interop tests: Tests/Peers/CuratorPeer.java, compiled once per
/// test process with `javac` against Debian's Curator jars (libcurator-framework-java,
/// libcurator-recipes-java, libcurator-discovery-java: `make deps`) into the test scratch space,
/// and run as `java -cp ... CuratorPeer HOSTS ACTION ARGS...`. The actions are listed at the top
/// of the Java file; results come back as lines on stdout.
public enum CuratorPeer {
    /// The jars the peer needs, from /usr/share/java (Debian's unversioned names).
    public static let jars = [
        "curator-x-discovery", "curator-recipes", "curator-framework", "curator-client",
        "zookeeper", "zookeeper-jute", "guava", "jackson-databind", "jackson-core", "jackson-annotations",
        "slf4j-api", "slf4j-nop",
    ]

    private static let compiled = Result<String, any Error> { try compile() }

    /// The classpath of the compiled peer (compiling it on first use). Throws, with javac's
    /// message or the missing jar, when it cannot be built.
    public static func classpath() throws -> String { try compiled.get() }

    /// Runs the peer against `hosts` with `args` (the action and its arguments).
    public static func run(hosts: String, _ args: [String], timeout: TimeInterval = 120) throws -> ProcessResult {
        try runProcess(javaPath, ["-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", try classpath(), "CuratorPeer", hosts] + args,
                       environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"], timeout: timeout)
    }

    static var javaPath: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/java") ? "/usr/bin/java" : "java" }

    private static func compile() throws -> String {
        let missing = jars.map { "/usr/share/java/\($0).jar" }.filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            throw CuratorPeerError("the Curator peer needs \(missing.joined(separator: ", ")): run `make deps` (libcurator-discovery-java, libcurator-recipes-java)")
        }
        let jarPath = jars.map { "/usr/share/java/\($0).jar" }.joined(separator: ":")
        let output = try ZKTestPaths.makeTemporaryDirectory(label: "curator-peer")
        let source = ZKTestPaths.packageRoot.appendingPathComponent("Tests/Peers/CuratorPeer.java").path
        let javac = FileManager.default.isExecutableFile(atPath: "/usr/bin/javac") ? "/usr/bin/javac" : "javac"
        let r = try runProcess(javac, ["-nowarn", "-encoding", "UTF-8", "-d", output.path, "-cp", jarPath, source], timeout: 180)
        guard r.status == 0 else {
            throw CuratorPeerError("javac could not build the Curator peer (exit \(r.status)): \(r.stderrText)")
        }
        return output.path + ":" + jarPath
    }
}

public struct CuratorPeerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
