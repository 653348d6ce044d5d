import RepoPrimitives
public import RepoStorage
import Foundation

/// A repository's key slots, opened with one credential (FORMAT.md §7.2): the master key, the
/// slot that opened it, and listing, adding and removing slots. It needs no catalog and takes
/// no lock: a slot is one `keys/<h>` object, written or deleted on its own, and no other object
/// changes.
public struct KeyRing {
    public let backend: StorageBackend
    public let config: RepositoryConfig
    public let key: MasterKey
    /// The id (object name under `keys/`) of the slot that opened `key`.
    public let openedSlot: String
    /// The kind of that slot: what this process was opened with.
    public let openedKind: KeySlot.Kind
    /// Set when the key this slot wraps is not the one the repository's other slots wrap, and
    /// no rotation is under way: most likely the slot of a master key a finished rotation
    /// retired, kept by someone or put back (FORMAT.md §7.6), which opens no object. A text
    /// for a warning; nil otherwise.
    public var retiredKeyNotice: String? = nil

    /// One slot as stored.
    public struct Entry {
        /// The object name under `keys/`: the SHA-256 of the slot's bytes.
        public let id: String
        /// The decoded slot; nil when it cannot be read (then `problem` says why).
        public let slot: KeySlot?
        public let problem: String?

        /// The kind of a slot whose fields check out (`KeySlot.checkedFields`); nil otherwise.
        public var kind: KeySlot.Kind? { problem == nil ? slot?.kind : nil }
    }

