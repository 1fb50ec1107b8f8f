/// One project whose customer is a contact, as extracted with that contact.
public struct LegacyProjectCustomer: Equatable, Sendable {
    public let tenant: String
    public let projectKey: String
    public let contactKey: String
    /// The project's current customer_organization_id (set by the application, or by an earlier run).
    public let customerOrganization: String?
    public let contactName: String
    public let contactType: String?
    public let email: String?
    /// The contact's organization (client_id).
    public let organization: String?
    public let roleText: String?
    /// A contact point for this project and contact exists already.
    public let hasContactPoint: Bool
    /// Projects (in all) whose customer is this contact.
    public let projectsOfContact: Int
    /// The contact is already marked as a primary contact.
    public let isPrimaryContact: Bool
    /// (Citus) md5 of the legacy column as read, recorded with the run for the contract (see `LegacyReads`).
    public var legacyHash: String? = nil

    public init(
        tenant: String, projectKey: String, contactKey: String, customerOrganization: String? = nil,
        contactName: String,
        contactType: String? = "customer", email: String? = nil, organization: String? = nil, roleText: String? = nil,
        hasContactPoint: Bool = false, projectsOfContact: Int = 1, isPrimaryContact: Bool = false
    ) {
        self.tenant = tenant
        self.projectKey = projectKey
        self.contactKey = contactKey
        self.customerOrganization = customerOrganization
        self.contactName = contactName
        self.contactType = contactType
        self.email = email
        self.organization = organization
        self.roleText = roleText
        self.hasContactPoint = hasContactPoint
        self.projectsOfContact = projectsOfContact
        self.isPrimaryContact = isPrimaryContact
    }
}

/// The organization that becomes a project's customer.
public enum CustomerOrganization: Equatable, Hashable, Sendable {
    /// The contact's own organization.
    case existing(key: String)
    /// One organization per tenant and email domain (found by its domain if it exists, else created).
    case emailDomain(domain: String, name: String)
    /// An organization of type individual for this one person.
    case individual(name: String)
}

public enum CustomerAnomalyClass: String, CaseIterable, Codable, Sendable {
    case organizationFromEmailDomain = "no organization: one made from the email domain"
    case individualOrganization = "no organization: an individual organization made"
    case publicEmailDomain = "public email domain: not used as a company"
    case unusableEmail = "email missing or malformed: no domain to use"
    case rejectedNoOrganization = "rejected: no organization, and no rule makes one"
    case notACustomerContact = "rejected: the customer contact is not of a customer type"
    case conflictingOrganization = "rejected: the project already has another customer organization"
    case alreadyLinked = "already linked (skipped)"
    case severalProjects = "contact is the customer of several projects"
    case defaultRole = "role text matched no rule: default role"
    /// Found across projects, by the summary: two domains (example.com, example.org) or two people
    /// can give one name, and the application then shows two organizations a reader cannot tell apart.
    case sameNameAsAnotherNewOrganization = "organization to create has the name of another one this run creates"
}

public struct CustomerAnomaly: Equatable, Sendable {
    public let kind: CustomerAnomalyClass
    public let detail: String
}

/// What happens to one project.
public struct ProjectCustomerDecision: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        /// Make `organization` the customer, with the contact as the primary contact point in `role`.
        case link(organization: CustomerOrganization, role: String)
        /// Left unchanged, with the reason.
        case rejected(reason: String)
        /// Already linked: nothing to do.
        case alreadyLinked
    }

    public let action: Action
    public var anomalies: [CustomerAnomaly] = []
    /// The project's customer_organization_id is still empty and will be set.
    public var setsProjectOrganization = false
    /// The contact gets the organization (it had none) and/or is marked as a primary contact.
    public var updatesContact = false
    public var insertsContactPoint = false
}

/// The customers job's transform: pure, no database.
public struct CustomerTransform: Sendable {
    public let mapping: CustomersMapping

    public init(mapping: CustomersMapping) {
        self.mapping = mapping
    }

