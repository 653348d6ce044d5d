import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoSnapshot
import Foundation

extension RepoCommand {
    /// `repo key list|add|remove|passwd` (README, "Keys"; FORMAT.md §7). Each works on the
    /// key slots alone through `KeyRing`: no catalog, no lock, and no data is re-encrypted.
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, add and remove the key slots (passwords and machine key files) that open the repository.",
            subcommands: [List.self, Add.self, Remove.self, Passwd.self])

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
                var rows = [["ID", "Kind", "Created", "Host", "User"]]
                for e in entries {
                    // Slot metadata is not authenticated (FORMAT.md §22): escaped, one line each.
                    let created = e.slot.map { Timestamp.parse($0.created).map(local.string) ?? SnapshotLabel.escapedForTable($0.created) } ?? ""
                    rows.append([String(e.id.prefix(8)), e.kind?.rawValue ?? "unreadable", created,
                                 e.slot.map { SnapshotLabel.escapedForTable($0.host) } ?? "",
                                 e.slot.map { SnapshotLabel.escapedForTable($0.username) } ?? ""])
                }
                let widths = (0..<5).map { c in rows.map { $0[c].count }.max() ?? 0 }
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
                abstract: "Add a password slot, or with --new-key-file a machine key file and its slot.",
                discussion: """
                    The new password is the first line of --new-password-file, or is asked for twice \
                    on the terminal. --new-key-file FILE creates FILE (mode 0600; never over an \
                    existing file) holding a random secret that opens the repository without a \
                    password (README: Keys). Only one keys/ object is written.
                    """)
            @OptionGroup var global: GlobalOptions

            @Option(help: ArgumentHelp("Read the new password from the first line of FILE.", valueName: "FILE"))
            var newPasswordFile: String?

            @Option(help: ArgumentHelp("Create the machine key file FILE (mode 0600) and a slot it opens.", valueName: "FILE"))
            var newKeyFile: String?

            func validate() throws {
                if newPasswordFile != nil && newKeyFile != nil {
                    throw ValidationError("--new-password-file and --new-key-file add different slots; give one")
                }
            }

            func run() throws {
                let ring = try global.keyRing()
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
                    throw RepoError(.usage, "passwd changes the password this command was opened with, and it was opened with a key file",
                                    hint: "open it with the password to change (--password-file, REPO_PASSWORD or the prompt); to replace a key file, `repo key add --new-key-file NEW` and `repo key remove` the old slot")
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
    /// `password`, `keyfile`, or `unreadable` (damaged, planted, or of a newer format).
    var kind: String
    var created: String?
    var host: String?
    var username: String?
    var current: Bool

    init(_ e: KeyRing.Entry, current: Bool) {
        id = e.id; kind = e.kind?.rawValue ?? "unreadable"
        created = e.slot?.created; host = e.slot?.host; username = e.slot?.username
        self.current = current
    }

    enum CodingKeys: String, CodingKey { case id, kind, created, host, username, current }

    /// Every key, `null` when the slot could not be decoded.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(created, forKey: .created)
        try c.encode(host, forKey: .host); try c.encode(username, forKey: .username); try c.encode(current, forKey: .current)
    }
}

/// `repo key add --json` output.
struct KeyAddJSON: Encodable {
    var id: String
    var kind: String
    var key_file: String?

    enum CodingKeys: String, CodingKey { case id, kind, key_file }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind); try c.encode(key_file, forKey: .key_file)
    }
}
