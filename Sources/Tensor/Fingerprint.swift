import Foundation

/// 64-bit FNV-1a of bytes, as 16 hex digits: how a corpus records its vocabulary files
/// (index.json's `fingerprint`) and how a checkpoint's vocabularies are compared with a corpus'.
public enum Fingerprint {
    public static func fnv1a<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// The fingerprint of a file's bytes (files over 1 GiB are refused: vocabularies and recipes are small).
    public static func of(file path: String) throws -> String {
        fnv1a(try InputFile.read(path, maxBytes: 1 << 30))
    }
}
