public enum SchemaStatusReport {
    public static func render(_ status: [SchemaStepStatus]) -> String {
        status.map { entry in
            let state: String
            switch entry.state {
            case .pending: state = "pending"
            case .applied(let at, let by): state = "applied \(at) by \(by)"
            case .drifted(let recorded):
                state =
                    "DRIFT: changed since it was applied (recorded sha256 \(recorded.prefix(12))…, now \(entry.step.checksum.prefix(12))…); not re-run"
            }
            return "  \(entry.step.name)  \(state)"
        }.joined(separator: "\n")
    }
}
