import Foundation

/// Where tests write files: one folder per test process in the system's temporary directory, removed
/// when the process exits, so that a run leaves nothing behind however many files its tests write.
public enum Scratch {
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return root
    }()

    /// A new, empty folder; `name` says whose it is.
    public static func folder(_ name: String) -> URL {
        let folder = root.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The path of `name` in a folder of its own (nothing is written there yet).
    public static func path(_ name: String) -> String {
        folder("file").appendingPathComponent(name).path
    }
}

/// A file holding `data`, in a folder of its own.
public func temporaryFile(_ data: Data, name: String = "input.csv") throws -> String {
    let path = Scratch.path(name)
    guard FileManager.default.createFile(atPath: path, contents: data) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
    return path
}

public func temporaryFile(_ bytes: [UInt8], name: String = "input.csv") throws -> String {
    try temporaryFile(Data(bytes), name: name)
}

public func temporaryFile(_ text: String, name: String = "input.csv") throws -> String {
    try temporaryFile(Data(text.utf8), name: name)
}
