/// The contacts whose email equals an actor's canonical email, as extract found them.
public struct ActorMatch: Equatable, Sendable {
    /// The contact chosen: one whose stored email is already canonical first, then the smallest key.
    public let key: String
    public let organization: String?
    /// How many contacts of the tenant share this canonical email (more than one: duplicates).
    public let candidates: Int

    public init(key: String, organization: String?, candidates: Int = 1) {
        self.key = key
        self.organization = organization
        self.candidates = candidates
    }
}

/// One legacy service request, with the contacts its two email columns match today.
public struct LegacyServiceRequest: Equatable, Sendable {
    public let tenant: String
    public let requestKey: String
    public let status: String
    public let submittedByEmail: String?
    public let assignedToEmail: String?
    public let submittedMatch: ActorMatch?
    public let assignedMatch: ActorMatch?
    /// The target columns as they are now (an earlier run, or the application, may have set them).
    public let submittedContact, assignedContact, fleetCompany, supplierCompany: String?
    public let createdAt: String?

    public init(
        tenant: String, requestKey: String, status: String, submittedByEmail: String? = nil,
        assignedToEmail: String? = nil,
        submittedMatch: ActorMatch? = nil, assignedMatch: ActorMatch? = nil, submittedContact: String? = nil,
        assignedContact: String? = nil, fleetCompany: String? = nil, supplierCompany: String? = nil,
        createdAt: String? = nil
    ) {
        self.tenant = tenant
        self.requestKey = requestKey
        self.status = status
        self.submittedByEmail = submittedByEmail
        self.assignedToEmail = assignedToEmail
        self.submittedMatch = submittedMatch
        self.assignedMatch = assignedMatch
        self.submittedContact = submittedContact
        self.assignedContact = assignedContact
        self.fleetCompany = fleetCompany
        self.supplierCompany = supplierCompany
        self.createdAt = createdAt
    }
}

/// Who an email column names after the migration.
public enum RequestActor: Equatable, Sendable {
    case existing(key: String, organization: String?)
    /// No contact has this canonical email: one is created on first sight.
    case emergent(email: String)

    var organization: String? {
        if case .existing(_, let organization) = self { return organization } else { return nil }
    }
}

public enum ServiceRequestAnomalyClass: String, CaseIterable, Codable, Sendable {
    case unmappedStatus = "rejected: status not in the mapping's table"
    case malformedEmail = "rejected: malformed email"
    case statusMapped = "status mapped"
    /// Counted per request and column, beside the run's count of contacts created (one per email).
    case emergentContact = "names a contact created on first sight"
    case duplicateContacts = "several contacts share the canonical email (one is used)"
    case emailCanonicalized = "email trimmed or lower-cased"
    case actorWithoutOrganization = "actor has no organization: company column left empty"
    case unchanged = "already migrated (unchanged)"
}

public struct ServiceRequestAnomaly: Equatable, Sendable {
    public let kind: ServiceRequestAnomalyClass
    public let detail: String
}

public struct ServiceRequestDecision: Equatable, Sendable {
    public enum Action: Equatable, Sendable { case update, unchanged, rejected(reason: String) }
    public let action: Action
    public var newStatus: String?
    public var submitted: RequestActor?
    public var assigned: RequestActor?
    /// Canonical emails, as the load resolves them again.
    public var submittedEmail: String?
    public var assignedEmail: String?
    public var anomalies: [ServiceRequestAnomaly] = []
}

/// The service-requests job's transform: pure, no database.
public struct ServiceRequestTransform: Sendable {
    public let mapping: ServiceRequestsMapping

    public init(mapping: ServiceRequestsMapping) {
        self.mapping = mapping
    }

    public func decide(_ request: LegacyServiceRequest) -> ServiceRequestDecision {
        var anomalies: [ServiceRequestAnomaly] = []
        guard let status = mapping.statuses[ServiceRequestsMapping.statusKey(request.status)] else {
            let reason = "status '\(request.status)' is not in the mapping's statuses"
            return ServiceRequestDecision(
                action: .rejected(reason: reason), anomalies: [.init(kind: .unmappedStatus, detail: reason)])
        }
        if status != request.status {
            anomalies.append(.init(kind: .statusMapped, detail: "'\(request.status)' → \(status)"))
        }

        func actor(
            _ raw: String?, _ match: ActorMatch?, column: String
        ) -> Result<(email: String, actor: RequestActor)?, EmailRejection> {
            guard let raw, !raw.trimmingWhitespace().isEmpty else { return .success(nil) }
            switch EmailAddress.canonical(raw) {
            case .failure(let rejection):
                return .failure(EmailRejection(reason: "\(column) '\(raw)': \(rejection.reason)"))
            case .success(let email):
                if email != raw { anomalies.append(.init(kind: .emailCanonicalized, detail: "'\(raw)' → \(email)")) }
                guard let match else {
                    anomalies.append(.init(kind: .emergentContact, detail: email))
                    return .success((email, .emergent(email: email)))
                }
                if match.candidates > 1 {
                    anomalies.append(
                        .init(
                            kind: .duplicateContacts,
                            detail: "\(email): \(match.candidates) contacts, \(match.key) used"))
                }
                if match.organization == nil {
                    anomalies.append(.init(kind: .actorWithoutOrganization, detail: "\(column) \(email)"))
                }
                return .success((email, .existing(key: match.key, organization: match.organization)))
            }
        }
        let submitted: (email: String, actor: RequestActor)?
        let assigned: (email: String, actor: RequestActor)?
        switch (
            actor(request.submittedByEmail, request.submittedMatch, column: "submitted_by_email"),
            actor(request.assignedToEmail, request.assignedMatch, column: "assigned_to_email")
        ) {
        case (.failure(let rejection), _), (_, .failure(let rejection)):
            return ServiceRequestDecision(
                action: .rejected(reason: rejection.reason),
                anomalies: [.init(kind: .malformedEmail, detail: rejection.reason)])
        case (.success(let s), .success(let a)):
            submitted = s
            assigned = a
        }
        func key(_ actor: RequestActor?) -> String? {
            if case .existing(let key, _)? = actor { return key } else { return nil }
        }
        let emergent = [submitted?.actor, assigned?.actor].contains {
            if case .emergent? = $0 { return true } else { return false }
        }
        let unchanged =
            !emergent && status == request.status
            && key(submitted?.actor) == request.submittedContact && key(assigned?.actor) == request.assignedContact
            && submitted?.actor.organization == request.fleetCompany
            && assigned?.actor.organization == request.supplierCompany
        if unchanged {
            return ServiceRequestDecision(
                action: .unchanged, anomalies: [.init(kind: .unchanged, detail: "nothing differs")])
        }
        return ServiceRequestDecision(
            action: .update, newStatus: status, submitted: submitted?.actor, assigned: assigned?.actor,
            submittedEmail: submitted?.email, assignedEmail: assigned?.email, anomalies: anomalies)
    }
}
