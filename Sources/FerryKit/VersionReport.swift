import Foundation

/// `ferry --version`: what a bug report needs, read from the running process: ferry's version and
/// commit, the libpq it loaded and the libphonenumber it was built with, and the server the PG* variables point at.
public enum VersionReport {
    public static func text(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var lines = ["ferry \(FerryVersion.current) (commit \(commit() ?? "unknown: not run from a git checkout"))"]
        lines.append("libpq \(PostgresConnection.libraryVersion)")
        lines.append("libphonenumber \(PhoneNumberParser.libraryVersion)")
        do {
            let connection = try PostgresConnection(conninfo: "connect_timeout=3", applicationName: "ferry --version")
            let info = connection.info
            lines.append(
                "server PostgreSQL \(info.serverVersion) at \(info.host):\(info.port) (database \(info.database), user \(info.user))"
            )
            connection.close()
        } catch {
            lines.append(
                "server not reached with the PG* variables: \(String(describing: error).split(separator: "\n").first ?? "")"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The commit of the checkout the executable was built in (it lives in its .build folder).
    static func commit() -> String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return nil
        }
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(".git").path) { break }
            folder.deleteLastPathComponent()
        }
        guard folder.path != "/" else { return nil }
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["-C", folder.path, "describe", "--always", "--dirty", "--abbrev=12"]
        let output = Pipe()
        git.standardOutput = output
        git.standardError = FileHandle.nullDevice
        guard (try? git.run()) != nil else { return nil }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        git.waitUntilExit()
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return git.terminationStatus == 0 && !commit.isEmpty ? commit : nil
    }
}
