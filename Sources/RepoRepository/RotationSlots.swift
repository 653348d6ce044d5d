import RepoPrimitives
public import RepoStorage
public import Foundation

/// The key-slot side of a master-key rotation (FORMAT.md §7.6): carrying slots over to the new
/// key when it begins, and dropping the transition slots when it ends. The re-encryption in
/// between is `KeyRotation`'s (RepoOperations).
///
/// A rotation keeps exactly the slots whose credential is presented (the opener's, and
/// `repo key rotate --carry-…`): for each it writes a *transition* slot, which wraps the new key
/// with the old encryption root retired into it (readers need it until every object is
/// re-encrypted), and a *final* slot wrapping the new key alone. Every other slot is revoked,
/// and only when the caller says so. Writes come before deletes and the opener's slots before
/// anyone else's, so a crash anywhere leaves a repository that the opener's credential still
/// opens and that `repo key rotate` resumes.
public enum RotationSlots {
    /// What `begin` did to the slots.
    public struct Begun: Sendable {
        /// The key to open the repository with for the rest of the rotation: the new root,
        /// with the old one retired into it.
        public var key: MasterKey
        /// True when a rotation was already under way (this run resumes it).
        public var resumed: Bool
        /// Old slots carried over to the new key (id, kind, host), and old slots revoked.
        public var carried: [(id: String, kind: KeySlot.Kind, host: String)] = []
        public var revoked: [(id: String, kind: KeySlot.Kind, host: String)] = []
        /// Slots written (transition and final).
        public var written = 0
        /// Objects under `keys/` no version of this format can read, left alone.
        public var unreadable: [String] = []
        /// True when this call only finished an earlier rotation whose last step (dropping the
        /// transition slots) was cut short: nothing else is left to do.
        public var finishedEarlier = false
    }

