import Foundation

/// The exact bytes of command-line arguments. Linux passes arguments as bytes; Swift's
/// `CommandLine.arguments` (and so ArgumentParser) decodes them as UTF-8, replacing invalid
/// sequences with U+FFFD, which loses file names that are not UTF-8. Path arguments are
/// therefore looked up here by their decoded text and used as the original bytes.
enum RawArguments {
    /// The bytes of the argument whose decoded text is `text` (the first such argument after
    /// the program name; also the value part of `--option=text`), or the UTF-8 of `text` when
    /// none matches.
    static func bytes(of text: String) -> [UInt8] {
        let argc = Int(CommandLine.argc)
        for i in 1..<max(argc, 1) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let raw = Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
            if String(decoding: raw, as: UTF8.self) == text { return raw }
            if let eq = raw.firstIndex(of: UInt8(ascii: "=")), raw.starts(with: Array("--".utf8)),
               String(decoding: raw[(eq + 1)...], as: UTF8.self) == text {
                return Array(raw[(eq + 1)...])
            }
        }
        return Array(text.utf8)
    }
}
