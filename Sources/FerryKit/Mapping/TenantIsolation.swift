/// `security:` in a mapping: row-level security on the tables ferry creates, so an application role
/// sees only the tenant named in its session setting (and nothing without it).
public struct TenantIsolation: Equatable, Sendable {
    /// The session setting the application sets to its tenant, e.g. `app.current_tenant`; nil when the
    /// mapping opts out with `row_level_security: false`.
    public let tenantSetting: String?

    public static let defaultSetting = "app.current_tenant"
    public static let policyName = "ferry_tenant_isolation"

    public init(tenantSetting: String?) {
        self.tenantSetting = tenantSetting
    }

    static func parse(_ root: MappingNode) throws -> TenantIsolation {
        let node = root.child("security")
        let enabled = try node?.bool("row_level_security") ?? true
        let setting = try node?.string("tenant_setting") ?? defaultSetting
        try node?.rejectUnknownKeys()
        // A custom setting needs a prefix ("app.") and is spliced into policy text: only plain names pass.
        let plain = setting.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            guard let first = part.unicodeScalars.first,
                first == "_" || (first.isASCII && first.properties.isAlphabetic)
            else { return false }
            return part.unicodeScalars.allSatisfy {
                $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0)
            }
        }
        guard plain, setting.contains(".") else {
            throw (node?.child("tenant_setting") ?? root).error(
                "tenant_setting '\(setting)' must be a custom setting name with a prefix, such as app.current_tenant")
        }
        return TenantIsolation(tenantSetting: enabled ? setting : nil)
    }

    /// Enables row-level security on `table` with one policy for reads and writes: a row is visible
    /// when its tenant equals the session setting. An unset or empty setting matches no row.
    func policySQL(_ table: TableName, tenantColumn: String, tenantType: String) -> String {
        guard let tenantSetting else { return "" }
        let current = "nullif(current_setting(\(sqlLiteral(tenantSetting)), true), '')::\(tenantType)"
        return """
            ALTER TABLE \(table.quoted) ENABLE ROW LEVEL SECURITY;
            CREATE POLICY \(quoteIdentifier(Self.policyName)) ON \(table.quoted)
                USING (\(quoteIdentifier(tenantColumn)) = \(current))
                WITH CHECK (\(quoteIdentifier(tenantColumn)) = \(current));
            """
    }
}