    /// Begins a rotation, or resumes the slot step of one under way.
    ///
    /// - Parameters:
    ///   - ring: the slots opened with the rotating operator's credential.
    ///   - opener: that credential; its slots are carried first.
    ///   - carry: further credentials whose slots to carry (passwords, key files, KMS access).
    ///   - revokeOthers: delete the old slots no credential opened; without it they make the
    ///     call fail before anything is written.
    ///   - now: the storage's clock (FORMAT.md §29.3), recorded as the rotation's start.
    /// - Throws: `RepoError` `.failure` when old slots would be revoked without `revokeOthers`,
    ///   or another credential's rotation is under way; `.usage` when a carried credential
    ///   opens no slot; storage errors.
    public static func begin(ring: KeyRing, opener: Credential, carry: [Credential], revokeOthers: Bool,
                             now: Date) throws -> Begun {
        let backend = ring.backend, id = ring.config.id
        let entries = try ring.slots()
        var key = ring.key
        let resumed = key.isRotating
        if !resumed {
            let transitions = entries.filter { $0.slot?.transition == true }
            if !transitions.isEmpty && transitions.allSatisfy({ $0.slot?.master == key.fingerprint }) {
                // A finished rotation whose last step, dropping the transition slots, was cut
                // short: this credential already opens the final key. Finish that step.
                try finish(backend: backend, key: key)
                var done = Begun(key: key, resumed: true)
                done.finishedEarlier = true
                return done
            } else if !transitions.isEmpty {
                throw RepoError(.failure, "a master-key rotation begun with another credential is under way in \(backend.location), and \(Self.describe(ring.openedKind)) \(ring.openedSlot.prefix(8)) is not carried by it",
                                hint: "resume it with the credential that started it (`repo key rotate` with that password, key file or KMS key)")
            }
            var next = MasterKey(encryption: SecureRandom.bytes(32), blobID: key.blobID, chunker: key.chunker)
            next.retired = [key.encryption]
            next.rotationStarted = now
            key = next
        }
        let final = key.withoutRetired
        let generation = final.fingerprint
        var begun = Begun(key: key, resumed: resumed)
        let newGeneration = entries.filter { $0.kind != nil && $0.slot?.master == generation }
        let old = entries.filter { $0.kind != nil && $0.slot?.master != generation }
        begun.unreadable = entries.filter { $0.kind == nil }.map(\.id)

        // Plan everything before writing anything: a refusal must leave the slots as they were.
        var writes: [KeySlot] = []
        var carried = Set<String>()
        var unreachable: [String: String] = [:]   // KMS slot id → the service's reason
        for credential in [opener] + carry {
            if case .kms = credential {
                // A KMS slot is known by its envelope, which its carried slots keep. One whose
                // service refuses (a deleted key) is not carried, like a slot without a
                // credential: it is left for --revoke-others, with the service's reason.
                for entry in old where entry.kind == .kms {
                    guard let slot = entry.slot, !carried.contains(entry.id) else { continue }
                    if newGeneration.contains(where: { $0.slot?.kms == slot.kms }) { carried.insert(entry.id); continue }
                    let made: [KeySlot]?
                    do {
                        made = try slot.rewrapped(masters: [key, final], credential: credential, repositoryID: id)
                    } catch let error as RepoError where error.kind == .keyService {
                        unreachable[entry.id] = error.message
                        continue
                    }
                    guard let made else { continue }
                    writes += made
                    carried.insert(entry.id)
                    unreachable[entry.id] = nil
                }
                continue
            }
            let kind = credential.slotKind
            let alreadyCarried = try newGeneration.contains { entry in
                guard entry.kind == kind, entry.slot?.transition != true, let slot = entry.slot else { return false }
                return try slot.open(credential, repositoryID: id) != nil
            }
            var opened: [KeyRing.Entry] = []
            for entry in old where entry.kind == kind && !carried.contains(entry.id) {
                if let slot = entry.slot, try slot.open(credential, repositoryID: id) != nil { opened.append(entry) }
            }
            if opened.isEmpty && !alreadyCarried {
                throw RepoError(.wrongPassword, "a \(describe(kind)) given to carry opens no key slot of \(backend.location); nothing was changed",
                                hint: "`repo key list` shows the slots; give only credentials that open one")
            }
            carried.formUnion(opened.map(\.id))
            if !alreadyCarried, let template = opened.first?.slot,
               let made = try template.rewrapped(masters: [key, final], credential: credential, repositoryID: id) {
                writes += made
            }
        }
        let leftovers = old.filter { !carried.contains($0.id) }
        if !leftovers.isEmpty && !revokeOthers {
            let list = leftovers.map { e in
                "\(e.id.prefix(8)) (\(describe(e.kind!)), \(e.slot?.username ?? "?")@\(e.slot?.host ?? "?")\(unreachable[e.id].map { ": " + $0 } ?? ""))"
            }
            throw RepoError(.failure, "\(leftovers.count) key slot(s) would stop working after the rotation, and no credential for them was given: \(list.joined(separator: ", ")); nothing was changed",
                            hint: "carry them with --carry-password-file FILE, --carry-key-file FILE or --carry-kms, or revoke them with --revoke-others")
        }
        for slot in writes {
            let bytes = try slot.encoded()
            try backend.put("keys/" + SHA256Hasher.hash(bytes).hex, data: bytes)
            begun.written += 1
        }
        for entry in old {
            try backend.delete("keys/" + entry.id)
            let record = (entry.id, entry.kind!, entry.slot?.host ?? "")
            if carried.contains(entry.id) { begun.carried.append(record) } else { begun.revoked.append(record) }
        }
        return begun
    }

    /// Ends a rotation's slot side: deletes the transition slots of `key`'s generation, after
    /// which every opener gets the final key alone and the retired root opens nothing. Returns
    /// how many were deleted.
    @discardableResult
    public static func finish(backend: StorageBackend, key: MasterKey, afterDelete: (() -> Void)? = nil) throws -> Int {
        let generation = key.withoutRetired.fingerprint
        var deleted = 0
        for name in try backend.listNames(prefix: "keys/").sorted() {
            guard let slot = try? KeySlot.decode(try backend.get(name)), slot.transition == true, slot.master == generation else { continue }
            try backend.delete(name)
            deleted += 1
            afterDelete?()
        }
        return deleted
    }

    static func describe(_ kind: KeySlot.Kind) -> String {
        switch kind {
        case .password: "password"
        case .keyFile: "key file"
        case .kms: "KMS key"
        }
    }
}
