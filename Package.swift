// swift-tools-version:6.0
import Foundation
import PackageDescription

/// Where `make deps` (scripts/libphonenumber.sh) puts the libphonenumber ferry links.
let libphonenumberBuild = Context.packageDirectory + "/.deps/libphonenumber"

let package = Package(
    name: "ferry",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .library(name: "FerryKit", targets: ["FerryKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibCSV", providers: [.apt(["libcsv-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // SHA-256 from the system's OpenSSL, which libpq links anyway: swift-crypto compiled about 360
        // BoringSSL files into every clean build for that one hash.
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libphonenumber as scripts/libphonenumber.sh builds it (`make deps`): Debian's source of the
        // library with its RE2 engine; the shim's own matcher uses ICU's.
        .target(
            name: "CPhoneNumber",
            cxxSettings: [.unsafeFlags(["-I", libphonenumberBuild + "/include"])],
            linkerSettings: [
                .unsafeFlags(["-L", libphonenumberBuild + "/lib"]),
                .linkedLibrary("phonenumber-re2"), .linkedLibrary("re2"), .linkedLibrary("absl_hash"),
                .linkedLibrary("absl_raw_hash_set"), .linkedLibrary("absl_strings"),
                .linkedLibrary("absl_throw_delegate"), .linkedLibrary("protobuf"), .linkedLibrary("icui18n"),
                .linkedLibrary("icuuc"), .linkedLibrary("stdc++"),
            ]
        ),
        .target(
            name: "FerryKit",
            dependencies: [
                "CLibPQ", "CLibCSV", "CPhoneNumber", "CZlib", "CLibCrypto",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // jemalloc instead of glibc's malloc: parsing allocates and frees many small objects for every
            // number (docs/performance.md).
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        // The multilingual phone corpus's reader, for the transform's tests and the database tests.
        .target(name: "PhoneCorpus", path: "Tests/PhoneCorpus"),
        .target(name: "TestFiles", path: "Tests/TestFiles"),
        .testTarget(name: "FerryKitTests", dependencies: ["FerryKit", "PhoneCorpus", "TestFiles"]),
        .testTarget(name: "IntegrationTests", dependencies: ["FerryKit", "PhoneCorpus", "TestFiles"]),
    ],
    cxxLanguageStandard: .cxx17
)

// Coverage-guided fuzz targets (libFuzzer), only in `make fuzz`'s build: FERRY_FUZZ=1 adds them, and
// scripts/fuzz.sh builds each with -sanitize=fuzzer,address.
if ProcessInfo.processInfo.environment["FERRY_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    for name in ["FuzzCSVImport", "FuzzMapping", "FuzzPhones"] {
        package.targets.append(
            .executableTarget(name: name, dependencies: ["FerryKit", "FuzzSupport"], path: "Fuzz/\(name)"))
    }
}
