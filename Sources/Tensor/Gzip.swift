import CZlib
import Foundation

/// gzip (and zlib) decompression through zlib's inflate, bounded: a file we read can be hostile
/// (a few KB that inflate to gigabytes), so the output is refused past `limit` bytes.
public enum Gzip {
    /// True when `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// The decompressed bytes of a gzip or zlib stream (concatenated gzip members included).
    /// Errors name `file`: not compressed data, truncated, or larger than `limit`.
    public static func decompress(_ data: Data, limit: Int, file: String) throws -> Data {
        var stream = z_stream()
        // 15 + 32: a 32 KiB window, gzip or zlib header detected automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw VideoBertError("zlib could not start", file: file)
        }
        defer { inflateEnd(&stream) }
        var out = Data()
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        var input = data
        var status: Int32 = Z_OK
        try input.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            stream.next_in = raw.bindMemory(to: Bytef.self).baseAddress
            stream.avail_in = uInt(raw.count)
            while true {
                try buffer.withUnsafeMutableBufferPointer { b in
                    stream.next_out = b.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                        throw VideoBertError("not valid gzip data (zlib status \(status))", file: file)
                    }
                    let produced = chunk - Int(stream.avail_out)
                    guard out.count + produced <= limit else {
                        throw VideoBertError("decompresses to more than \(limit) bytes: refused", file: file)
                    }
                    out.append(b.baseAddress!, count: produced)
                }
                if status == Z_STREAM_END {
                    // Another gzip member may follow (as `cat a.gz b.gz`).
                    guard stream.avail_in > 0 else { break }
                    guard inflateReset(&stream) == Z_OK else { throw VideoBertError("not valid gzip data", file: file) }
                    continue
                }
                // With a whole free output buffer, no progress means the input ran out.
                if status == Z_BUF_ERROR { throw VideoBertError("truncated gzip data", file: file) }
            }
        }
        return out
    }
}
