// swift-tools-version:6.1
// Hallmark's fuzz targets: one libFuzzer binary per untrusted input. Built by build.sh with
// `-sanitize=fuzzer,address`; not part of the main build. See docs/fuzzing.md.
import PackageDescription

let settings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

func target(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, swiftSettings: settings)
}

let package = Package(
    name: "hallmark-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "hallmark", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "HallmarkCore", package: "hallmark")],
            swiftSettings: settings
        ),
        target("FuzzMQTT", [.product(name: "MQTTCore", package: "hallmark"), .product(name: "NIOCore", package: "swift-nio")]),
        target("FuzzEST", [.product(name: "HallmarkCore", package: "hallmark"), .product(name: "X509", package: "swift-certificates")]),
        target("FuzzAllowlist", [.product(name: "HallmarkCore", package: "hallmark")]),
        target("FuzzManifest", [
            .product(name: "HallmarkCore", package: "hallmark"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "X509", package: "swift-certificates"),
        ]),
        target("FuzzPolicy", [.product(name: "HallmarkCore", package: "hallmark")]),
        target("FuzzProvisioning", [
            .product(name: "HallmarkCore", package: "hallmark"), .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        target("FuzzOCSP", [
            .product(name: "Revocation", package: "hallmark"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "X509", package: "swift-certificates"),
        ]),
        target("FuzzMCUboot", [.product(name: "Firmware", package: "hallmark"), .product(name: "HallmarkCore", package: "hallmark"), .product(name: "Crypto", package: "swift-crypto")]),
        target("FuzzDefender", [.product(name: "HallmarkCore", package: "hallmark"), .product(name: "Crypto", package: "swift-crypto")]),
        target("FuzzJobs", [.product(name: "HallmarkCore", package: "hallmark")]),
    ]
)