    /// Finds the slot `credential` opens: slots in ascending name order, only those of the
    /// credential's kind (a password runs no key-file derivation, a key file no scrypt, neither
    /// asks a KMS).
    ///
    /// - Throws: `RepoError` `.wrongPassword` if no slot opens (the message names the key file,
    ///   or points at the password options), `.keyService` if no KMS slot opens and a KMS
    ///   refused or could not be reached (with its reasons), `.usage` if the KMS slots need a
    ///   service this process was not given (`--kms-command`), `.integrity` if `keys/` is empty
    ///   or no slot in it is readable.
    public static func open(backend: StorageBackend, config: RepositoryConfig, credential: Credential) throws -> KeyRing {
        let names = try backend.listNames(prefix: "keys/").sorted()
        guard !names.isEmpty else {
            throw RepoError(.integrity, "the repository at \(backend.location) has no key slots (keys/ is empty)")
        }
        var malformed: [String] = []
        var ofKind = 0
        var serviceErrors: [RepoError] = []
        var providers: Set<String> = [], unservedProviders: Set<String> = [], skippedByPin = 0
        // A rotation's transition slots (FORMAT.md §7.6) are tried first: while one exists the
        // opener needs the retired roots it carries, which the final slot beside it lacks.
        var decoded: [(name: String, slot: Result<KeySlot, Error>)] = names.map { name in
            (name, Result { try KeySlot.decode(try backend.get(name)) })
        }
        decoded = decoded.filter { (try? $0.slot.get().transition) == true } + decoded.filter { (try? $0.slot.get().transition) != true }
        for (name, decodedSlot) in decoded {
            // A damaged, planted or unknown slot must not lock out the others: note it and go on.
            do {
                let slot = try decodedSlot.get()
                guard slot.kind == credential.slotKind else {
                    if slot.kind == nil { _ = try slot.checkedFields() }   // names the unknown kdf
                    continue
                }
                ofKind += 1
                if case .kms(let access) = credential, let kms = slot.kms {
                    providers.insert(kms.provider)
                    if access.service(for: kms.provider) == nil { unservedProviders.insert(kms.provider) }
                    if let pin = access.pinnedKeyID, pin != kms.keyID { skippedByPin += 1 }
                }
                if let key = try slot.open(credential, repositoryID: config.id) {
                    var ring = KeyRing(backend: backend, config: config, key: key, openedSlot: String(name.dropFirst("keys/".count)),
                                       openedKind: credential.slotKind)
                    // Slots of two master keys with no rotation under way: a retired key's
                    // slots were kept or put back (legacy slots without `master` do not count).
                    let all = decoded.compactMap { try? $0.slot.get() }
                    let generations = Set(all.compactMap(\.master)).union([key.fingerprint])
                    if !key.isRotating, !all.contains(where: { $0.transition == true }), generations.count > 1,
                       all.contains(where: { $0.master != nil }) {
                        ring.retiredKeyNotice = "the key slots of \(backend.location) wrap \(generations.count) different master keys (\(generations.sorted().joined(separator: ", "))) and no rotation is under way: slots of a key that `repo key rotate` retired were kept or put back. This command opened slot \(ring.openedSlot.prefix(8)), of master key \(key.fingerprint); if objects fail authentication, it is a retired key's slot: open with a current password, key file or KMS key, and `repo key remove` the retired slots (`repo key list` shows each slot's master key)"
                    }
                    return ring
                }
            } catch let error as RepoError where error.kind == .keyService {
                // The KMS said no or did not answer: another slot may still open; if none does,
                // this is the reason to report (never "wrong password").
                serviceErrors.append(error)
            } catch {
                malformed.append("\(name): \(error)")
            }
        }
        if malformed.count == names.count {
            throw RepoError(.integrity, "no key slot of \(backend.location) is readable: " + malformed.joined(separator: "; "))
        }
        switch credential {
        case .password:
            throw RepoError(.wrongPassword, "wrong password for \(backend.location): no key slot opens with it (check REPO_PASSWORD, --password-file or --password-command)",
                            hint: ofKind == 0 ? "this repository has no password slots: open it with its key file (--key-file FILE or REPO_KEY_FILE)" : nil)
        case .kms(let access):
            if let first = serviceErrors.first {
                // One line per distinct reason (several slots of one key fail alike).
                var seen = Set<String>()
                let reasons = serviceErrors.map(\.message).filter { seen.insert($0).inserted }
                throw RepoError(.keyService, reasons.joined(separator: "; "), hint: first.hint)
            }
            if ofKind == 0 {
                throw RepoError(.wrongPassword, "the repository at \(backend.location) has no KMS key slots",
                                hint: "open it with a password or key file and add one with `repo key add --kms-key-id ID`")
            }
            if !unservedProviders.isEmpty && unservedProviders == providers {
                throw RepoError(.usage, "the KMS key slots of \(backend.location) are served by an external command, and none was given",
                                hint: "pass --kms-command CMD (or set REPO_KMS_COMMAND) with the wrap/unwrap program those slots were made with (README, \"Keys\")")
            }
            if let pin = access.pinnedKeyID, skippedByPin == ofKind {
                throw RepoError(.wrongPassword, "no KMS key slot of \(backend.location) uses the pinned key \(pin)",
                                hint: "REPO_KMS_KEY_ID must be the key id `repo key list` shows for the slot (an ARN for AWS KMS), exactly")
            }
            throw RepoError(.wrongPassword, "no KMS key slot of \(backend.location) opened: the service unwrapped a secret that does not open the slot (was the slot altered?)",
                            hint: "`repo key list` shows the slots; open with a password or key file and add a new KMS slot")
        case .keyFile(let file):
            throw RepoError(.wrongPassword, "the key file \(file.path) does not open any slot of \(backend.location) (was its slot removed?)",
                            hint: ofKind == 0 ? "this repository has no key-file slots; open it with a password and add one with `repo key add --new-key-file FILE`"
                                : "check --key-file / REPO_KEY_FILE and --repo; `repo key list`, opened with a password, shows the slots")
        }
    }

    /// Every object under `keys/`, in name order, decoded and checked where possible.
    public func slots() throws -> [Entry] {
        try backend.listNames(prefix: "keys/").sorted().map { name in
            let id = String(name.dropFirst("keys/".count))
            do {
                let slot = try KeySlot.decode(try backend.get(name))
                do {
                    _ = try slot.checkedFields()
                    return Entry(id: id, slot: slot, problem: nil)
                } catch {
                    return Entry(id: id, slot: slot, problem: "\(error)")
                }
            } catch {
                return Entry(id: id, slot: nil, problem: "not valid key slot JSON")
            }
        }
    }

