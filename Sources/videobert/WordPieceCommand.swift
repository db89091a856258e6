import ArgumentParser
import Foundation
import Tensor
import Tokenize

/// `videobert wordpiece`: BERT WordPiece ids for each line on stdin, one JSON array per line.
struct WordPieceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wordpiece",
        abstract: "BERT WordPiece ids for each line on stdin, one JSON array per line on stdout.",
        discussion: """
        Runs BERT's basic tokenization (text cleaning, CJK split, punctuation split; lower-casing \
        and accent stripping unless --cased) and greedy longest-match-first WordPiece over the \
        vocabulary. The ids equal HF tokenizers' BertWordPieceTokenizer without [CLS]/[SEP]. \
        Special tokens of the vocabulary written in the text ([MASK], [SEP], ...) keep their ids. \
        Invalid UTF-8 bytes are dropped.

        Example:
          echo "Hello, world!" | videobert wordpiece --vocab Vocab/bert-base-uncased.txt
          [7592,1010,2088,999]
        """
    )

    @Option(name: .long, help: "The WordPiece vocabulary (vocab.txt, one token per line).")
    var vocab: String

    @Flag(name: .long, help: "Keep case and accents (for cased vocabularies).")
    var cased = false

    func run() throws {
        let tokenizer = BertTokenizer(vocabulary: try TextVocabulary.load(vocab), lowercase: !cased)
        let output = BufferedOutput(fd: 1)
        defer { output.deallocate() }
        var ids: [Int32] = []
        ids.reserveCapacity(4096)
        tokenizer.withSession { session in
            forEachLine(fd: 0) { line in
                ids.removeAll(keepingCapacity: true)
                session.encode(utf8: line, appendingTo: &ids)
                output.writeJSONArray(ids)
            }
        }
        output.flush()
    }
}

/// Calls `body` with each line read from `fd` (without its LF), reading in 1 MiB chunks.
/// A last line without LF counts; a final LF does not start another line.
func forEachLine(fd: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
    var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
    var capacity = 1 << 20
    var filled = 0
    defer { buffer.deallocate() }
    while true {
        if filled == capacity {  // a line longer than the buffer: grow
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: buffer, count: filled)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
        let n = read(fd, buffer + filled, capacity - filled)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
            if filled > 0 { body(UnsafeBufferPointer(start: buffer, count: filled)) }
            return
        }
        let end = filled + n
        var start = 0
        var i = filled
        while i < end {
            if buffer[i] == 0x0A {
                body(UnsafeBufferPointer(start: buffer + start, count: i - start))
                start = i + 1
            }
            i += 1
        }
        filled = end - start
        if start > 0 && filled > 0 { buffer.update(from: buffer + start, count: filled) }
    }
}

/// Output bytes gathered in 1 MiB and written with write(2).
final class BufferedOutput {
    let fd: Int32
    let capacity = 1 << 20
    let buffer: UnsafeMutablePointer<UInt8>
    var count = 0

    init(fd: Int32) {
        self.fd = fd
        buffer = .allocate(capacity: capacity)
    }

    func deallocate() { buffer.deallocate() }

    func flush() {
        var written = 0
        while written < count {
            let n = write(fd, buffer + written, count - written)
            if n < 0 {
                if errno == EINTR { continue }
                break  // closed pipe: nothing more to do
            }
            written += n
        }
        count = 0
    }

    /// `[1,2,3]` and a newline.
    func writeJSONArray(_ ids: [Int32]) {
        // Each id takes at most 11 bytes plus a comma.
        if count + ids.count * 12 + 4 > capacity { flush() }
        if ids.count * 12 + 4 > capacity {  // one huge line: write it in pieces
            writeByte(0x5B)
            for (k, id) in ids.enumerated() {
                if count + 13 > capacity { flush() }
                if k > 0 { writeByte(0x2C) }
                writeInteger(id)
            }
            if count + 2 > capacity { flush() }
            writeByte(0x5D)
            writeByte(0x0A)
            return
        }
        writeByte(0x5B)
        var first = true
        for id in ids {
            if !first { writeByte(0x2C) }
            first = false
            writeInteger(id)
        }
        writeByte(0x5D)
        writeByte(0x0A)
    }

    @inline(__always) private func writeByte(_ b: UInt8) {
        buffer[count] = b
        count += 1
    }

    @inline(__always) private func writeInteger(_ value: Int32) {
        var v = Int64(value)
        if v < 0 { writeByte(0x2D); v = -v }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(0x30 + v % 10)
                v /= 10
                n += 1
            } while v > 0
            while n > 0 {
                n -= 1
                buffer[count] = d[n]
                count += 1
            }
        }
    }
}
