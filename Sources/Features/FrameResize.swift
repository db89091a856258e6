/// Area-averaging resize of RGB24 images (each output pixel is the mean of the input pixels it
/// covers, with fractional coverage at the edges): the right filter for shrinking, as for the
/// low-resolution frames kept for the contrastive variant.
public enum FrameResize {
    /// - Parameters:
    ///   - src: [srcHeight, srcWidth, 3]
    ///   - dst: [dstHeight, dstWidth, 3]
    public static func area(src: UnsafeBufferPointer<UInt8>, srcWidth: Int, srcHeight: Int,
                            dst: UnsafeMutableBufferPointer<UInt8>, dstWidth: Int, dstHeight: Int) {
        precondition(src.count >= srcWidth * srcHeight * 3 && dst.count >= dstWidth * dstHeight * 3)
        let sx = Double(srcWidth) / Double(dstWidth), sy = Double(srcHeight) / Double(dstHeight)
        for oy in 0..<dstHeight {
            let y0 = Double(oy) * sy, y1 = y0 + sy
            for ox in 0..<dstWidth {
                let x0 = Double(ox) * sx, x1 = x0 + sx
                var acc = (0.0, 0.0, 0.0), wsum = 0.0
                var iy = Int(y0)
                while Double(iy) < y1 && iy < srcHeight {
                    let wy = min(Double(iy + 1), y1) - max(Double(iy), y0)
                    var ix = Int(x0)
                    while Double(ix) < x1 && ix < srcWidth {
                        let w = wy * (min(Double(ix + 1), x1) - max(Double(ix), x0))
                        let i = (iy * srcWidth + ix) * 3
                        acc.0 += w * Double(src[i]); acc.1 += w * Double(src[i + 1]); acc.2 += w * Double(src[i + 2])
                        wsum += w
                        ix += 1
                    }
                    iy += 1
                }
                let o = (oy * dstWidth + ox) * 3
                dst[o] = UInt8(min(255, (acc.0 / wsum).rounded()))
                dst[o + 1] = UInt8(min(255, (acc.1 / wsum).rounded()))
                dst[o + 2] = UInt8(min(255, (acc.2 / wsum).rounded()))
            }
        }
    }
}
