import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoSnapshot
import RepoKMS
import Foundation

extension RepoCommand {
    /// `repo key list|add|remove|passwd` (README, "Keys"; FORMAT.md §7). Each works on the
    /// key slots alone through `KeyRing`: no catalog, no lock, and no data is re-encrypted.
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, add and remove the key slots (passwords, machine key files, KMS keys) that open the repository.",
            subcommands: [List.self, Add.self, Remove.self, Passwd.self, Rotate.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the key slots; `*` marks the one that opened this command.")
            @OptionGroup var global: GlobalOptions

            func run() throws {
                let ring = try global.keyRing()
                let entries = try ring.slots()
                if global.json {
                    try Console.printJSON(entries.map { KeySlotJSON($0, current: $0.id == ring.openedSlot) })
                    return
                }
                let local = DateFormatter()
                local.dateFormat = "yyyy-MM-dd HH:mm:ss"
                var rows = [["ID", "Kind", "Created", "Host", "User", "KMS key", "Master"]]
                for e in entries {
                    // Slot metadata is not authenticated (FORMAT.md §22): escaped, one line each.
                    let created = e.slot.map { Timestamp.parse($0.created).map(local.string) ?? SnapshotLabel.escapedForTable($0.created) } ?? ""
                    rows.append([String(e.id.prefix(8)), e.kind?.rawValue ?? "unreadable", created,
                                 e.slot.map { SnapshotLabel.escapedForTable($0.host) } ?? "",
                                 e.slot.map { SnapshotLabel.escapedForTable($0.username) } ?? "",
                                 e.slot?.kms.map { SnapshotLabel.escapedForTable("\($0.provider) \($0.keyID)") } ?? "",
                                 // Which master key it wraps (FORMAT.md §7.6), as a fingerprint.
                                 e.slot?.master.map { SnapshotLabel.escapedForTable(String($0.prefix(8))) + (e.slot?.transition == true ? " (rotation)" : "") } ?? ""])
                }
                let widths = (0..<7).map { c in rows.map { $0[c].count }.max() ?? 0 }
                for (i, r) in rows.enumerated() {
                    // The first column marks the slot that opened this command.
                    let mark = i > 0 && entries[i - 1].id == ring.openedSlot ? "* " : "  "
                    let line = zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    print(mark + String(line.reversed().drop(while: { $0 == " " }).reversed()))
                    if i == 0 { print(String(repeating: "-", count: widths.reduce(0, +) + 10)) }
                }
                if !global.quiet {
                    for e in entries where e.kind == nil {
                        Console.line("repo: key slot \(e.id.prefix(8)) cannot be read (\(e.problem ?? "unknown")); `repo key remove \(e.id.prefix(8))` deletes it")
                    }
                    print("\(entries.count) key slot\(entries.count == 1 ? "" : "s")")
                }
            }
        }

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a password slot; with --new-key-file a machine key file and its slot; with --kms-key-id a KMS slot.",
                discussion: """
                    The new password is the first line of --new-password-file, or is asked for twice \
                    on the terminal. --new-key-file FILE creates FILE (mode 0600; never over an \
                    existing file) holding a random secret that opens the repository without a \
                    password. --kms-key-id ID adds a slot whose secret the KMS key ID wraps: AWS KMS \
                    (AWS_* credentials and region, AWS_ENDPOINT_URL_KMS), or the program given with \
                    --kms-command; hosts then open with --kms (README: Keys). Only one keys/ object \
                    is written.
                    """)
            @OptionGroup var global: GlobalOptions

            @Option(help: ArgumentHelp("Read the new password from the first line of FILE.", valueName: "FILE"))
            var newPasswordFile: String?

            @Option(help: ArgumentHelp("Create the machine key file FILE (mode 0600) and a slot it opens.", valueName: "FILE"))
            var newKeyFile: String?

            @Option(help: ArgumentHelp("Add a KMS slot wrapped by this key: an AWS KMS key id, ARN or alias, or the id passed to --kms-command.", valueName: "ID"))
            var kmsKeyId: String?

            func validate() throws {
                if [newPasswordFile, newKeyFile, kmsKeyId].compactMap({ $0 }).count > 1 {
                    throw ValidationError("--new-password-file, --new-key-file and --kms-key-id add different slots; give one")
                }
                if let id = kmsKeyId, id.isEmpty || id.utf8.count > KMSEnvelope.maximumKeyID || !id.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                    throw ValidationError("--kms-key-id must be 1 to \(KMSEnvelope.maximumKeyID) printable ASCII characters")
                }
            }

            func run() throws {
                let ring = try global.keyRing()
                if let keyID = kmsKeyId {
                    let service: any KeyManagementService = try global.kmsCommandLine.map { KMSCommand(command: $0) } ?? global.awsKMS()
                    let (id, slot) = try ring.addKMS(service: service, keyID: keyID)
                    let kms = slot.kms!
                    if global.json {
                        try Console.printJSON(KeyAddJSON(id: id, kind: KeySlot.Kind.kms.rawValue, kms_provider: kms.provider, kms_key_id: kms.keyID))
                    } else if !global.quiet {
                        print("added key slot \(id.prefix(8)) (kms: \(kms.provider) \(kms.keyID))")
                        print("hosts allowed to use this key open the repository with --kms (or REPO_KMS=1)\(kms.provider == "command" ? " and the same --kms-command" : "")")
                    }
                    return
                }
                let id: String
                if let path = newKeyFile {
                    let file = try KeyFile.create(path: path)
                    do { id = try ring.add(.keyFile(file)) } catch {
                        file.remove()   // a key file that opens nothing must not be left behind
                        throw error
                    }
                } else {
                    id = try ring.add(.password(try Key.newPassword(file: newPasswordFile)))
                }
                let kind: KeySlot.Kind = newKeyFile == nil ? .password : .keyFile
                if global.json {
                    try Console.printJSON(KeyAddJSON(id: id, kind: kind.rawValue, key_file: newKeyFile))
                } else if !global.quiet {
                    print("added key slot \(id.prefix(8)) (\(kind.rawValue))")
                    if let path = newKeyFile {
                        print("key file \(path): whoever can read it can read the repository; keep it like an SSH private key")
                    }
                }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a key slot (its password or key file no longer opens the repository).",
                discussion: """
                    The slot this command was opened with is kept unless --force is given; the last \
                    usable slot is never removed. Removing a slot does not protect data from someone \
                    who kept a copy of it and its password or key file (FORMAT.md §22).
                    """)
            @OptionGroup var global: GlobalOptions

            @Argument(help: "Key slot id, or a unique prefix of it (`repo key list`).")
            var id: String

            @Flag(help: "Also remove the slot this command was opened with (never the last usable one).")
            var force = false

            func validate() throws {
                guard !id.isEmpty, Hex.isHex(id) else {
                    throw ValidationError("\"\(id)\" is not a key slot id: give the id (or a unique prefix of it) that `repo key list` shows")
                }
            }

            func run() throws {
                let ring = try global.keyRing()
                let full = try ring.resolve(id)
                try ring.remove(full, force: force)
                if global.json {
                    try Console.printJSON(["removed": full])
                } else if !global.quiet {
                    print("removed key slot \(full)")
                }
            }
        }

        struct Passwd: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Change the password: add a slot for the new one, then remove the slot that opened this command.",
                discussion: """
                    In that order, so an interruption in between leaves both passwords working, \
                    never none. Other slots (other passwords, key files) are untouched.
                    """)
            @OptionGroup var global: GlobalOptions

            @Option(help: ArgumentHelp("Read the new password from the first line of FILE.", valueName: "FILE"))
            var newPasswordFile: String?

            func run() throws {
                let ring = try global.keyRing()
                guard ring.openedKind == .password else {
                    throw RepoError(.usage, "passwd changes the password this command was opened with, and it was opened with \(ring.openedKind == .kms ? "a KMS slot" : "a key file")",
                                    hint: "open it with the password to change (--password-file, REPO_PASSWORD or the prompt); to replace a key file or KMS slot, `repo key add` the new one and `repo key remove` the old slot")
                }
                let old = ring.openedSlot
                let id = try ring.add(.password(try Key.newPassword(file: newPasswordFile)))
                do { try ring.remove(old, force: true) } catch {
                    let reason = (error as? RepoError)?.message ?? "\(error)"
                    throw RepoError((error as? RepoError)?.kind ?? .failure,
                                    "the new password's key slot \(id.prefix(8)) was added, but the old slot \(old.prefix(8)) was not removed: \(reason)",
                                    hint: "both passwords work now; remove the old one with `repo key remove \(old.prefix(8))`")
                }
                if global.json {
                    try Console.printJSON(["added": id, "removed": old])
                } else if !global.quiet {
                    print("password changed: added key slot \(id.prefix(8)), removed key slot \(old.prefix(8))")
                }
            }
        }

        /// The new password: the first line of `file`, or asked twice on the terminal.
        static func newPassword(file: String?) throws -> [UInt8] {
            let password: [UInt8]
            if let file {
                password = try GlobalOptions.passwordFromFile(file)
            } else {
                guard let first = Console.prompt("enter the new password: ") else {
                    throw RepoError(.usage, "no new password given and no terminal to ask on",
                                    hint: "pass --new-password-file FILE")
                }
                guard Console.prompt("enter the new password again: ") == first else {
                    throw RepoError(.usage, "the new passwords do not match", hint: "run the command again")
                }
                password = Array(first.utf8)
            }
            guard !password.isEmpty else {
                throw RepoError(.usage, "the new password must not be empty",
                                hint: file.map { "write it on the first line of \($0)" } ?? "type a password")
            }
            return password
        }
    }
}

