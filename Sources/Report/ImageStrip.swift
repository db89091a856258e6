import Tensor

extension RGBImage {
    /// Images of one size side by side, left to right, each followed by `gap` white columns (a
    /// row of visual-word icons in the demo's report); nil when there are none. Images of another
    /// size than the first are left out.
    public static func strip(_ images: [RGBImage], gap: Int = 2) -> RGBImage? {
        guard let first = images.first else { return nil }
        let (w, h) = (first.width, first.height)
        let icons = images.filter { $0.width == w && $0.height == h }
        let rowWidth = (w + gap) * icons.count
        var pixels = [UInt8](repeating: 255, count: rowWidth * h * 3)
        for (i, icon) in icons.enumerated() {
            for y in 0..<h {
                for x in 0..<w {
                    for k in 0..<3 { pixels[(y * rowWidth + i * (w + gap) + x) * 3 + k] = icon.pixels[(y * w + x) * 3 + k] }
                }
            }
        }
        return RGBImage(width: rowWidth, height: h, pixels: pixels)
    }
}