    public func decide(_ project: LegacyProjectCustomer) -> ProjectCustomerDecision {
        var anomalies: [CustomerAnomaly] = []
        if project.projectsOfContact > 1 {
            anomalies.append(.init(kind: .severalProjects, detail: "\(project.projectsOfContact) projects"))
        }
        func rejected(_ kind: CustomerAnomalyClass, _ reason: String) -> ProjectCustomerDecision {
            ProjectCustomerDecision(
                action: .rejected(reason: reason), anomalies: anomalies + [.init(kind: kind, detail: reason)])
        }
        if project.customerOrganization != nil, project.hasContactPoint {
            return ProjectCustomerDecision(
                action: .alreadyLinked,
                anomalies: anomalies + [.init(kind: .alreadyLinked, detail: "contact point exists")])
        }
        let type = project.contactType ?? ""
        guard mapping.customerContactTypes.contains(type) else {
            return rejected(
                .notACustomerContact,
                "contact type '\(type)' is not one of \(mapping.customerContactTypes.joined(separator: ", "))")
        }

        var chosen: CustomerOrganization?
        if let organization = project.organization {
            chosen = .existing(key: organization)
        } else {
            rules: for rule in mapping.withoutOrganization {
                switch rule {
                case .createFromEmailDomain:
                    guard let raw = project.email, case .success(let email) = EmailAddress.canonical(raw) else {
                        anomalies.append(
                            .init(kind: .unusableEmail, detail: project.email.map { "'\($0)'" } ?? "no email"))
                        continue
                    }
                    let domain = String(email[email.index(after: email.firstIndex(of: "@")!)...])
                    if mapping.publicEmailDomains.contains(domain) {
                        anomalies.append(.init(kind: .publicEmailDomain, detail: domain))
                        continue
                    }
                    chosen = .emailDomain(domain: domain, name: Self.organizationName(fromDomain: domain))
                    anomalies.append(.init(kind: .organizationFromEmailDomain, detail: domain))
                    break rules
                case .createIndividual:
                    chosen = .individual(name: project.contactName)
                    anomalies.append(.init(kind: .individualOrganization, detail: project.contactName))
                    break rules
                case .reject:
                    return rejected(.rejectedNoOrganization, "the contact has no organization (policy: reject)")
                }
            }
        }
        guard let organization = chosen else {
            return rejected(
                .rejectedNoOrganization,
                "the contact has no organization, and no rule of \(mapping.withoutOrganization.map(\.rawValue).joined(separator: ", ")) applies"
            )
        }
        if let current = project.customerOrganization, organization != .existing(key: current) {
            return rejected(
                .conflictingOrganization,
                "the project's customer organization is \(current), the contact's is \(Self.describe(organization))")
        }
        let role = self.role(for: project.roleText)
        if role == mapping.defaultRole, mapping.roleRules.contains(where: { $0.role == role }) == false {
            anomalies.append(
                .init(
                    kind: .defaultRole, detail: project.roleText.map { "'\($0)' → \(role)" } ?? "no role text → \(role)"
                ))
        }
        var decision = ProjectCustomerDecision(
            action: .link(organization: organization, role: role), anomalies: anomalies)
        decision.setsProjectOrganization = project.customerOrganization == nil
        decision.insertsContactPoint = !project.hasContactPoint
        decision.updatesContact = project.organization == nil || !project.isPrimaryContact
        return decision
    }

    /// The first rule one of whose words or phrases occurs in the role text, else the default.
    public func role(for text: String?) -> String {
        let words = CustomersMapping.words(of: text ?? "")
        let padded = " " + words.joined(separator: " ") + " "
        for rule in mapping.roleRules where rule.match.contains(where: { padded.contains(" \($0) ") }) {
            return rule.role
        }
        return mapping.defaultRole
    }

    /// "acme-tools.co.uk" → "Acme Tools": the registrable label, words capitalized.
    public static func organizationName(fromDomain domain: String) -> String {
        var labels = domain.split(separator: ".").map(String.init)
        if labels.count > 1 { labels.removeLast() }
        if labels.count > 1, let last = labels.last,
            ["co", "com", "org", "net", "ac", "gov", "ltd", "plc"].contains(last),
            domain.split(separator: ".").last?.count == 2
        {
            labels.removeLast()
        }
        let label = labels.last ?? domain
        return label.split(whereSeparator: { $0 == "-" || $0 == "_" }).map {
            $0.prefix(1).uppercased() + $0.dropFirst()
        }.joined(separator: " ")
    }

    static func describe(_ organization: CustomerOrganization) -> String {
        switch organization {
        case .existing(let key): return key
        case .emailDomain(let domain, let name): return "\(name) (new, from \(domain))"
        case .individual(let name): return "\(name) (new, individual)"
        }
    }
}
