import CZlib
import Foundation

/// An 8-bit RGB image, row-major [height, width, 3].
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        if fill != (0, 0, 0) {
            for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
        }
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3)
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// Copies `src` [h, w, 3] with its top-left corner at (x, y), clipping at the edges.
    public mutating func paste(_ src: UnsafeBufferPointer<UInt8>, width w: Int, height h: Int, x: Int, y: Int) {
        for r in 0..<h where y + r >= 0 && y + r < height {
            for c in 0..<w where x + c >= 0 && x + c < width {
                let d = ((y + r) * width + x + c) * 3, s = (r * w + c) * 3
                pixels[d] = src[s]; pixels[d + 1] = src[s + 1]; pixels[d + 2] = src[s + 2]
            }
        }
    }

    public mutating func paste(_ img: RGBImage, x: Int, y: Int) {
        img.pixels.withUnsafeBufferPointer { paste($0, width: img.width, height: img.height, x: x, y: y) }
    }

    /// Encodes as PNG (8-bit RGB, zlib-compressed, filter 0 on every row).
    public func pngData() -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity(height * (width * 3 + 1))
        for r in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(r * width * 3)..<((r + 1) * width * 3)])
        }
        var destLen = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(destLen))
        let status = compress2(&compressed, &destLen, raw, uLong(raw.count), 6)
        precondition(status == Z_OK, "zlib compress2 failed (\(status))")
        compressed.removeSubrange(Int(destLen)...)

        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func chunk(_ type: String, _ body: [UInt8]) {
            var len = UInt32(body.count).bigEndian
            out.append(Data(bytes: &len, count: 4))
            let typeBytes = Array(type.utf8)
            out.append(contentsOf: typeBytes)
            out.append(contentsOf: body)
            var crc = crc32(0, nil, 0)
            crc = crc32(crc, typeBytes, uInt(typeBytes.count))
            body.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt(body.count)) }
            var c = UInt32(crc).bigEndian
            out.append(Data(bytes: &c, count: 4))
        }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
        chunk("IDAT", compressed)
        chunk("IEND", [])
        return out
    }

    public func writePNG(to path: String) throws {
        try AtomicFile.write(pngData(), to: path)
    }

    /// Tiles images into a grid (`columns` wide) with `gap` pixels of `background` between them.
    public static func grid(_ tiles: [RGBImage], columns: Int, gap: Int = 2, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> RGBImage {
        guard let first = tiles.first else { return RGBImage(width: 1, height: 1, fill: background) }
        let cols = max(1, min(columns, tiles.count))
        let rows = (tiles.count + cols - 1) / cols
        let tw = tiles.map(\.width).max()!, th = tiles.map(\.height).max()!
        _ = first
        var img = RGBImage(width: cols * tw + (cols + 1) * gap, height: rows * th + (rows + 1) * gap, fill: background)
        for (i, t) in tiles.enumerated() {
            img.paste(t, x: gap + (i % cols) * (tw + gap), y: gap + (i / cols) * (th + gap))
        }
        return img
    }
}
