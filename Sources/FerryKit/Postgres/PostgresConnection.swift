import CLibPQ
import Foundation
import Glibc

/// An error reported by PostgreSQL or libpq, with the SQLSTATE when the server sent one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let sqlState: String?
    public let detail: String?
    public let context: String

    public var description: String {
        var text = "\(context): \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let detail, !detail.isEmpty { text += "\n  detail: \(detail)" }
        return text
    }

    /// What the server said about the row (the detail, else the message) without its closing period, to
    /// quote inside a sentence of ferry's own.
    public var detailInASentence: String {
        let text = detail ?? message
        return text.hasSuffix(".") ? String(text.dropLast()) : text
    }

    /// Errors worth retrying: connection loss, serialization failure, deadlock, lock timeout.
    public var isTransient: Bool {
        isConnectionLoss || ["40001", "40P01", "55P03"].contains(sqlState ?? "")
    }

    /// The session is gone: libpq lost the connection, or the server ended it (a DBA, a shutdown).
    public var isConnectionLoss: Bool {
        guard let sqlState else { return true }  // no SQLSTATE means libpq lost the connection
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }
}

/// Rows of one result, in text format, copied out of libpq so no C pointer outlives the call.
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    public let affectedRows: Int

    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }

    /// The first column of the first row: for `SELECT count(*)` and the like.
    public var scalar: String? { rows.first?.first ?? nil }
}

/// Where a session is connected, for reports and logs. It never holds a password.
public struct ConnectionInfo: Sendable, Codable, Equatable {
    public let host: String
    public let port: String
    public let database: String
    public let user: String
    public let serverVersion: String
    /// The engine the job's tables live on, when it is not plain PostgreSQL (`DatabaseEngine`).
    public var engine: String? = nil

    /// "PostgreSQL 15.4", and the engine when it is Citus.
    public var serverDescription: String {
        "PostgreSQL \(serverVersion)" + (engine.map { "; \($0)" } ?? "")
    }

    /// "crm on db1:5432 as ferry": where a run ran, as every report names it.
    public var place: String { "\(database) on \(host):\(port) as \(user)" }

    /// The place and the server: "crm on db1:5432 as ferry (PostgreSQL 15.4)".
    public var placeAndServer: String { "\(place) (\(serverDescription))" }

    init(host: String, port: String, database: String, user: String, serverVersion: String) {
        (self.host, self.port, self.database, self.user, self.serverVersion) = (
            host, port, database, user, serverVersion
        )
    }

    private enum CodingKeys: String, CodingKey { case host, port, database, user, serverVersion, engine }

    /// JSON has the port as a number (a Unix socket's port is one too); a string is read back as well.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(host, forKey: .host)
        if let number = Int(port) {
            try container.encode(number, forKey: .port)
        } else {
            try container.encode(port, forKey: .port)
        }
        try container.encode(database, forKey: .database)
        try container.encode(user, forKey: .user)
        try container.encode(serverVersion, forKey: .serverVersion)
        try container.encodeIfPresent(engine, forKey: .engine)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        host = try container.decode(String.self, forKey: .host)
        if let number = try? container.decode(Int.self, forKey: .port) {
            port = String(number)
        } else {
            port = try container.decode(String.self, forKey: .port)
        }
        database = try container.decode(String.self, forKey: .database)
        user = try container.decode(String.self, forKey: .user)
        serverVersion = try container.decode(String.self, forKey: .serverVersion)
        engine = try container.decodeIfPresent(String.self, forKey: .engine)
    }
}