    /// The full id of the slot whose id starts with `prefix` (case-insensitive).
    ///
    /// - Throws: `RepoError` `.usage` for a prefix that is not hex, `.failure` when no slot or
    ///   more than one matches.
    public func resolve(_ prefix: String) throws -> String {
        guard !prefix.isEmpty, Hex.isHex(prefix) else {
            throw RepoError(.usage, "\"\(prefix)\" is not a key slot id: give the id (or a unique prefix of it) that `repo key list` shows")
        }
        let hits = try backend.listNames(prefix: "keys/").map { String($0.dropFirst("keys/".count)) }
            .filter { $0.hasPrefix(prefix.lowercased()) }
        guard hits.count == 1 else {
            throw RepoError(.failure, hits.isEmpty ? "no key slot with id \(prefix) in \(backend.location)" : "key slot id prefix \(prefix) is ambiguous (\(hits.count) matches)",
                            hint: hits.isEmpty ? "list them with `repo key list`" : "give more digits of the id")
        }
        return hits[0]
    }

    /// Writes a new slot wrapping this master key for `credential` (`n`: scrypt cost of a
    /// password slot) and returns its id. Nothing else is written.
    @discardableResult
    public func add(_ credential: Credential, n: UInt64 = KeySlot.defaultN) throws -> String {
        try refuseDuringRotation("add a key slot")
        let slot = try KeySlot.make(master: key, credential: credential, repositoryID: config.id, n: n,
                                    host: HostInfo.hostname, username: HostInfo.username)
        let bytes = try slot.encoded()
        let id = SHA256Hasher.hash(bytes).hex
        try backend.put("keys/" + id, data: bytes)
        return id
    }

    /// Writes a new `kms` slot whose secret `service` wraps under its key `keyID`, and returns
    /// its id and the slot (with the key id the service reported). Nothing else is written.
    ///
    /// - Throws: what the service throws (`RepoError` `.keyService`), or a storage error.
    public func addKMS(service: any KeyManagementService, keyID: String) throws -> (id: String, slot: KeySlot) {
        try refuseDuringRotation("add a key slot")
        let slot = try KeySlot.make(master: key, service: service, keyID: keyID, repositoryID: config.id,
                                    host: HostInfo.hostname, username: HostInfo.username)
        let bytes = try slot.encoded()
        let id = SHA256Hasher.hash(bytes).hex
        try backend.put("keys/" + id, data: bytes)
        return (id, slot)
    }

    /// Slots change only through the rotation while one runs (FORMAT.md §7.6): a slot added now
    /// would wrap the transition key, and one removed could be the only way in.
    ///
    /// - Throws: `RepoError` `.failure` during a rotation.
    func refuseDuringRotation(_ what: String) throws {
        // A transition slot anywhere means a rotation, even when this process opened an old
        // slot that the rotation has not deleted yet (or that someone put back).
        let rotating = try key.isRotating || backend.listNames(prefix: "keys/").contains { name in
            (try? KeySlot.decode(try backend.get(name)))?.transition == true
        }
        guard rotating else { return }
        throw RepoError(.failure, "cannot \(what) while a master-key rotation is under way in \(backend.location)",
                        hint: "finish it first with `repo key rotate` (it resumes where it stopped)")
    }

    /// Deletes slot `id`. The slot that opened this process is removed only with `force`, and
    /// never when no other readable slot would remain.
    ///
    /// - Throws: `RepoError` `.failure` when refused (the message says why and what to do), or
    ///   when `id` is not a slot.
    public func remove(_ id: String, force: Bool) throws {
        try refuseDuringRotation("remove a key slot")
        let entries = try slots()
        guard entries.contains(where: { $0.id == id }) else {
            throw RepoError(.failure, "no key slot with id \(id) in \(backend.location)", hint: "list them with `repo key list`")
        }
        let short = String(id.prefix(8))
        if id == openedSlot {
            guard entries.contains(where: { $0.id != id && $0.kind != nil }) else {
                throw RepoError(.failure, "key slot \(short) is the last usable key slot of \(backend.location); without it nothing can open the repository",
                                hint: "add another slot first (`repo key add`), then remove this one")
            }
            guard force else {
                throw RepoError(.failure, "key slot \(short) is the one this command was opened with; removing it could lock you out",
                                hint: "open with another slot's password or key file to remove it, or pass --force if another slot surely works; `repo key passwd` replaces a password in one step")
            }
        } else if !entries.contains(where: { $0.id == openedSlot }) {
            // Another process removed the slot that opened this one: the slot to remove could
            // now be the last.
            throw RepoError(.failure, "the key slot this command was opened with (\(openedSlot.prefix(8))) was removed meanwhile; not removing \(short), which could be the last one",
                            hint: "run `repo key list` and decide again")
        }
        try backend.delete("keys/" + id)
    }
}
