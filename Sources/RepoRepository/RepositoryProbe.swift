public import RepoStorage
import Foundation

/// Tells a `repo` repository from other things at a location, and says what was found there
/// for the "no repository" message (exit 10).
public enum RepositoryProbe {
    /// Whether `config` is a JSON object with the fields that make it ours (`version` and
    /// `chunker`). Such a config that then fails to decode, or holds values out of range, is a
    /// damaged repository of ours rather than something else.
    public static func looksLikeOurs(_ config: [UInt8]) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(config)) as? [String: Any] else { return false }
        return object["version"] != nil && object["chunker"] != nil
    }

    /// Whether `keys/` holds at least one key slot in this tool's format (FORMAT.md §7.2).
    public static func hasOurKeySlots(_ backend: StorageBackend) -> Bool {
        guard let slots = try? backend.list(prefix: "keys/") else { return false }
        return slots.prefix(8).contains { info in
            (try? backend.get(info.name)).flatMap { try? KeySlot.decode($0) } != nil
        }
    }

    /// What the location holds, e.g. "found a restic repository (an encrypted config beside
    /// keys/, data/, snapshots/ and index/)"; `config` is the bytes of its `config`, if any.
    public static func describe(_ backend: StorageBackend, config: [UInt8]?) -> String {
        func has(_ name: String) -> Bool { (try? backend.exists(name)) == true }
        let readme = (try? backend.get("README", range: nil)).map { String(decoding: $0.prefix(4096), as: UTF8.self) } ?? ""
        let configText = config.map { String(decoding: $0.prefix(4096), as: UTF8.self) } ?? ""
        if readme.contains("Borg Backup") || configText.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("[repository]") {
            return "found a Borg repository (a config in INI format with [repository])"
        }
        guard let config else {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: backend.location, isDirectory: &isDirectory) {
                return "the location does not exist"
            }
            if !isDirectory.boolValue { return "the location is a file, not a directory" }
            return "the directory has no config file"
        }
        let json = try? JSONSerialization.jsonObject(with: Data(config), options: [.fragmentsAllowed])
        if json == nil && ["keys", "data", "snapshots", "index"].allSatisfy(has) {
            return "found a restic repository (a \(config.count)-byte encrypted config beside keys/, data/, snapshots/ and index/)"
        }
        if let object = json as? [String: Any] {
            return "found a JSON config that is not a repo config (its keys: \(object.keys.sorted().prefix(8).joined(separator: ", ")))"
        }
        if json != nil { return "found a config holding JSON that is not an object" }
        return "found a config of \(config.count) bytes that is not a repo config (not JSON)"
    }
}