/// One libpq connection. Like libpq itself, a connection must be used by one thread at a time;
/// the pipeline gives each stage its own connection.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?

    /// `conninfo` follows libpq: a key=value string or a postgres:// URI. An empty string means
    /// PG* environment variables and ~/.pgpass, exactly as for psql.
    public init(conninfo: String = "", applicationName: String = "ferry") throws {
        let name = Self.applicationName(
            applicationName, conninfo: conninfo, environment: ProcessInfo.processInfo.environment)
        func connect(password: String?) -> OpaquePointer? {
            let keys = ["dbname", "application_name", "client_encoding"] + (password == nil ? [] : ["password"])
            let values = [conninfo, name, "UTF8"] + (password.map { [$0] } ?? [])
            return withCStringArray(keys) { keyPointers in
                withCStringArray(values) { valuePointers in
                    PQconnectdbParams(keyPointers, valuePointers, 1)
                }
            }
        }
        if PasswordPrompt.forced, PasswordPrompt.cached == nil { PasswordPrompt.ask(user: nil) }
        handle = connect(password: PasswordPrompt.cached)
        // As psql does: when the server asks for a password and none was given, ask on the terminal
        // (once: every later session of this process uses the same answer).
        if let failed = handle, PQstatus(failed) != CONNECTION_OK, PQconnectionNeedsPassword(failed) == 1,
            PasswordPrompt.cached == nil, PasswordPrompt.canAsk
        {
            let user = PQuser(failed).map { String(cString: $0) }
            PQfinish(failed)
            PasswordPrompt.ask(user: user)
            handle = connect(password: PasswordPrompt.cached)
        }
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            var message = handle.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let handle, PQconnectionNeedsPassword(handle) == 1 {
                message =
                    message.trimmingCharacters(in: .whitespacesAndNewlines)
                    + " (the server wants a password: put it in ~/.pgpass or PGPASSWORD, or run ferry on a terminal to be asked, or pass -W)"
            }
            if let handle { PQfinish(handle) }
            self.handle = nil
            throw PostgresError(
                message: message.trimmingCharacters(in: .whitespacesAndNewlines),
                sqlState: nil, detail: nil, context: "connecting to PostgreSQL")
        }
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        // ferry's statements work a batch at a time, yet some cost estimates cross jit_above_cost, and
        // compiling such a statement took longer than running it, batch after batch (the service
        // requests' actor lookup, the import's classification). A SET, not libpq's `options`,
        // so that a PGOPTIONS the DBA set still applies.
        try execute(script: "SET jit = off; \(SessionSettings.propagateLocalSettings)")
    }

    deinit { close() }

    /// The password typed at ferry's prompt, for every session of the process; never printed or stored.
    public enum PasswordPrompt {
        private static let lock = NSLock()
        nonisolated(unsafe) private static var answer: String?
        /// -W: ask before the first connection, whatever the server would say.
        nonisolated(unsafe) public static var forced = false

        static var cached: String? { lock.withLock { answer } }

        /// A terminal to ask on: standard input and /dev/tty.
        static var canAsk: Bool { isatty(STDIN_FILENO) == 1 }

        /// Reads the password from the terminal with echo off.
        static func ask(user: String?) {
            lock.lock()
            defer { lock.unlock() }
            guard answer == nil else { return }
            let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
            guard tty >= 0 else { return }
            defer { Glibc.close(tty) }
            var saved = termios()
            let hasTermios = tcgetattr(tty, &saved) == 0
            if hasTermios {
                var quiet = saved
                quiet.c_lflag &= ~tcflag_t(ECHO)
                tcsetattr(tty, TCSANOW, &quiet)
            }
            let prompt = "Password\(user.map { " for user \($0)" } ?? ""): "
            _ = prompt.withCString { write(tty, $0, strlen($0)) }
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(tty, &byte, 1) == 1, byte != 0x0A, byte != 0x0D { bytes.append(byte) }
            if hasTermios { tcsetattr(tty, TCSANOW, &saved) }
            _ = write(tty, "\n", 1)
            answer = String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The libpq this process loaded, e.g. "15.18".
    public static var libraryVersion: String {
        let version = Int(PQlibVersion())
        return "\(version / 10000).\(version % 10000)"
    }

    /// The name pg_stat_activity shows: the DBA's own (application_name in the connection string, else
    /// PGAPPNAME) with ferry's session role after it, so a monitoring rule keyed on it still matches.
    static func applicationName(_ ferry: String, conninfo: String, environment: [String: String]) -> String {
        var own: String?
        if !conninfo.isEmpty, let options = PQconninfoParse(conninfo, nil) {
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "application_name", let value = option.pointee.val {
                    own = String(cString: value)
                }
                option += 1
            }
            PQconninfoFree(options)
        }
        if own?.isEmpty ?? true { own = environment["PGAPPNAME"] }
        guard let own, !own.isEmpty else { return ferry }
        return "\(own) (\(ferry))"
    }

    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// After a lost connection: this object talks to `replacement`'s session from now on, and
    /// `replacement` is left closed. Everything holding this object sees the new session.
    public func takeOver(_ replacement: PostgresConnection) {
        guard replacement !== self else { return }
        close()
        handle = replacement.handle
        replacement.handle = nil
    }

    public var info: ConnectionInfo {
        let host = PQhost(handle).map { String(cString: $0) } ?? ""
        let version = Int(PQserverVersion(handle))
        return ConnectionInfo(
            host: host.hasPrefix("/") ? "socket \(host)" : host,
            port: PQport(handle).map { String(cString: $0) } ?? "",
            database: PQdb(handle).map { String(cString: $0) } ?? "",
            user: PQuser(handle).map { String(cString: $0) } ?? "",
            serverVersion: "\(version / 10000).\(version % 10000)")
    }

    /// Runs one statement with text parameters ($1, $2, ...). NULL parameters are `nil`.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        let result = try execute(sql, parameters)
        defer { PQclear(result) }
        return copyResult(result)
    }

    /// Runs statements without parameters (several may be separated by semicolons).
    public func execute(script sql: String) throws {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, context: firstLine(of: sql))
    }

    /// Runs `body` inside BEGIN/COMMIT; rolls back when it throws.
    public func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        try bracketed(begin, commit: "COMMIT", rollback: "ROLLBACK", body)
    }

    /// Runs `body` so that an error it throws leaves the session usable: inside a transaction block
    /// (where any error aborts the transaction), in a savepoint rolled back when it throws.
    public func keepingTransactionUsable<T>(_ body: () throws -> T) throws -> T {
        guard PQtransactionStatus(handle) == PQTRANS_INTRANS else { return try body() }
        return try bracketed(
            "SAVEPOINT ferry_guarded", commit: "RELEASE SAVEPOINT ferry_guarded",
            rollback: "ROLLBACK TO SAVEPOINT ferry_guarded", body)
    }

    /// `begin`, then `body`, then `commit`; `rollback` instead when `body` throws.
    private func bracketed<T>(_ begin: String, commit: String, rollback: String, _ body: () throws -> T) throws -> T {
        try execute(script: begin)
        do {
            let value = try body()
            try execute(script: commit)
            return value
        } catch {
            if isConnected { _ = try? execute(script: rollback) }
            throw error
        }
    }

    public var isConnected: Bool { handle != nil && PQstatus(handle) == CONNECTION_OK }

    /// Inside a transaction block (or one that failed and awaits its ROLLBACK).
    public var inTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    // MARK: COPY

    /// Streams rows into `COPY ... FROM STDIN` (text format). `write` is called with a sink
    /// that accepts already-encoded bytes; see `CopyTextEncoder`.
    public func copyIn(
        _ copyStatement: String, _ write: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> Int {
        let start = PQexec(handle, copyStatement)
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            defer { PQclear(start) }
            try check(start, context: firstLine(of: copyStatement))
            throw PostgresError(
                message: "server did not enter COPY IN", sqlState: nil, detail: nil,
                context: firstLine(of: copyStatement))
        }
        PQclear(start)
        var failure: Error?
        do {
            try write { bytes in
                guard bytes.count > 0 else { return }
                let sent = PQputCopyData(
                    handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
                if sent != 1 { throw self.connectionError(context: "sending COPY data") }
            }
        } catch {
            failure = error
        }
        let endStatus = failure == nil ? PQputCopyEnd(handle, nil) : PQputCopyEnd(handle, "aborted by ferry")
        if endStatus != 1 { throw connectionError(context: "ending COPY") }
        var affected = 0
        var serverError: Error?
        while let result = PQgetResult(handle) {
            do {
                try check(result, context: firstLine(of: copyStatement))
                affected = Int(String(cString: PQcmdTuples(result))) ?? affected
            } catch { serverError = serverError ?? error }
            PQclear(result)
        }
        if let failure { throw failure }
        if let serverError { throw serverError }
        return affected
    }

    /// Streams `COPY ... TO STDOUT` and hands each data line (without its newline) to `line`.
    public func copyOut(_ copyStatement: String, _ line: (UnsafeRawBufferPointer) throws -> Void) throws {
        let start = PQexec(handle, copyStatement)
        if PQresultStatus(start) != PGRES_COPY_OUT {
            defer { PQclear(start) }
            try check(start, context: firstLine(of: copyStatement))
            throw PostgresError(
                message: "server did not enter COPY OUT", sqlState: nil, detail: nil,
                context: firstLine(of: copyStatement))
        }
        PQclear(start)
        var callbackError: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length == -1 { break }
            if length == -2 { throw connectionError(context: "reading COPY data") }
            if let buffer {
                if callbackError == nil {
                    var count = Int(length)
                    if count > 0, buffer[count - 1] == 0x0A { count -= 1 }
                    do { try line(UnsafeRawBufferPointer(start: buffer, count: count)) } catch { callbackError = error }
                }
                PQfreemem(buffer)
            }
        }
        var serverError: Error?
        while let result = PQgetResult(handle) {
            do { try check(result, context: firstLine(of: copyStatement)) } catch { serverError = serverError ?? error }
            PQclear(result)
        }
        if let callbackError { throw callbackError }
        if let serverError { throw serverError }
    }

    // MARK: Private

    private func execute(_ sql: String, _ parameters: [String?]) throws -> OpaquePointer? {
        let result: OpaquePointer? = withOptionalCStringArray(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        do {
            try check(result, context: firstLine(of: sql))
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    private func check(_ result: OpaquePointer?, context: String) throws {
        guard let result else { throw connectionError(context: context) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN, PGRES_COPY_OUT:
            return
        default:
            func field(_ code: UInt8) -> String? {
                PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
            }
            throw PostgresError(
                message: field(UInt8(ascii: "M")) ?? String(cString: PQresultErrorMessage(result)),
                sqlState: field(UInt8(ascii: "C")),
                detail: field(UInt8(ascii: "D")),
                context: context)
        }
    }

    private func connectionError(context: String) -> PostgresError {
        let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "not connected"
        return PostgresError(
            message: message.trimmingCharacters(in: .whitespacesAndNewlines),
            sqlState: nil, detail: nil, context: context)
    }

    private func copyResult(_ result: OpaquePointer?) -> QueryResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, affectedRows: affected)
    }

    private func firstLine(of sql: String) -> String {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        let line = trimmed.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? trimmed
        return line.count > 100 ? String(line.prefix(100)) + "…" : line
    }
}

/// Quotes an identifier for SQL the way PostgreSQL's quote_ident does, always quoting,
/// so names from mapping files can never change the statement's meaning.
public func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// A string literal for SQL text that cannot take parameters (DO blocks): quotes doubled.
public func sqlLiteral(_ value: String) -> String {
    "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

private func withOptionalCStringArray<R>(
    _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
) -> R {
    if strings.isEmpty { return body(nil) }
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}
