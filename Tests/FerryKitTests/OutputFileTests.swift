import Foundation
import Glibc
import TestFiles
import Testing
@testable import FerryKit

@Suite("Output files: written, never replaced where they must not be")
struct OutputFileTests {
    let folder: String

    init() throws {
        folder = Scratch.folder("output").path
    }

    func fileType(_ path: String, following: Bool = false) -> mode_t {
        var info = stat()
        let status = following ? stat(path, &info) : lstat(path, &info)
        return status == 0 ? info.st_mode & S_IFMT : 0
    }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func aRegularFileIsReplacedWholeAndKeepsItsPermissions() throws {
        let path = folder + "/report.md"
        try "old content that is longer than the new one\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o640)
        var before = stat()
        stat(path, &before)
        let file = try OutputFile(path: path)
        #expect(file.kind == .atomic)
        try file.write("new\n")
        #expect(contents(path) == "old content that is longer than the new one\n", "the old file stays until commit")
        try file.commit()
        var after = stat()
        stat(path, &after)
        #expect(contents(path) == "new\n")
        #expect(after.st_mode & 0o7777 == 0o640)
        #expect(after.st_ino != before.st_ino, "renamed into place, not rewritten in place")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["report.md"], "no temporary file left")
    }

    @Test func aDiscardedFileLeavesTheOldOneAndNoTemporaryFile() throws {
        let path = folder + "/rejects.csv"
        try "kept\n".write(toFile: path, atomically: false, encoding: .utf8)
        do {
            let file = try OutputFile(path: path)
            try file.write("half written")
            file.discard()
        }
        do {
            let file = try OutputFile(path: path)
            try file.write("dropped without commit")
        }
        #expect(contents(path) == "kept\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["rejects.csv"])
    }

    @Test func aNewPathIsCreatedWithTheUmasksPermissions() throws {
        let path = folder + "/new.json"
        try OutputFile.write("{}", to: path)
        var info = stat()
        stat(path, &info)
        let mask = umask(0o022)
        umask(mask)
        #expect(info.st_mode & 0o777 == 0o666 & ~mask)
        #expect(contents(path) == "{}")
    }

    @Test func aSymlinkIsFollowedAndStaysASymlink() throws {
        let target = folder + "/real.html"
        let link = folder + "/latest.html"
        try "old".write(toFile: target, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.html")
        try OutputFile.write("new", to: link)
        #expect(fileType(link) == S_IFLNK)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "real.html")
        #expect(contents(target) == "new")
        // A dangling link creates its target.
        let dangling = folder + "/dangling"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "made.txt")
        try OutputFile.write("made", to: dangling)
        #expect(fileType(dangling) == S_IFLNK)
        #expect(contents(folder + "/made.txt") == "made")
    }

    @Test func aFIFOIsWrittenThrough() throws {
        let path = folder + "/pipe"
        #expect(mkfifo(path, 0o600) == 0)
        let received = ReceivedBytes()
        let reader = Thread {
            received.set(FileHandle(forReadingAtPath: path)?.readDataToEndOfFile() ?? Data())
        }
        reader.start()
        let file = try OutputFile(path: path)
        #expect(file.kind == .stream)
        try file.write("through the pipe\n")
        try file.commit()
        #expect(received.wait() == "through the pipe\n")
        #expect(fileType(path) == S_IFIFO, "the FIFO is still a FIFO")
    }

    @Test func anInheritedDescriptorIsWrittenThrough() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        for path in ["/dev/fd/\(ends[1])", "/proc/self/fd/\(ends[1])"] {
            let file = try OutputFile(path: path)
            #expect(file.kind == .stream)
            try file.write("via \(path);")
            try file.commit()
        }
        close(ends[1])
        let data = FileHandle(fileDescriptor: ends[0], closeOnDealloc: false).readDataToEndOfFile()
        #expect(String(decoding: data, as: UTF8.self) == "via /dev/fd/\(ends[1]);via /proc/self/fd/\(ends[1]);")
    }

    @Test func aCharacterDeviceIsWrittenThroughNotReplaced() throws {
        let file = try OutputFile(path: "/dev/null")
        #expect(file.kind == .stream)
        try file.write("nothing")
        try file.commit()
        #expect(fileType("/dev/null") == S_IFCHR)
        #expect(fileType("/dev/stdout") == S_IFLNK)
        #expect(OutputFile.inheritedDescriptor("/dev/stdout") == STDOUT_FILENO)
        #expect(OutputFile.inheritedDescriptor("-") == nil)
        #expect(try OutputFile(path: "-").kind == .stream)
    }

    @Test func aDirectoryOrAMissingFolderIsAClearError() throws {
        #expect(throws: OutputFileError.self) { try OutputFile(path: folder) }
        do {
            _ = try OutputFile(path: folder + "/no/such/folder/report.md")
            Issue.record("expected an error")
        } catch let error as OutputFileError {
            #expect(error.description.contains("cannot write \(folder)/no/such/folder/report.md"))
            #expect(error.description.contains("No such file or directory"), "\(error)")
        }
    }
}

/// Bytes a reader thread received, handed to the test thread.
private final class ReceivedBytes: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: Data?

    func set(_ value: Data) {
        condition.lock()
        data = value
        condition.signal()
        condition.unlock()
    }

    func wait() -> String {
        condition.lock()
        defer { condition.unlock() }
        while data == nil { condition.wait() }
        return String(decoding: data!, as: UTF8.self)
    }
}
