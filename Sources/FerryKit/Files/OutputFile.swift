import Foundation
import Glibc

/// A file ferry was asked to write (a report, a reject file, an export, a plan or snapshot file).
///
/// The path decides how, so that nothing the user did not name is replaced:
/// - `-` is standard output;
/// - `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and `/proc/self/fd/N` are written through the open
///   descriptor (a shell's `>(…)`, a redirect, a terminal) — never unlinked or renamed over;
/// - a FIFO, a character device or a socket (after following symlinks) is opened and written through;
/// - a regular file, or a path that does not exist yet, is written to a temporary file in the same
///   folder as the real file and renamed over it on `commit()`: readers see the old file or the whole
///   new one, a failed run leaves the old one, and a symlink stays a symlink to the new content.
public final class OutputFile {
    public enum Kind: String, Sendable {
        /// Written to a temporary file and renamed into place.
        case atomic
        /// Written through: a pipe, a device, an inherited descriptor.
        case stream
    }

    /// The path as the user gave it, for messages.
    public let path: String
    public let kind: Kind
    /// Where the bytes go, for a child process to write into (pg_dump); ferry closes it.
    public private(set) var descriptor: Int32
    private let closesDescriptor: Bool
    /// For `.atomic`: the temporary file and the real file it replaces.
    private let temporaryPath: String?
    private let finalPath: String?
    private var finished = false

    public init(path: String) throws {
        self.path = path
        if path == "-" {
            (descriptor, closesDescriptor, kind, temporaryPath, finalPath) = (STDOUT_FILENO, false, .stream, nil, nil)
            return
        }
        if let inherited = Self.inheritedDescriptor(path) {
            // A fresh descriptor of our own, so closing it leaves the process's standard streams open.
            let copy = dup(inherited)
            guard copy >= 0 else { throw OutputFileError(path: path, reason: "descriptor \(inherited) is not open") }
            (descriptor, closesDescriptor, kind, temporaryPath, finalPath) = (copy, true, .stream, nil, nil)
            return
        }
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                throw OutputFileError(path: path, reason: "it is a directory")
            case S_IFREG:
                break
            default:
                let opened = open(path, O_WRONLY | O_CLOEXEC)
                guard opened >= 0 else { throw OutputFileError(path: path, reason: Self.lastError) }
                (descriptor, closesDescriptor, kind, temporaryPath, finalPath) = (opened, true, .stream, nil, nil)
                return
            }
        } else if errno != ENOENT {
            throw OutputFileError(path: path, reason: Self.lastError)
        }
        // A regular file (through any symlinks) or a new path: replace the real file, keep its permissions.
        let target = Self.resolvedTarget(path)
        let folder = (target as NSString).deletingLastPathComponent
        var template = Array(
            ((folder.isEmpty ? "." : folder) as NSString)
                .appendingPathComponent(".\((target as NSString).lastPathComponent).ferry-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard created >= 0 else {
            throw OutputFileError(
                path: path, reason: "cannot create a file in \(folder.isEmpty ? "." : folder): \(Self.lastError)")
        }
        let existingMode = stat(target, &info) == 0 ? info.st_mode & 0o7777 : 0o666 & ~Self.umaskValue
        fchmod(created, existingMode)
        _ = fcntl(created, F_SETFD, FD_CLOEXEC)
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        finalPath = target
        descriptor = created
        closesDescriptor = true
        kind = .atomic
    }

    deinit {
        if !finished { discard() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(path: path, reason: Self.lastError)
            }
            offset += written
        }
    }

    public func write<Bytes: Sequence>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        let array = Array(bytes)
        try array.withUnsafeBytes { try write($0) }
    }

    public func write(_ text: String) throws {
        try write(Array(text.utf8))
    }

    /// Finishes the file: the renamed-into-place file is complete and on disk; a stream is closed.
    public func commit() throws {
        guard !finished else { return }
        finished = true
        if let temporaryPath, let finalPath {
            guard fsync(descriptor) == 0 else {
                let reason = Self.lastError
                close(descriptor)
                unlink(temporaryPath)
                throw OutputFileError(path: path, reason: reason)
            }
            close(descriptor)
            guard rename(temporaryPath, finalPath) == 0 else {
                let reason = Self.lastError
                unlink(temporaryPath)
                throw OutputFileError(path: path, reason: reason)
            }
        } else if closesDescriptor {
            close(descriptor)
        }
    }

    /// Abandons the file: a regular file keeps its old content (or stays absent).
    public func discard() {
        guard !finished else { return }
        finished = true
        if closesDescriptor { close(descriptor) }
        if let temporaryPath { unlink(temporaryPath) }
    }

    /// Writes `bytes` as the whole file.
    public static func write(_ bytes: Data, to path: String) throws {
        let file = try OutputFile(path: path)
        try bytes.withUnsafeBytes { try file.write($0) }
        try file.commit()
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    // MARK: Paths

    /// Whether `path` names a regular file or a new one (written atomically), so that a file "beside
    /// it" makes sense; not for `-`, a descriptor, a pipe or a device.
    public static func isFileOnDisk(_ path: String) -> Bool {
        guard path != "-", inheritedDescriptor(path) == nil else { return false }
        var info = stat()
        if stat(path, &info) != 0 { return errno == ENOENT }
        return info.st_mode & S_IFMT == S_IFREG
    }

    /// The descriptor a path names inside the process: /dev/stdout, /dev/fd/3, /proc/self/fd/3.
    static func inheritedDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return STDOUT_FILENO
        case "/dev/stderr": return STDERR_FILENO
        default: break
        }
        for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"] where path.hasPrefix(prefix) {
            return Int32(path.dropFirst(prefix.count))
        }
        return nil
    }

    /// Follows symlinks (also a dangling one: its target is created) to the file that is really written.
    static func resolvedTarget(_ path: String) -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK,
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: current)
            else { return current }
            current =
                link.hasPrefix("/")
                ? link : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(link)
        }
        return current
    }

    private static let umaskValue: mode_t = {
        let value = umask(0o022)
        umask(value)
        return value
    }()

    static var lastError: String { String(cString: strerror(errno)) }
}

public struct OutputFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "cannot write \(path): \(reason)" }
}
