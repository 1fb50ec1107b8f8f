/// One batch of legacy contacts and their outcomes, as it travels from the transform to a sink.
typealias PhonesBatch = MigrationBatch<LegacyPhoneContact, PhoneContactOutcome>