/// `repo key list --json` element (README, "JSON output").
struct KeySlotJSON: Encodable {
    var id: String
    /// `password`, `keyfile`, `kms`, or `unreadable` (damaged, planted, or of a newer format).
    var kind: String
    var created: String?
    var host: String?
    var username: String?
    var current: Bool
    /// For `kms` slots: `aws-kms` or `command`, and the key id; `null` otherwise.
    var kms_provider: String?
    var kms_key_id: String?
    /// The fingerprint of the master key the slot wraps (FORMAT.md §7.6); `null` in slots
    /// written before rotation existed. `transition`: true for a running rotation's transition slots.
    var master: String?
    var transition: Bool

    init(_ e: KeyRing.Entry, current: Bool) {
        id = e.id; kind = e.kind?.rawValue ?? "unreadable"
        created = e.slot?.created; host = e.slot?.host; username = e.slot?.username
        self.current = current
        kms_provider = e.slot?.kms?.provider; kms_key_id = e.slot?.kms?.keyID
        master = e.slot?.master; transition = e.slot?.transition ?? false
    }

    enum CodingKeys: String, CodingKey { case id, kind, created, host, username, current, kms_provider, kms_key_id, master, transition }

    /// Every key, `null` when the slot could not be decoded.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(created, forKey: .created)
        try c.encode(host, forKey: .host); try c.encode(username, forKey: .username); try c.encode(current, forKey: .current)
        try c.encode(kms_provider, forKey: .kms_provider); try c.encode(kms_key_id, forKey: .kms_key_id)
        try c.encode(master, forKey: .master); try c.encode(transition, forKey: .transition)
    }
}

/// `repo key add --json` output.
struct KeyAddJSON: Encodable {
    var id: String
    var kind: String
    var key_file: String?
    var kms_provider: String?
    var kms_key_id: String?

    enum CodingKeys: String, CodingKey { case id, kind, key_file, kms_provider, kms_key_id }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(key_file, forKey: .key_file)
        try c.encode(kms_provider, forKey: .kms_provider); try c.encode(kms_key_id, forKey: .kms_key_id)
    }
}
