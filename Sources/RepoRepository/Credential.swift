/// What opens a repository's master key: a password (tried on `scrypt` slots), the secret of
/// a machine key file (tried on `keyfile` slots), or access to key management services (tried
/// on `kms` slots). FORMAT.md §7.2 gives each kind's derivation; a credential is only ever tried
/// on slots of its own kind, so a key file costs no scrypt run and a password no KMS request.
public enum Credential: Sendable {
    /// The password's raw bytes (no normalization; the CLI strips the line ending).
    case password([UInt8])
    /// A key file read with `KeyFile.read(path:)` or made with `KeyFile.create(path:)`.
    case keyFile(KeyFile)
    /// The KMS services this process may ask to unwrap a `kms` slot's secret.
    case kms(KMSAccess)

    /// The slot kind this credential opens.
    public var slotKind: KeySlot.Kind {
        switch self {
        case .password: .password
        case .keyFile: .keyFile
        case .kms: .kms
        }
    }
}
