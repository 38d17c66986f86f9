// swift-tools-version:6.0
import PackageDescription

// Complete strict concurrency checking on every Swift target (Swift 6 language mode implies it;
// the flag keeps it explicit should the language mode ever be lowered).
let strict: [SwiftSetting] = [.enableExperimentalFeature("StrictConcurrency")]

let package = Package(
    name: "zkctl",
    products: [
        .executable(name: "zkctl", targets: ["zkctl"]),
        .library(name: "ZooKeeper", targets: ["ZooKeeper"]),
        .library(name: "ZooKeeperRecipes", targets: ["ZooKeeperRecipes"]),
    ],
    targets: [
        .systemLibrary(
            name: "CZooKeeper",
            providers: [.apt(["libzookeeper-mt-dev"])]
        ),
        // OpenSSL for the TLS relay (Debian's libzookeeper_mt is built without it).
        .systemLibrary(
            name: "COpenSSL",
            providers: [.apt(["libssl-dev"])]
        ),
        // Line editing and history for `zkctl shell` on a terminal.
        .systemLibrary(
            name: "CEditline",
            providers: [.apt(["libedit-dev"])]
        ),
        .target(name: "ZooKeeper", dependencies: ["CZooKeeper", "COpenSSL"], swiftSettings: strict),
        // Coordination recipes over the client (lock, watch engine, service discovery, run-once);
        // nothing of argv or output, so that any Swift program can use them.
        .target(name: "ZooKeeperRecipes", dependencies: ["ZooKeeper"], swiftSettings: strict),
        .target(name: "ZKCtl", dependencies: ["ZooKeeper", "ZooKeeperRecipes", "CEditline"], swiftSettings: strict),
        // argv for main, kept from the C library's call to the executable's constructors; it also
        // keeps the Swift runtime's own argv search (a read of /proc/self/maps) out of the binary.
        .target(name: "CStartup"),
        .executableTarget(name: "zkctl", dependencies: ["ZKCtl", "CStartup"], swiftSettings: strict),
        .target(name: "ZKTestSupport", path: "Tests/ZKTestSupport", swiftSettings: strict),
        .testTarget(name: "ZooKeeperTests", dependencies: ["ZooKeeper", "ZKTestSupport"], swiftSettings: strict),
        .testTarget(name: "ZooKeeperRecipesTests", dependencies: ["ZooKeeperRecipes", "ZKTestSupport"], swiftSettings: strict),
        .testTarget(name: "ZKCtlTests", dependencies: ["ZKCtl", "ZooKeeperRecipes", "ZKTestSupport"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["ZKTestSupport"], exclude: ["kazoo_peer.py"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
