import Foundation

/// What a plan read, per tenant: how many source rows and a hash of their mapped values in key order.
public struct TenantFingerprint: Codable, Equatable, Sendable {
    public let tenant: String
    public let rows: Int
    public let sha: String
}

/// `ferry plan --out plan.json`: binds a later `apply --plan` to the mapping, the tool version and
/// the data the DBA approved.
public struct PlanFile: Codable, Sendable {
    public static let format = "ferry-plan/2"

    public let format: String
    public let job: String
    public let mappingFile: String
    public let mappingSHA256: String
    public let toolVersion: String
    public let createdAt: String
    public let database: ConnectionInfo?
    /// What one source record is ("contacts", "projects"), for drift messages.
    public let noun: String
    /// The tenants the plan covered (`--tenant`); empty: every tenant.
    public let tenants: [String]
    public let fingerprint: [TenantFingerprint]
    /// The first transaction id the plan's snapshot did not see: rows with a newer xmin were written after it.
    public let snapshotXmax: Int64
    /// The job's plan summary, as `plan --json` would print it.
    public let summary: JSONValue

    public init(
        job: String, mappingFile: String, mappingSHA256: String, noun: String, tenants: [String],
        fingerprint: [TenantFingerprint], snapshotXmax: Int64, database: ConnectionInfo?, summary: JSONValue
    ) {
        format = Self.format
        self.job = job
        self.mappingFile = mappingFile
        self.mappingSHA256 = mappingSHA256
        self.noun = noun
        self.tenants = tenants
        toolVersion = FerryVersion.current
        createdAt = ISO8601DateFormatter().string(from: Date())
        self.database = database
        self.fingerprint = fingerprint
        self.snapshotXmax = snapshotXmax
        self.summary = summary
    }

    /// Writes the plan file; returns the sha256 of its bytes, which the report names for sign-off.
    @discardableResult
    public func write(to path: String) throws -> String {
        let bytes = try JSONEncoder.prettySorted.encode(self)
        try OutputFile.write(bytes, to: path)
        return SHA256.hash(data: bytes).hexString
    }

    /// The sha256 of a plan file as it is on disk, to record what an apply was bound to.
    public static func sha256(of path: String) -> String? {
        FileManager.default.contents(atPath: path).map { SHA256.hash(data: $0).hexString }
    }

    public static func read(_ path: String) throws -> PlanFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DriftError(changes: ["cannot read plan file \(path)"])
        }
        let plan: PlanFile
        do {
            plan = try JSONDecoder().decode(PlanFile.self, from: data)
        } catch {
            throw DriftError(changes: ["\(path) is not a ferry plan file: \(error)"])
        }
        guard plan.format == format else {
            throw DriftError(changes: ["\(path) has format \(plan.format), expected \(format)"])
        }
        return plan
    }

    /// Everything that differs between this plan and what apply is about to do, in words.
    /// `writtenSince`: per tenant, source rows written (inserted or updated) after the plan's snapshot.
    public func drift(
        mappingFile file: String, mappingSHA256 sha256: String, now current: [TenantFingerprint],
        writtenSince: [String: Int] = [:]
    ) -> [String] {
        var changes: [String] = []
        if sha256 != mappingSHA256 {
            changes.append(
                "mapping \(file) changed since the plan (sha256 \(mappingSHA256.prefix(12))… → \(sha256.prefix(12))…)"
            )
        }
        if toolVersion != FerryVersion.current {
            changes.append("ferry version changed since the plan (\(toolVersion) → \(FerryVersion.current))")
        }
        let before = Dictionary(uniqueKeysWithValues: fingerprint.map { ($0.tenant, $0) })
        let after = Dictionary(uniqueKeysWithValues: current.map { ($0.tenant, $0) })
        for tenant in Set(before.keys).union(after.keys).sorted() {
            switch (before[tenant], after[tenant]) {
            case let (old?, new?) where old.rows != new.rows:
                // The count alone hides rows changed in place: say how many were written in all.
                let delta = new.rows - old.rows
                let written =
                    writtenSince[tenant].map { ", \(formatCount($0)) source rows inserted or updated in all" } ?? ""
                changes.append(
                    "tenant \(tenant): \(formatCount(abs(delta))) \(noun) \(delta > 0 ? "added" : "removed") since the plan (\(formatCount(old.rows)) → \(formatCount(new.rows))\(written))"
                )
            case let (old?, new?) where old.sha != new.sha:
                let changed = writtenSince[tenant].map { "\(formatCount($0)) \(noun) changed" } ?? "\(noun) changed"
                changes.append(
                    "tenant \(tenant): \(changed) since the plan (same count, \(formatCount(new.rows)), different values)"
                )
            case (nil, let new?):
                changes.append("tenant \(tenant): \(formatCount(new.rows)) \(noun) that the plan did not see")
            case (let old?, nil):
                changes.append("tenant \(tenant): all \(formatCount(old.rows)) \(noun) of the plan are gone")
            default:
                break
            }
        }
        return changes
    }
}

/// Apply refused because the mapping or the data changed since the approved plan.
public struct DriftError: Error, CustomStringConvertible, Sendable {
    public let changes: [String]
    public var description: String {
        "refusing to apply: what would run is not what was planned\n"
            + changes.map { "  - \($0)" }.joined(separator: "\n")
            + "\nMake a new plan, or pass --allow-drift to apply anyway (the ledger records that you did)."
    }
}
